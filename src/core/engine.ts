import { EventEmitter } from "node:events";
import type {
  BackendImage,
  BackendProgress,
  EncodedImage,
  ImageBackend,
  ImageEncoder,
  ImageRequest,
} from "./backend.ts";
import { EaselError, isEaselError, TRANSIENT_ERROR_CODES } from "./errors.ts";
import { FairQueue, type QueuedEntry } from "./fair-queue.ts";
import type { Job, JobState } from "./job.ts";
import { MESSAGES } from "./messages.ts";
import type { BackendName, GenerationRequest } from "./request.ts";
import { DEFAULT_LIMITS } from "./settings.ts";

/**
 * The job engine: takes validated requests, keeps them durable in the store before anyone is told "queued",
 * starts them fairly (FairQueue), reports position, ETA and progress as events, retries transient failures up
 * to a cap, and after a restart resumes every job exactly where the store says it was. Platforms listen to the
 * events and call `delivered` once a result is posted.
 *
 * Admission is the engine's alone: a job leaves its backend's fair queue only when the backend can start it
 * now, within both its concurrency and its rate cap (a sliding window of recent starts). So every unfinished
 * job is either waiting (counted, with a place and an ETA, cancellable at once) or running (counted, cancelled
 * through its signal); nothing holds a job where neither the limits nor `/queue` can see it.
 *
 * Delivery is the relay's (core/relay.ts) state machine over the states kept here: `beginDelivery` counts an
 * attempt (rendered → delivering), `delivered` and `undeliverable` end it. Those two are committed durably
 * (synchronous=FULL): each tells every later start not to post the result again.
 */

/** A stored image of a job. */
export interface StoredImage extends EncodedImage {
  id: string;
}

/** Fields the engine updates along with a state change. */
export interface JobPatch {
  attempts?: number;
  startedAt?: number;
  renderedAt?: number;
  finishedAt?: number;
  errorCode?: string;
  errorMessage?: string;
  /** The backend's estimated cost (BackendResult.costUsd), recorded with → rendered. */
  costUsd?: number;
  deliveryAttempts?: number;
  deliveringSince?: number;
}

/** The persistence the engine needs; src/store implements it over SQLite. */
export interface EngineStore {
  /** Creates the job for a platform event, or returns the existing one for the same event id. */
  createJob(eventId: string, request: GenerationRequest, now: number): { job: Job; created: boolean };
  getJob(jobId: string): Job | undefined;
  findJobByEvent(eventId: string): Job | undefined;
  /**
   * Moves a job to `to` if it is in one of `from` (atomically); undefined when it was not. `durable` commits
   * with an fsync (synchronous=FULL): for the changes a power loss must not roll back.
   */
  transition(
    jobId: string,
    to: JobState,
    from: readonly JobState[],
    patch?: JobPatch,
    options?: { durable?: boolean },
  ): Job | undefined;
  /** Jobs in these states, in creation order. */
  jobsInStates(states: readonly JobState[]): Job[];
  /** Stores a job's images (file first, then row). */
  saveImages(jobId: string, images: readonly EncodedImage[]): Promise<StoredImage[]>;
  loadImages(jobId: string): Promise<StoredImage[]>;
  /** Failed and undeliverable jobs whose end has not been shown to the requester yet. */
  unnotifiedFailures(): Job[];
  markFailureNotified(jobId: string, now: number): void;
}

/** Concurrency and rate per backend. */
export interface BackendLimits {
  concurrency: number;
  /** At most `intervalCap` starts per `intervalMs` (the OpenAI requests-per-minute cap). */
  intervalCap?: number;
  intervalMs?: number;
  /** A render taking longer is aborted and counts as a transient failure. */
  timeoutMs: number;
  /** Starting guess for the ETA: milliseconds per cost unit (see `jobCost`). */
  msPerUnit: number;
}

/** Queue bounds and the retry cap. */
export interface EngineLimits {
  /** Jobs one member may have waiting or rendering. */
  maxQueuedPerUser: number;
  /** Jobs one workspace (guild / Slack team) may have waiting or rendering. */
  maxQueuedPerWorkspace: number;
  /** The global bound: beyond it every request gets "queue full". */
  maxQueued: number;
  /** Render attempts per job, the first included. */
  maxAttempts: number;
}

