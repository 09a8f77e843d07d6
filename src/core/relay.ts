import type { BackendImage } from "./backend.ts";
import type { JobsPort } from "./bot-services.ts";
import type { Engine, EngineEvents } from "./engine.ts";
import type { Job } from "./job.ts";
import {
  type MessageModel,
  presentCancelled,
  presentDone,
  presentFailed,
  presentQueued,
  presentRunning,
} from "./presenter.ts";
import type { Requester } from "./request.ts";
import { KeyedThrottle } from "./throttle.ts";

/**
 * Engine events → the platform that asked. Status messages (queued #N, step x/y with a preview) are edited at
 * most once per `minEditIntervalMs` per job (Discord and Slack both rate-limit edits; 2 s is under both), the
 * latest state winning; a job's messages go out in order (a late progress edit never lands after its result);
 * a result is marked delivered in the engine only after the platform confirmed the post, so a crash in between
 * makes the next start post it again, and outlets make that repost harmless (edits, nonces, delivery records).
 */

/** A file to attach to a result. */
export interface OutgoingFile {
  imageId: string;
  filename: string;
  bytes: Uint8Array;
  width: number;
  height: number;
}

/** Where one platform shows a job's messages; every method may be called again for the same state. */
export interface JobOutlet {
  /** Shows the job's current status (queued, running with preview, cancelled) in its status message. */
  status(job: Job, model: MessageModel): Promise<void>;
  /** Posts the finished result with its files; a second call for the same job must not post twice. */
  result(job: Job, model: MessageModel, files: OutgoingFile[]): Promise<void>;
  /** Shows a failure to the requester. */
  failure(job: Job, model: MessageModel): Promise<void>;
  /** The job's last message went out (or was given up): drop what was kept for it. */
  release?(jobId: string): void;
}

/** Preview frames kept with a job for "how it was made". */
export interface PreviewKeeper {
  keep(job: Job, frames: { step: number; total: number; image: BackendImage }[]): Promise<void>;
}

export interface RelayOptions {
  /** The fewest milliseconds between two edits of one job's status message (default 2000). */
  minEditIntervalMs?: number;
  /** Delivery attempts before a result is left for the next start (default 3). */
  deliveryAttempts?: number;
  /** Milliseconds before the second attempt; doubles each time (default 2000). */
  retryDelayMs?: number;
  previews?: PreviewKeeper;
  /** Called once a result is posted and the job marked delivered (contests open their vote then). */
  afterResult?: (job: Job) => void;
  /** Called once a failure or a cancellation is shown (an arena match whose side ended is called off). */
  afterEnded?: (job: Job) => void;
  log?: (line: string) => void;
  now?: () => number;
}

interface JobState {
  /** The job's messages, in order. */
  chain: Promise<void>;
  frames: { step: number; total: number; image: BackendImage }[];
}

export const DEFAULT_MIN_EDIT_INTERVAL_MS = 2000;

/** The relay from the engine to the platforms' outlets; see the module comment. */
export class JobRelay {
  private readonly outlets = new Map<Requester["platform"], JobOutlet>();
  private readonly jobs = new Map<string, JobState>();
  /** Status edits: at most one per job per interval, the latest state winning. */
  private readonly edits: KeyedThrottle;
  private readonly deliveryAttempts: number;
  private readonly retryDelayMs: number;
  private readonly log: (line: string) => void;
  private readonly listeners: { [K in keyof EngineEvents]: (...args: EngineEvents[K]) => void };

