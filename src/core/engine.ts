import { EventEmitter } from "node:events";
import PQueue from "p-queue";
import type {
  BackendImage,
  BackendProgress,
  EncodedImage,
  ImageBackend,
  ImageEncoder,
  ImageRequest,
} from "./backend.ts";
import { EaselError, isEaselError, TRANSIENT_ERROR_CODES } from "./errors.ts";
import { FairQueue } from "./fair-queue.ts";
import type { Job, JobState } from "./job.ts";
import { MESSAGES } from "./messages.ts";
import type { BackendName, GenerationRequest } from "./request.ts";
import { DEFAULT_LIMITS } from "./settings.ts";

/**
 * The job engine: takes validated requests, keeps them durable in the store before anyone is told "queued",
 * starts them fairly (FairQueue, one p-queue per backend for concurrency and rate), reports position, ETA and
 * progress as events, retries transient failures up to a cap, and after a restart resumes every job exactly
 * where the store says it was. Platforms listen to the events and call `delivered` once a result is posted.
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
}

/** The persistence the engine needs; src/store implements it over SQLite. */
export interface EngineStore {
  /** Creates the job for a platform event, or returns the existing one for the same event id. */
  createJob(eventId: string, request: GenerationRequest, now: number): { job: Job; created: boolean };
  getJob(jobId: string): Job | undefined;
  findJobByEvent(eventId: string): Job | undefined;
  /** Moves a job to `to` if it is in one of `from` (atomically); undefined when it was not. */
  transition(jobId: string, to: JobState, from: readonly JobState[], patch?: JobPatch): Job | undefined;
  /** Jobs in these states, in creation order. */
  jobsInStates(states: readonly JobState[]): Job[];
  /** Stores a job's images (file first, then row). */
  saveImages(jobId: string, images: readonly EncodedImage[]): Promise<StoredImage[]>;
  loadImages(jobId: string): Promise<StoredImage[]>;
  /** Failed jobs whose failure has not been shown to the requester yet. */
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
  now?: () => number;
}