export const DEFAULT_ENGINE_LIMITS: Readonly<EngineLimits> = {
  maxQueuedPerUser: DEFAULT_LIMITS.maxQueuedPerUser,
  maxQueuedPerWorkspace: 25,
  maxQueued: 100,
  maxAttempts: 3,
};

/**
 * How long stop() waits, after the grace, for aborted renders to settle. A backend that has not stopped by then
 * is left behind: its job stays `running` in the store, which the next start recovers like a crash.
 */
export const STOP_ABORT_WAIT_MS = 5_000;

export const DEFAULT_BACKEND_LIMITS: Record<BackendName, BackendLimits> = {
  ldm: { concurrency: 1, timeoutMs: 10 * 60_000, msPerUnit: 150 },
  openai: { concurrency: 4, intervalCap: 5, intervalMs: 60_000, timeoutMs: 3 * 60_000, msPerUnit: 15_000 },
};

/** Reads a stored image and converts it as a backend asks (main wires in src/render). */
export type ImageLoader = (imageId: string, as: ImageRequest) => Promise<BackendImage>;

export interface EngineOptions {
  store: EngineStore;
  loadImage: ImageLoader;
  backends: Partial<Record<BackendName, ImageBackend>>;
  encoder: ImageEncoder;
  limits?: Partial<EngineLimits>;
  backendLimits?: Partial<Record<BackendName, Partial<BackendLimits>>>;
  /**
   * How much one cost unit of this request's model costs against its lane's learned rate (default 1): SDXL's
   * UNet costs more per pixel and step than SD 1.x's, so a lane serving both gives each its own ETA.
   */
  costWeight?: (request: GenerationRequest) => number;
  now?: () => number;
}

/** The events platforms listen to. Every event carries the job as stored after the change. */
export interface EngineEvents {
  /**
   * start() took over a job an earlier process left unfinished (queued, running, rendered or delivering; or
   * undeliverable with its requester not told yet): its messages were posted, if at all, by that process. A
   * rendered or delivering job is the relay's to deliver; its images are not loaded here (one job's at a time,
   * when its turn comes).
   */
  resumed: [{ job: Job }];
  queued: [{ job: Job; position: number; etaMs: number; retry: boolean }];
  started: [{ job: Job }];
  progress: [{ job: Job; progress: BackendProgress }];
  done: [{ job: Job; images: StoredImage[]; notes: string[]; renderMs: number; revisedPrompt?: string }];
  failed: [{ job: Job; code: string; message: string }];
  cancelled: [{ job: Job }];
}

/** The answer to a submit: accepted (with the place in line) or refused with a reason for the user. */
export type SubmitResult =
  | { ok: true; job: Job; duplicate: boolean; position: number; etaMs: number }
  | { ok: false; code: "queue_full" | "limit_reached" | "not_supported" | "shutting_down"; message: string };

/**
 * Relative cost of a job, for ETAs: LDM scales with steps × pixels × images, times its model's weight; OpenAI
 * with images.
 */
export function jobCost(request: GenerationRequest, weight = 1): number {
  if (request.backend === "openai") return request.count;
  return (weight * request.steps * request.width * request.height * request.count) / (512 * 512);
}

interface Running {
  job: Job;
  controller: AbortController;
  startedAt: number;
  cancelled: boolean;
  shutdown: boolean;
  /** stop() gave up waiting for it: it must not touch the store (which may be closed) when it settles. */
  abandoned: boolean;
  /** The render's timeout (cleared when it settles or is abandoned). */
  timeout: NodeJS.Timeout | undefined;
  /** Resolves when the render has settled, success or not. */
  settled: Promise<void>;
}

interface Lane {
  name: BackendName;
  backend: ImageBackend;
  limits: BackendLimits;
  /** Jobs waiting to start, in fair order. */
  fair: FairQueue;
  /** Jobs the backend is working on: the concurrency count. A slot frees only when the backend returned. */
  running: Map<string, Running>;
  /** When recent jobs started, oldest first, pruned to the rate cap's window (empty without a cap). */
  starts: number[];
  /** Pumps again when the window frees a start; set only while a job waits for one, cleared on stop. */
  rateTimer: NodeJS.Timeout | undefined;
  /** Moving average of milliseconds per cost unit. */
  msPerUnit: number;
}

