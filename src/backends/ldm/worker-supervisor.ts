import { type ChildProcess, fork } from "node:child_process";
import { createRequire } from "node:module";
import { createInterface } from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";
import { EaselError } from "../../core/errors.ts";
import type { GenerateHooks, GenerateParams, GenerateResult } from "./pipeline.ts";
import type { FromWorker, LoadedModelInfo, ToWorker, WorkerModelSpec } from "./worker-protocol.ts";

/**
 * Runs the LDM pipeline in a child process and keeps it alive. The bot process only exchanges messages with
 * it, so onnxruntime's blocking inference never delays the bot's event loop. A crashed worker fails the job in
 * flight with `worker_crashed` (retryable), a silent one is killed after `stallTimeoutMs` with `worker_hung`,
 * and the next job starts a fresh worker; an error the worker reports keeps its code (`internal`, `model_file`,
 * …: deterministic, not retried). A job's promise settles only when the worker has really stopped.
 */

/** Timeouts and hooks of the supervisor; defaults in DEFAULT_SUPERVISOR_OPTIONS. */
export interface SupervisorOptions {
  /** A running job that reports nothing (no step) for this long is treated as hung. */
  stallTimeoutMs?: number;
  /** Loading a model (four ONNX sessions) may take this long. */
  loadTimeoutMs?: number;
  /** After a cancel, the worker must stop within this long or it is killed. */
  cancelGraceMs?: number;
  /** Stop the worker (freeing the model's memory) after this long without jobs; 0 keeps it loaded. */
  idleUnloadMs?: number;
  /** Operator log lines (provider fallback, restarts). */
  log?: (line: string) => void;
  /** The worker script (tests point it at a misbehaving one). */
  workerEntry?: string;
  /**
   * The worker process's whole environment. The composition root passes `Config.workerEnv` (what Node and
   * onnxruntime read: PATH, locale, CUDA's and OpenMP's variables), never the bot's tokens and keys; left out,
   * the worker gets an empty environment rather than inheriting the bot's.
   */
  env?: Readonly<Record<string, string>>;
}

export const DEFAULT_SUPERVISOR_OPTIONS = {
  stallTimeoutMs: 120_000,
  loadTimeoutMs: 600_000,
  cancelGraceMs: 10_000,
  idleUnloadMs: 0,
} as const;

const DEFAULT_WORKER_ENTRY = fileURLToPath(new URL("./worker.ts", import.meta.url));
/** The worker is TypeScript too: it runs under tsx's loader, found from here so any working directory works. */
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;

interface Pending {
  resolve: (message: FromWorker) => void;
  reject: (err: EaselError) => void;
}

/** One worker process for one model, fed one job at a time. */
export class LdmWorkerSupervisor {
  private child: ChildProcess | undefined;
  private loaded: Promise<LoadedModelInfo> | undefined;
  private modelInfo: LoadedModelInfo | undefined;
  /** The one request in flight (a load or a job): the worker answers it or dies. */
  private pending: Pending | undefined;
  private onMessage: ((message: FromWorker) => void) | undefined;
  private tail: Promise<unknown> = Promise.resolve();
  private nextId = 1;
  private idleTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  /** Why the supervisor killed the worker (hung, cancel ignored): the error the job in flight gets. */
  private killReason: EaselError | undefined;
  private readonly options: Required<Omit<SupervisorOptions, "log" | "env">> &
    Pick<SupervisorOptions, "log" | "env">;
  /** Workers started so far (1 + restarts). */
  starts = 0;

  constructor(
    private readonly spec: WorkerModelSpec,
    options: SupervisorOptions = {},
  ) {
    this.options = { ...DEFAULT_SUPERVISOR_OPTIONS, workerEntry: DEFAULT_WORKER_ENTRY, ...options };
  }

  /** What the loaded model is (undefined before the first load). */
  get info(): LoadedModelInfo | undefined {
    return this.modelInfo;
  }

  /** The worker's process id, while one runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the worker and loads the model, if not done yet. */
  start(): Promise<LoadedModelInfo> {
    if (this.loaded === undefined) {
      const loading = this.spawnAndLoad();
      this.loaded = loading;
      // A failed load is not remembered: the next job tries again (the operator may have fixed the folder).
      loading.catch(() => {
        if (this.loaded === loading) this.loaded = undefined;
      });
    }
    return this.loaded;
  }

  /** Runs one generate call in the worker; calls are queued and run one at a time. */
  generate(params: GenerateParams, hooks: GenerateHooks = {}): Promise<GenerateResult> {
    const job = this.tail.then(() => this.runJob(params, hooks));
    this.tail = job.catch(() => undefined);
    return job;
  }