/** The events platforms listen to. Every event carries the job as stored after the change. */
export interface EngineEvents {
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

/** Relative cost of a job, for ETAs: LDM scales with steps × pixels × images; OpenAI with images. */
export function jobCost(request: GenerationRequest): number {
  if (request.backend === "openai") return request.count;
  return (request.steps * request.width * request.height * request.count) / (512 * 512);
}

interface Running {
  job: Job;
  controller: AbortController;
  startedAt: number;
  cancelled: boolean;
  shutdown: boolean;
}

interface Lane {
  name: BackendName;
  backend: ImageBackend;
  limits: BackendLimits;
  pq: PQueue;
  fair: FairQueue;
  running: Map<string, Running>;
  /** Jobs handed to p-queue and not finished (p-queue's own count lags behind our `finally`). */
  inFlight: number;
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
    for (const [name, backend] of Object.entries(options.backends) as [BackendName, ImageBackend][]) {
      const limits = { ...DEFAULT_BACKEND_LIMITS[name], ...options.backendLimits?.[name] };
      const pq = new PQueue({
        concurrency: limits.concurrency,
        ...(limits.intervalCap && limits.intervalMs
          ? { intervalCap: limits.intervalCap, interval: limits.intervalMs }
          : {}),
      });
      this.lanes.set(name, {
        name,
        backend,
        limits,
        pq,
        fair: new FairQueue(),
        running: new Map(),
        inFlight: 0,
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
    for (const job of this.store.jobsInStates(["queued", "running", "rendered"])) {
      if (job.state === "rendered") {
        this.emit("done", { job, images: await this.store.loadImages(job.id), notes: [], renderMs: 0 });
      } else if (job.state === "running") {
        if (job.attempts >= this.limits.maxAttempts) {
          this.fail(job, new EaselError("worker_crashed", MESSAGES.interruptedOutOfRetries), ["running"]);
        } else {
          const requeued = this.store.transition(job.id, "queued", ["running"]);
          if (requeued) this.enqueue(requeued, true);
        }
      } else {
        this.enqueue(job, false);
      }
    }
    for (const job of this.store.unnotifiedFailures()) {
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
    if (!this.accepting) return { ok: false, code: "shutting_down", message: MESSAGES.shuttingDown };
    const lane = this.lanes.get(request.backend);
    if (!lane) {
      return { ok: false, code: "not_supported", message: MESSAGES.backendUnavailable(request.backend) };
    }
    // A redelivered platform event (the same interaction twice) gets the job it already made, not a refusal.
    const existing = this.store.findJobByEvent(eventId);
    if (existing) return this.accepted(existing, true);
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

  /** The platform posted the result: the job is delivered (idempotent). */
  delivered(jobId: string): Job | undefined {
    return this.store.transition(jobId, "delivered", ["rendered"], { finishedAt: this.now() });
  }

  /** The platform showed the failure to the requester. */
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
   * the queue (state queued) so the next start runs them. Waiting jobs stay queued in the store.
   */
  async stop(graceMs: number): Promise<void> {
    this.accepting = false;
    for (const lane of this.lanes.values()) lane.pq.pause();
    const running = [...this.lanes.values()].flatMap((lane) => [...lane.running.values()]);
    const idle = Promise.all([...this.lanes.values()].map((lane) => lane.pq.onIdle()));
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<"expired">((resolve) => {
      timer = setTimeout(() => resolve("expired"), graceMs);
    });
    if ((await Promise.race([idle, expired])) === "expired") {
      for (const r of running) {
        r.shutdown = true;
        r.controller.abort(new EaselError("shutting_down", MESSAGES.shuttingDown));
      }
      await idle;
    }
    clearTimeout(timer);
  }

  private accepted(job: Job, duplicate: boolean): SubmitResult {
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

  /** Starts jobs while the backend has free slots, in fair order. */
  private pump(lane: Lane): void {
    if (!this.accepting) return;
    // Only as many jobs leave the fair queue as the backend can start: the order stays ours, not p-queue's.
    while (lane.inFlight < lane.limits.concurrency) {
      const entry = lane.fair.shift();
      if (!entry) break;
      const job = this.queued.get(entry.jobId);
      this.queued.delete(entry.jobId);
      this.lastPosition.delete(entry.jobId);
      if (!job) continue;
      lane.inFlight++;
      void lane.pq.add(async () => {
        try {
          await this.run(lane, job);
        } finally {
          // The slot is free only now, after the backend really returned.
          lane.inFlight--;
          this.pump(lane);
        }
      });
    }
    this.publishPositions();
  }

  private async run(lane: Lane, queuedJob: Job): Promise<void> {
    const startedAt = this.now();
    const job = this.store.transition(queuedJob.id, "running", ["queued"], {
      attempts: queuedJob.attempts + 1,
      startedAt,
    });
    if (!job) return; // cancelled meanwhile
    const controller = new AbortController();
    const running: Running = { job, controller, startedAt, cancelled: false, shutdown: false };
    lane.running.set(job.id, running);
    this.emit("started", { job });
    const timeout = setTimeout(
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
      const err = running.cancelled
        ? new EaselError("cancelled", MESSAGES.cancelled)
        : controller.signal.aborted && isEaselError(controller.signal.reason)
          ? controller.signal.reason
          : raw;
      this.handleFailure(job, err, running);
    } finally {
      clearTimeout(timeout);
      lane.running.delete(job.id);
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

  private learnDuration(lane: Lane, request: GenerationRequest, ms: number): void {
    const units = jobCost(request);
    if (units <= 0 || ms <= 0) return;
    // An exponentially weighted average: recent jobs count most (models and load change).
    lane.msPerUnit = 0.7 * lane.msPerUnit + 0.3 * (ms / units);
  }

  /** Position and ETA of every waiting job of a backend. */
  private positions(backend: BackendName): Map<string, { position: number; etaMs: number }> {
    const lane = this.lanes.get(backend);
    const out = new Map<string, { position: number; etaMs: number }>();
    if (!lane) return out;
    const now = this.now();
    let ahead = 0;
    for (const r of lane.running.values()) {
      ahead += Math.max(0, jobCost(r.job.request) * lane.msPerUnit - (now - r.startedAt));
    }
    let position = 0;
    for (const entry of lane.fair.order()) {
      const job = this.queued.get(entry.jobId);
      if (!job) continue;
      position++;
      const own = jobCost(job.request) * lane.msPerUnit;
      out.set(entry.jobId, { position, etaMs: Math.round((ahead + own) / lane.limits.concurrency) });
      ahead += own;
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