/** The job engine; see the module comment. */
export class Engine extends EventEmitter<EngineEvents> {
  private readonly store: EngineStore;
  private readonly encoder: ImageEncoder;
  private readonly loadImage: ImageLoader;
  private readonly limits: EngineLimits;
  private readonly lanes = new Map<BackendName, Lane>();
  private readonly now: () => number;
  private readonly costWeight: (request: GenerationRequest) => number;
  /** Queued jobs by id (waiting in a lane's FairQueue). */
  private readonly queued = new Map<string, Job>();
  private readonly lastPosition = new Map<string, number>();
  /** Queued jobs that are waiting again after a failed attempt (their status says so). */
  private readonly retrying = new Set<string>();
  private accepting = false;

  constructor(options: EngineOptions) {
    super();
    this.store = options.store;
    this.encoder = options.encoder;
    this.loadImage = options.loadImage;
    this.limits = { ...DEFAULT_ENGINE_LIMITS, ...options.limits };
    this.now = options.now ?? Date.now;
    this.costWeight = options.costWeight ?? (() => 1);
    for (const [name, backend] of Object.entries(options.backends) as [BackendName, ImageBackend][]) {
      const limits = { ...DEFAULT_BACKEND_LIMITS[name], ...options.backendLimits?.[name] };
      this.lanes.set(name, {
        name,
        backend,
        limits,
        fair: new FairQueue(),
        running: new Map(),
        starts: [],
        rateTimer: undefined,
        msPerUnit: limits.msPerUnit,
      });
    }
  }

  /**
   * Resumes after a (re)start, from the store: queued jobs return in their original order, running ones are
   * retried (or failed once out of attempts), rendered ones are handed out for delivery without rendering
   * again, and failures not yet shown are shown. Listeners must be attached before this is called.
   */
  async start(): Promise<void> {
    this.accepting = true;
    for (const job of this.store.jobsInStates(["queued", "running", "rendered", "delivering"])) {
      if (job.state === "rendered" || job.state === "delivering") {
        this.emit("resumed", { job });
      } else if (job.state === "running") {
        if (job.attempts >= this.limits.maxAttempts) {
          // Resumed first, as every job this process takes over: the relay then knows its status message and
          // shows the failure there, instead of waiting for a handle no adapter will bind.
          this.emit("resumed", { job });
          this.fail(job, new EaselError("worker_crashed", MESSAGES.interruptedOutOfRetries), ["running"]);
        } else {
          const requeued = this.store.transition(job.id, "queued", ["running"]);
          if (requeued) {
            this.emit("resumed", { job: requeued });
            this.enqueue(requeued, true);
          }
        }
      } else {
        this.emit("resumed", { job });
        this.enqueue(job, false);
      }
    }
    for (const job of this.store.unnotifiedFailures()) {
      if (job.state === "undeliverable") {
        this.emit("resumed", { job });
        continue;
      }
      this.emit("resumed", { job });
      this.emit("failed", {
        job,
        code: job.errorCode ?? "internal",
        message: job.errorMessage ?? MESSAGES.failedGeneric,
      });
    }
    this.publishPositions();
    for (const lane of this.lanes.values()) this.pump(lane);
  }

  /**
   * Records a request and queues it. The job row is written (synchronously, durably) before this returns, so
   * the platform can acknowledge right after. The same event id twice gives the same job.
   */
  submit(
    eventId: string,
    request: GenerationRequest,
    options: { maxQueuedPerUser?: number } = {},
  ): SubmitResult {
    // A redelivered platform event (the same interaction twice) gets the job it already made, not a refusal.
    const existing = this.resubmitted(eventId);
    if (existing) return existing;
    if (!this.accepting) return { ok: false, code: "shutting_down", message: MESSAGES.shuttingDown };
    const lane = this.lanes.get(request.backend);
    if (!lane) {
      return { ok: false, code: "not_supported", message: MESSAGES.backendUnavailable(request.backend) };
    }
    // A guild or channel may set a lower per-member limit than the engine's (never a higher one).
    const refusal = this.checkLimits(
      request,
      Math.min(options.maxQueuedPerUser ?? Number.POSITIVE_INFINITY, this.limits.maxQueuedPerUser),
    );
    if (refusal) return refusal;
    const { job, created } = this.store.createJob(eventId, request, this.now());
    if (!created) return this.accepted(job, true);
    this.enqueue(job, false);
    this.publishPositions(job.id);
    this.pump(lane);
    return this.accepted(this.store.getJob(job.id) ?? job, false);
  }