  constructor(
    private readonly engine: Engine,
    private readonly store: JobsPort,
    private readonly options: RelayOptions = {},
  ) {
    this.deliveryAttempts = options.deliveryAttempts ?? 3;
    this.retryDelayMs = options.retryDelayMs ?? 2000;
    this.log = options.log ?? ((line) => console.error(line));
    this.edits = new KeyedThrottle(
      options.minEditIntervalMs ?? DEFAULT_MIN_EDIT_INTERVAL_MS,
      (err) => this.log(`easel: a status edit failed: ${describe(err)}`),
      options.now ?? Date.now,
    );
    this.listeners = {
      queued: ({ job, position, etaMs, retry }) =>
        this.showStatus(job, presentQueued(job, position, etaMs, retry)),
      started: ({ job }) => this.showStatus(job, presentRunning(job)),
      progress: ({ job, progress }) => {
        if (progress.preview && this.outletFor(job)) {
          this.state(job.id).frames.push({ ...progress, image: progress.preview });
        }
        this.showStatus(job, presentRunning(job, progress));
      },
      done: ({ job, images, notes, renderMs }) =>
        this.finish(job, "result", async (outlet, attempt) => {
          const frames = this.jobs.get(job.id)?.frames ?? [];
          // The animation is a nicety: failing to keep it must never hold the result back.
          if (attempt === 1 && frames.length > 0 && this.options.previews) {
            await this.options.previews.keep(job, frames).catch((err: unknown) => {
              this.log(`easel: could not keep the previews of job ${job.id}: ${describe(err)}`);
            });
          }
          const model = presentDone(job, images, notes, renderMs);
          const byId = new Map(images.map((i) => [i.id, i]));
          const files: OutgoingFile[] = [];
          for (const { imageId, filename } of model.images) {
            const image = byId.get(imageId);
            if (!image) continue;
            const bytes = image.png.length > 0 ? image.png : await this.store.imageBytes(imageId);
            files.push({ imageId, filename, bytes, width: image.width, height: image.height });
          }
          await outlet.result(job, model, files);
          const delivered = this.engine.delivered(job.id);
          this.options.afterResult?.(delivered ?? job);
        }),
      failed: ({ job, message }) =>
        this.finish(job, "failure", async (outlet) => {
          await outlet.failure(job, presentFailed(job, message));
          this.engine.failureShown(job.id);
          this.options.afterEnded?.(job);
        }),
      cancelled: ({ job }) =>
        this.finish(job, "cancelled", async (outlet) => {
          await outlet.status(job, presentCancelled(job));
          this.options.afterEnded?.(job);
        }),
    };
  }

  /** The outlet for one platform's jobs (before `engine.start()`, so that recovered jobs find it). */
  register(platform: Requester["platform"], outlet: JobOutlet): void {
    this.outlets.set(platform, outlet);
  }

  /** Starts listening to the engine. */
  attach(): void {
    for (const [event, listener] of Object.entries(this.listeners)) {
      this.engine.on(event as keyof EngineEvents, listener as never);
    }
  }

  /** Stops listening and waits for the messages in flight. */
  async detach(): Promise<void> {
    for (const [event, listener] of Object.entries(this.listeners)) {
      this.engine.off(event as keyof EngineEvents, listener as never);
    }
    this.edits.clear();
    await Promise.allSettled([...this.jobs.values()].map((s) => s.chain));
  }

  /** Resolves when every job's messages so far have gone out (tests, shutdown). */
  async idle(): Promise<void> {
    await Promise.allSettled([...this.jobs.values()].map((s) => s.chain));
  }

  private state(jobId: string): JobState {
    let state = this.jobs.get(jobId);
    if (!state) {
      state = { chain: Promise.resolve(), frames: [] };
      this.jobs.set(jobId, state);
    }
    return state;
  }

  private outletFor(job: Job): JobOutlet | undefined {
    return this.outlets.get(job.request.requester.platform);
  }

  /** Queues a status edit: at once when the last one is old enough, else when it will be (latest wins). */
  private showStatus(job: Job, model: MessageModel): void {
    if (!this.outletFor(job)) return;
    const state = this.state(job.id);
    this.edits.schedule(job.id, async () => {
      const outlet = this.outletFor(job);
      if (!outlet) return;
      state.chain = state.chain.then(() =>
        outlet.status(job, model).catch((err: unknown) => {
          this.log(`easel: could not update the status of job ${job.id}: ${describe(err)}`);
        }),
      );
    });
  }

  /** The last message of a job: pending status edits are dropped, then `send` runs (with retries). */
  private finish(job: Job, what: string, send: (outlet: JobOutlet, attempt: number) => Promise<void>): void {
    const outlet = this.outletFor(job);
    if (!outlet) return;
    const state = this.state(job.id);
    this.edits.cancel(job.id);
    state.chain = state.chain
      .then(async () => {
        for (let attempt = 1; ; attempt++) {
          try {
            await send(outlet, attempt);
            return;
          } catch (err) {
            if (attempt >= this.deliveryAttempts) {
              // The job stays "rendered" (or its failure unshown): the next start delivers it.
              this.log(`easel: could not post the ${what} of job ${job.id}: ${describe(err)}`);
              return;
            }
            await new Promise((r) => setTimeout(r, this.retryDelayMs * 2 ** (attempt - 1)));
          }
        }
      })
      .finally(() => {
        outlet.release?.(job.id);
        if (this.jobs.get(job.id) === state && !this.edits.waiting(job.id)) this.jobs.delete(job.id);
      });
  }
}

/** An error as one log line, without stack traces of SDK internals. */
function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