  /** Stops the worker and frees the model; a later job starts a new worker. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.idleTimer);
    const child = this.child;
    if (child === undefined) return;
    await new Promise<void>((resolve) => {
      child.once("exit", () => resolve());
      child.kill("SIGTERM");
    });
  }

  private async runJob(params: GenerateParams, hooks: GenerateHooks): Promise<GenerateResult> {
    clearTimeout(this.idleTimer);
    if (hooks.signal?.aborted) throw new EaselError("cancelled", "generation cancelled");
    await this.start();
    // Loading a model takes a while: a cancel that came meanwhile must not start the job.
    if (hooks.signal?.aborted) throw new EaselError("cancelled", "generation cancelled");
    const id = this.nextId++;
    const child = this.child;
    if (child === undefined)
      throw new EaselError("worker_crashed", "the LDM worker stopped before the job started");
    let cancelTimer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      this.send({ type: "cancel", id });
      cancelTimer = setTimeout(
        () => this.kill(new EaselError("cancelled", "generation cancelled (the worker was stopped)")),
        this.options.cancelGraceMs,
      );
    };
    hooks.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const reply = await this.request(
        { type: "generate", id, params },
        this.options.stallTimeoutMs,
        (message) => {
          if (message.type === "progress" && message.id === id) {
            hooks.onProgress?.(message.progress);
            return true;
          }
          return false;
        },
      );
      if (reply.type === "result") return reply.result;
      throw this.errorFrom(reply);
    } finally {
      clearTimeout(cancelTimer);
      hooks.signal?.removeEventListener("abort", onAbort);
      this.armIdleTimer();
    }
  }

  /** A line the worker printed: to the operator log when there is one, else to this process's stderr. */
  private workerOutput(line: string): void {
    if (line.trim() === "") return;
    if (this.options.log) this.options.log(`LDM worker: ${line}`);
    else process.stderr.write(`LDM worker: ${line}\n`);
  }

  private async spawnAndLoad(): Promise<LoadedModelInfo> {
    this.stopping = false;
    const child = fork(this.options.workerEntry, [], {
      execArgv: ["--import", TSX_LOADER],
      env: { ...this.options.env },
      serialization: "advanced",
      // Piped, not inherited: whatever the worker prints (onnxruntime's warnings, a crash's stack) goes
      // through the operator log and its redaction, one line at a time.
      stdio: ["ignore", "pipe", "pipe", "ipc"],
    });
    for (const stream of [child.stdout, child.stderr]) {
      if (stream)
        createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on("line", (line) =>
          this.workerOutput(line),
        );
    }
    this.child = child;
    this.starts += 1;
    child.on("message", (message: FromWorker) => this.dispatch(message));
    child.once("exit", (code, signal) => {
      // A worker that was already replaced (killed after a failed load, stopped when idle) concerns no one.
      if (this.child !== child) return;
      this.child = undefined;
      this.loaded = undefined;
      const reason = signal ? `signal ${signal}` : `exit code ${code}`;
      const killed = this.killReason;
      this.killReason = undefined;
      if (!this.stopping && !killed) {
        this.options.log?.(`LDM worker stopped (${reason}); the next job starts a new one`);
      }
      this.pending?.reject(
        killed ?? new EaselError("worker_crashed", `the image worker stopped unexpectedly (${reason})`),
      );
    });
    const reply = await this.request({ type: "load", spec: this.spec }, this.options.loadTimeoutMs);
    if (reply.type !== "loaded") {
      child.kill("SIGKILL");
      throw this.errorFrom(reply);
    }
    this.modelInfo = reply.info;
    this.armIdleTimer();
    return reply.info;
  }

  /** Sends one request and waits for its answer; `intermediate` consumes messages that are not the answer. */
  private request(
    message: ToWorker,
    silenceMs: number,
    intermediate: (message: FromWorker) => boolean = () => false,
  ): Promise<FromWorker> {
    return new Promise<FromWorker>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(
          () =>
            this.kill(
              new EaselError("worker_hung", `the image worker did not respond for ${silenceMs / 1000} s`),
            ),
          silenceMs,
        );
      };
      const settle = () => {
        clearTimeout(timer);
        this.pending = undefined;
        this.onMessage = undefined;
      };
      this.pending = {
        resolve: (reply) => {
          settle();
          resolve(reply);
        },
        reject: (err) => {
          settle();
          reject(err);
        },
      };
      this.onMessage = (reply) => {
        arm();
        if (!intermediate(reply)) this.pending?.resolve(reply);
      };
      arm();
      this.send(message);
    });
  }

  private dispatch(message: FromWorker): void {
    if (message.type === "log") {
      this.options.log?.(message.line);
      return;
    }
    this.onMessage?.(message);
  }

  private send(message: ToWorker): void {
    const child = this.child;
    if (child?.connected) child.send(message);
  }

  /**
   * Kills the worker; the request in flight fails with `err` (not as a crash) once the process has exited, so
   * the next job never meets the dying worker.
   */
  private kill(err: EaselError): void {
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) {
      this.pending?.reject(err);
      return;
    }
    this.killReason = err;
    child.kill("SIGKILL");
  }

  private errorFrom(reply: FromWorker): EaselError {
    if (reply.type === "error") {
      // An error the worker reports is deterministic (a bug, a model that cannot load): the same job fails the
      // same way again, so it keeps its code and is never retried as a crash. Only the operator's log gets the
      // worker's words for an internal one; the member is shown a generic text.
      if (reply.code === "internal") this.options.log?.(`LDM worker error: ${reply.message}`);
      return new EaselError(reply.code, reply.message);
    }
    return new EaselError("worker_crashed", `unexpected reply from the image worker: ${reply.type}`);
  }

  private armIdleTimer(): void {
    clearTimeout(this.idleTimer);
    if (this.options.idleUnloadMs <= 0) return;
    this.idleTimer = setTimeout(() => {
      this.options.log?.("LDM worker idle: unloading the model until the next job");
      void this.stop();
    }, this.options.idleUnloadMs);
    this.idleTimer.unref();
  }
}