  /**
   * The job an earlier delivery of this platform event made, as a duplicate submit answers it; undefined for a
   * new event. Callers that refuse requests before `submit` (quotas, settings) ask this first, so a redelivered
   * event is never refused over the very job it made.
   */
  resubmitted(eventId: string): Extract<SubmitResult, { ok: true }> | undefined {
    const existing = this.store.findJobByEvent(eventId);
    return existing ? this.accepted(existing, true) : undefined;
  }

  /**
   * Cancels a job: a queued one at once; a running one through its AbortSignal (the backend slot frees only
   * when the backend has stopped). Returns false when the job is already finished.
   */
  cancel(jobId: string): boolean {
    const job = this.queued.get(jobId);
    if (job) {
      const lane = this.lanes.get(job.request.backend);
      lane?.fair.remove(jobId);
      this.queued.delete(jobId);
      this.lastPosition.delete(jobId);
      const cancelled = this.store.transition(jobId, "cancelled", ["queued"], { finishedAt: this.now() });
      if (cancelled) this.emit("cancelled", { job: cancelled });
      this.publishPositions();
      return cancelled !== undefined;
    }
    for (const lane of this.lanes.values()) {
      const running = lane.running.get(jobId);
      if (running) {
        running.cancelled = true;
        running.controller.abort(new EaselError("cancelled", MESSAGES.cancelled));
        return true;
      }
    }
    return false;
  }

  /**
   * A delivery attempt begins: rendered → delivering (or one more attempt while delivering), counting it and
   * stamping the first one's time. Undefined when the job is not waiting for delivery (delivered, cancelled).
   */
  beginDelivery(jobId: string): Job | undefined {
    const job = this.store.getJob(jobId);
    if (job?.state !== "rendered" && job?.state !== "delivering") return undefined;
    // Not durable: a count a power loss rolls back only gives the result one attempt more.
    return this.store.transition(jobId, "delivering", ["rendered", "delivering"], {
      deliveryAttempts: (job.deliveryAttempts ?? 0) + 1,
      deliveringSince: job.deliveringSince ?? this.now(),
    });
  }

  /** The platform posted the result: the job is delivered (idempotent), durably before anyone relies on it. */
  delivered(jobId: string): Job | undefined {
    return this.store.transition(
      jobId,
      "delivered",
      ["rendered", "delivering"],
      { finishedAt: this.now() },
      { durable: true },
    );
  }

  /**
   * The result can never be posted (a permanent refusal, or out of attempts or time): it ends undeliverable,
   * its images stay in the store, and no later start tries again (durably so). `message` says why, for the
   * requester; `failureShown` records that they were told.
   */
  undeliverable(jobId: string, message: string): Job | undefined {
    return this.store.transition(
      jobId,
      "undeliverable",
      ["rendered", "delivering"],
      { finishedAt: this.now(), errorCode: "delivery_failed", errorMessage: message },
      { durable: true },
    );
  }

  /** The platform showed the failure (or that the result was undeliverable) to the requester. */
  failureShown(jobId: string): void {
    this.store.markFailureNotified(jobId, this.now());
  }

  /** Place in line (1 = next) and ETA of a queued job; undefined when it is not waiting. */
  positionOf(jobId: string): { position: number; etaMs: number } | undefined {
    const job = this.queued.get(jobId);
    if (!job) return undefined;
    return this.positions(job.request.backend).get(jobId);
  }

  /** Jobs waiting or running, for `/queue` and `/info`. */
  activeJobs(): { job: Job; state: "queued" | "running"; position?: number; etaMs?: number }[] {
    const out: { job: Job; state: "queued" | "running"; position?: number; etaMs?: number }[] = [];
    for (const lane of this.lanes.values()) {
      for (const r of lane.running.values()) out.push({ job: r.job, state: "running" });
      const positions = this.positions(lane.name);
      for (const entry of lane.fair.order()) {
        const job = this.queued.get(entry.jobId);
        const place = positions.get(entry.jobId);
        if (job && place) out.push({ job, state: "queued", ...place });
      }
    }
    return out;
  }

  /** Average milliseconds per image recently, per backend (for `/info`). */
  recentMsPerImage(backend: BackendName): number | undefined {
    const lane = this.lanes.get(backend);
    if (!lane) return undefined;
    // One 512², 25-step image is 25 units on the LDM scale; one image is one unit for OpenAI.
    return lane.msPerUnit * (backend === "ldm" ? 25 : 1);
  }

  /**
   * Stops taking work, lets running jobs finish for up to `graceMs`, then aborts them and puts them back in
   * the queue (state queued) so the next start runs them. Waiting jobs stay queued in the store. Returns within
   * `graceMs` + STOP_ABORT_WAIT_MS whatever the backends do: one that ignores its abort is left behind.
   */
  async stop(graceMs: number): Promise<void> {
    this.accepting = false;
    for (const lane of this.lanes.values()) {
      clearTimeout(lane.rateTimer);
      lane.rateTimer = undefined;
    }
    const running = [...this.lanes.values()].flatMap((lane) => [...lane.running.values()]);
    if (running.length === 0) return;
    const settled = Promise.all(running.map((r) => r.settled));
    if (await within(settled, graceMs)) return;
    for (const r of running) {
      r.shutdown = true;
      r.controller.abort(new EaselError("shutting_down", MESSAGES.shuttingDown));
    }
    if (await within(settled, STOP_ABORT_WAIT_MS)) return;
    for (const lane of this.lanes.values()) {
      for (const r of lane.running.values()) {
        // Its job stays `running` in the store: the next start retries it, as after a crash.
        r.abandoned = true;
        clearTimeout(r.timeout);
      }
      lane.running.clear();
    }
  }

  private accepted(job: Job, duplicate: boolean): Extract<SubmitResult, { ok: true }> {
    const place = this.positionOf(job.id);
    return { ok: true, job, duplicate, position: place?.position ?? 0, etaMs: place?.etaMs ?? 0 };
  }

  private checkLimits(request: GenerationRequest, maxPerUser: number): SubmitResult | undefined {
    let total = 0;
    let user = 0;
    let workspace = 0;
    const { userId, workspaceId } = request.requester;
    const count = (job: Job) => {
      total++;
      if (job.request.requester.workspaceId === workspaceId) {
        workspace++;
        if (job.request.requester.userId === userId) user++;
      }
    };
    for (const job of this.queued.values()) count(job);
    for (const lane of this.lanes.values()) for (const r of lane.running.values()) count(r.job);
    if (total >= this.limits.maxQueued) {
      return { ok: false, code: "queue_full", message: MESSAGES.queueFull(this.limits.maxQueued) };
    }
    if (user >= maxPerUser) {
      return { ok: false, code: "limit_reached", message: MESSAGES.userLimit(maxPerUser) };
    }
    if (workspace >= this.limits.maxQueuedPerWorkspace) {
      return {
        ok: false,
        code: "limit_reached",
        message: MESSAGES.workspaceLimit(this.limits.maxQueuedPerWorkspace),
      };
    }
    return undefined;
  }

  private enqueue(job: Job, retry: boolean): void {
    const lane = this.lanes.get(job.request.backend);
    if (!lane) {
      this.fail(job, new EaselError("not_supported", MESSAGES.backendUnavailable(job.request.backend)), [
        "queued",
      ]);
      return;
    }
    this.queued.set(job.id, job);
    lane.fair.push({
      jobId: job.id,
      workspaceId: job.request.requester.workspaceId,
      userId: job.request.requester.userId,
    });
    if (retry) {
      this.lastPosition.delete(job.id);
      this.retrying.add(job.id);
    } else {
      this.retrying.delete(job.id);
    }
  }

  /**
   * Starts jobs, in fair order, while the backend can take one now: a free concurrency slot and a free start in
   * the rate window. A job that waits only for the window gets a timer that pumps again when a start frees.
   */
  private pump(lane: Lane): void {
    if (!this.accepting) return;
    while (lane.running.size < lane.limits.concurrency && lane.fair.size > 0) {
      const waitMs = this.rateWaitMs(lane, this.now());
      if (waitMs > 0) {
        this.armRateTimer(lane, waitMs);
        break;
      }
      const entry = lane.fair.shift() as QueuedEntry;
      const job = this.queued.get(entry.jobId);
      this.queued.delete(entry.jobId);
      this.lastPosition.delete(entry.jobId);
      if (job) this.begin(lane, job);
    }
    this.publishPositions();
  }

  /** Milliseconds until the rate cap allows another start (0: now). */
  private rateWaitMs(lane: Lane, now: number): number {
    const cap = rateCap(lane.limits);
    if (!cap) return 0;
    const starts = windowStarts(lane, cap, now);
    if (starts.length < cap.starts) return 0;
    // The window holds exactly `cap.starts` starts (no more are ever admitted): the oldest leaving frees one.
    return (starts[0] as number) + cap.windowMs - now;
  }

  private armRateTimer(lane: Lane, waitMs: number): void {
    clearTimeout(lane.rateTimer);
    lane.rateTimer = setTimeout(() => {
      lane.rateTimer = undefined;
      this.pump(lane);
    }, waitMs);
  }

  /** Moves a job to running and hands it to the backend (synchronously: the slot is taken at once). */
  private begin(lane: Lane, queuedJob: Job): void {
    const startedAt = this.now();
    const job = this.store.transition(queuedJob.id, "running", ["queued"], {
      attempts: queuedJob.attempts + 1,
      startedAt,
    });
    if (!job) return; // no longer queued in the store: nothing started, no slot or start used
    if (rateCap(lane.limits)) lane.starts.push(startedAt);
    const running: Running = {
      job,
      controller: new AbortController(),
      startedAt,
      cancelled: false,
      shutdown: false,
      abandoned: false,
      timeout: undefined,
      settled: Promise.resolve(),
    };
    lane.running.set(job.id, running);
    this.emit("started", { job });
    const rendering = this.render(lane, running);
    // stop() waits on `settled`, which never rejects; `rendering` itself stays unhandled on purpose, so a store
    // failure while recording the outcome surfaces (and crashes, for recovery from the store) as it always did.
    running.settled = new Promise((resolve) => void rendering.finally(resolve));
  }

  private async render(lane: Lane, running: Running): Promise<void> {
    const { job, controller, startedAt } = running;
    running.timeout = setTimeout(
      () => controller.abort(new EaselError("timeout", MESSAGES.timedOut(lane.limits.timeoutMs))),
      lane.limits.timeoutMs,
    );
    try {
      const result = await lane.backend.generate(job.request, {
        signal: controller.signal,
        onProgress: (progress) => this.emit("progress", { job, progress }),
        loadImage: (id, as) => this.loadImage(id, as),
      });
      if (controller.signal.aborted) throw controller.signal.reason;
      if (running.abandoned) return;
      const encoded = await this.encoder(job.request, result);
      const images = await this.store.saveImages(job.id, encoded);
      const rendered = this.store.transition(job.id, "rendered", ["running"], {
        renderedAt: this.now(),
        ...(result.costUsd === undefined ? {} : { costUsd: result.costUsd }),
      });
      this.learnDuration(lane, job.request, this.now() - startedAt);
      if (rendered) {
        this.emit("done", {
          job: rendered,
          images,
          notes: result.notes,
          renderMs: result.renderMs,
          ...(result.revisedPrompt ? { revisedPrompt: result.revisedPrompt } : {}),
        });
      }
    } catch (raw) {
      if (running.abandoned) return;
      const err = running.cancelled
        ? new EaselError("cancelled", MESSAGES.cancelled)
        : controller.signal.aborted && isEaselError(controller.signal.reason)
          ? controller.signal.reason
          : raw;
      this.handleFailure(job, err, running);
    } finally {
      clearTimeout(running.timeout);
      if (!running.abandoned) {
        lane.running.delete(job.id);
        this.pump(lane);
      }
    }
  }

  private handleFailure(job: Job, err: unknown, running: Running): void {
    const code = isEaselError(err) ? err.code : "internal";
    if (running.shutdown) {
      // Put it back for the next start; this attempt does not count against the job.
      this.store.transition(job.id, "queued", ["running"], { attempts: Math.max(0, job.attempts - 1) });
      return;
    }
    if (code === "cancelled") {
      const cancelled = this.store.transition(job.id, "cancelled", ["running"], { finishedAt: this.now() });
      if (cancelled) this.emit("cancelled", { job: cancelled });
      return;
    }
    if (TRANSIENT_ERROR_CODES.has(code) && job.attempts < this.limits.maxAttempts && this.accepting) {
      const requeued = this.store.transition(job.id, "queued", ["running"], {
        errorCode: code,
        errorMessage: err instanceof Error ? err.message : String(err),
      });
      if (requeued) {
        this.enqueue(requeued, true);
        this.emitQueued(requeued, true);
      }
      return;
    }
    this.fail(job, err, ["running"]);
  }

  private fail(job: Job, err: unknown, from: readonly JobState[]): void {
    const code = isEaselError(err) ? err.code : "internal";
    const message = userMessage(code, err);
    const failed = this.store.transition(job.id, "failed", from, {
      finishedAt: this.now(),
      errorCode: code,
      errorMessage: message,
    });
    if (failed) this.emit("failed", { job: failed, code, message });
  }

  private cost(request: GenerationRequest): number {
    return jobCost(request, this.costWeight(request));
  }

  private learnDuration(lane: Lane, request: GenerationRequest, ms: number): void {
    const units = this.cost(request);
    if (units <= 0 || ms <= 0) return;
    // An exponentially weighted average: recent jobs count most (models and load change).
    lane.msPerUnit = 0.7 * lane.msPerUnit + 0.3 * (ms / units);
  }

  /**
   * Position and ETA of every waiting job of a backend, by playing the queue forward: each job starts at the
   * earliest time a concurrency slot is free (running jobs end when their expected time is up) and the rate
   * window has a start to spare, and its ETA is that start plus its own expected render time.
   */
  private positions(backend: BackendName): Map<string, { position: number; etaMs: number }> {
    const lane = this.lanes.get(backend);
    const out = new Map<string, { position: number; etaMs: number }>();
    if (!lane) return out;
    const now = this.now();
    const slots: number[] = [];
    for (const r of lane.running.values()) {
      slots.push(Math.max(now, r.startedAt + this.cost(r.job.request) * lane.msPerUnit));
    }
    while (slots.length < lane.limits.concurrency) slots.push(now);
    const cap = rateCap(lane.limits);
    // Past starts still in the window, then the simulated ones (non-decreasing, so the list stays sorted).
    const starts = cap ? [...windowStarts(lane, cap, now)] : [];
    let position = 0;
    for (const entry of lane.fair.order()) {
      const job = this.queued.get(entry.jobId);
      if (!job) continue;
      position++;
      let slot = 0;
      for (let i = 1; i < slots.length; i++) if ((slots[i] as number) < (slots[slot] as number)) slot = i;
      let start = slots[slot] as number;
      if (cap && starts.length >= cap.starts) {
        start = Math.max(start, (starts[starts.length - cap.starts] as number) + cap.windowMs);
      }
      const own = this.cost(job.request) * lane.msPerUnit;
      if (cap) starts.push(start);
      slots[slot] = start + own;
      out.set(entry.jobId, { position, etaMs: Math.round(start + own - now) });
    }
    return out;
  }

  /** Emits `queued` for every waiting job whose position changed (and for `always`). */
  private publishPositions(always?: string): void {
    for (const lane of this.lanes.values()) {
      for (const [jobId, place] of this.positions(lane.name)) {
        if (this.lastPosition.get(jobId) === place.position && jobId !== always) continue;
        this.lastPosition.set(jobId, place.position);
        const job = this.queued.get(jobId);
        if (job) this.emit("queued", { job, ...place, retry: this.retrying.has(jobId) });
      }
    }
  }

  private emitQueued(job: Job, retry: boolean): void {
    const place = this.positionOf(job.id);
    if (place) {
      this.lastPosition.set(job.id, place.position);
      this.emit("queued", { job, ...place, retry });
    }
  }
}

/** The user-facing text of a failure; internal errors get a generic text (details stay in logs). */
function userMessage(code: string, err: unknown): string {
  if (code === "internal" || !(err instanceof Error)) return MESSAGES.failedGeneric;
  return err.message;
}

/** A backend's rate cap (at most `starts` job starts in any `windowMs`), undefined when it has none. */
function rateCap(limits: BackendLimits): { starts: number; windowMs: number } | undefined {
  const { intervalCap, intervalMs } = limits;
  return intervalCap && intervalMs && intervalCap > 0 && intervalMs > 0
    ? { starts: intervalCap, windowMs: intervalMs }
    : undefined;
}

/** The lane's starts still inside the window ending `now`, after dropping the older ones. */
function windowStarts(lane: Lane, cap: { windowMs: number }, now: number): readonly number[] {
  while (lane.starts.length > 0 && (lane.starts[0] as number) + cap.windowMs <= now) lane.starts.shift();
  return lane.starts;
}

/** True when `promise` settled within `ms`; the timer is cleared either way (nothing is left to fire). */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), expired]);
  } finally {
    clearTimeout(timer);
  }
}
