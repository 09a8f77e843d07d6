import type { BackendImage } from "./backend.ts";
import type { JobsPort } from "./bot-services.ts";
import { isPermanentDeliveryError } from "./delivery-error.ts";
import {
  afterFailedAttempt,
  DEFAULT_DELIVERY_POLICY,
  type DeliveryPolicy,
  presentUndeliverable,
} from "./delivery-machine.ts";
import type { Engine, EngineEvents, StoredImage } from "./engine.ts";
import type { Job } from "./job.ts";
import { BOT_MESSAGES } from "./messages.ts";
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
 * Engine events → the platform that asked, and the delivery state machine (core/delivery-machine.ts).
 *
 * Status: each job has one status message, whose platform handle the relay owns. A new job's handle is
 * pending until its adapter binds it (`bind`, once the platform answered the post) or says the post failed
 * (`unbound`); meanwhile the relay holds the latest status and edits nothing, so no adapter has to announce a
 * job before its first await. A job taken over at start-up gets the handle its outlet recorded, or none (an
 * outlet that can `open` one then posts it). Edits go at most once per `minEditIntervalMs` per job (Discord and
 * Slack both rate-limit edits; 2 s is under both), the latest state winning; a job's messages go out in order.
 *
 * Results: each attempt is counted on the job (rendered → delivering); a posted result is delivered; a permanent
 * refusal, too many attempts or too much time end it undeliverable, its requester told (once). Transient
 * errors wait and try again. Jobs taken over at start-up, and every retry, read their images from the store in
 * one lane, one job at a time, so that a start after an outage never holds every pending image at once.
 * Outlets make a repeated attempt harmless: every non-idempotent post carries a delivery key recorded durably
 * before it, and is looked up on the platform before it is repeated.
 */

/** A file to attach to a result. */
export interface OutgoingFile {
  imageId: string;
  filename: string;
  bytes: Uint8Array;
  width: number;
  height: number;
}

/**
 * Where one platform shows a job's messages. `H` is the platform's handle on a job's status message: the
 * relay keeps it, the outlet alone knows what is inside. Errors a post can end with are DeliveryErrors
 * (core/delivery-error.ts) saying whether trying again can help; other errors count as transient.
 */
export interface JobOutlet<H = unknown> {
  /** The status message an earlier process recorded for the job (a job taken over at start-up), if any. */
  recorded(job: Job): H | undefined;
  /** Posts a status message for a job that has none (taken over without one); absent: it shows none. */
  open?(job: Job, model: MessageModel): Promise<H>;
  /** Shows the job's status in its message; answers a new handle when the message moved (else undefined). */
  status(job: Job, handle: H, model: MessageModel): Promise<H | undefined>;
  /** Posts the finished result; a second call for the same job must not post twice. */
  result(job: Job, handle: H | undefined, model: MessageModel, files: OutgoingFile[]): Promise<void>;
  /** Shows a failure to the requester. */
  failure(job: Job, handle: H | undefined, model: MessageModel): Promise<void>;
  /** Tells the requester, privately where the platform allows, that their result could not be posted. */
  undeliverable(job: Job, model: MessageModel): Promise<void>;
  /** The job's last message went out (or was given up): drop what was kept for it. */
  release?(jobId: string, handle: H | undefined): void;
}

/** How an adapter hands the relay a job's status message (or says there will be none). */
export interface StatusHandles {
  /** The job's status message exists: the relay edits it from now on, starting with the status it held. */
  bind(jobId: string, handle: unknown): void;
  /** The status message could not be posted (or will not be): held statuses are dropped. */
  unbound(jobId: string): void;
}

/** Preview frames kept with a job for "how it was made". */
export interface PreviewKeeper {
  keep(job: Job, frames: { step: number; total: number; image: BackendImage }[]): Promise<void>;
}

export interface RelayOptions {
  /** The fewest milliseconds between two edits of one job's status message (default 2000). */
  minEditIntervalMs?: number;
  /** Attempts, age and waits of the delivery machine (default DEFAULT_DELIVERY_POLICY). */
  delivery?: Partial<DeliveryPolicy>;
  /**
   * How long a job's last message waits for a status message that is still pending (default 60 s). Adapters
   * always bind or unbind; this only keeps a result from waiting for ever on an adapter's bug.
   */
  bindWaitMs?: number;
  previews?: PreviewKeeper;
  /** Called once a result is posted and the job marked delivered (contests open their vote then). */
  afterResult?: (job: Job) => void;
  /**
   * Called once a failure, a cancellation or an undeliverable result is shown (an arena match whose side ended
   * is called off).
   */
  afterEnded?: (job: Job) => void;
  /**
   * Operator log lines: the composition root injects its sink (src/logging), which redacts them; core prints
   * nothing itself. Left out (unit tests that do not look at the log), the lines are dropped.
   */
  log?: (line: string) => void;
  now?: () => number;
}

type Binding = { kind: "pending" } | { kind: "bound"; handle: unknown } | { kind: "none" };

interface JobState {
  /** The job's messages, in order. */
  chain: Promise<void>;
  frames: { step: number; total: number; image: BackendImage }[];
  binding: Binding;
  /** The newest status while the binding is pending: shown once it is bound. */
  held: { job: Job; model: MessageModel } | undefined;
  /** Resolves once the binding is no longer pending. */
  settled: Promise<void>;
  settle: () => void;
  /** The relay asked the outlet to open a status message already. */
  opened: boolean;
  /** The job's last message is queued: statuses after it are not shown. */
  ended: boolean;
}

export const DEFAULT_MIN_EDIT_INTERVAL_MS = 2000;
export const DEFAULT_BIND_WAIT_MS = 60_000;
/** Attempts to show a failure in this process (the next start shows it otherwise). */
const FAILURE_ATTEMPTS = 3;

/** The relay from the engine to the platforms' outlets; see the module comment. */
export class JobRelay implements StatusHandles {
  private readonly outlets = new Map<Requester["platform"], JobOutlet>();
  /** Platforms whose messages are held until they connect (see `hold`). */
  private readonly gates = new Map<Requester["platform"], { opened: Promise<void>; open: () => void }>();
  private readonly jobs = new Map<string, JobState>();
  /** Status edits: at most one per job per interval, the latest state winning. */
  private readonly edits: KeyedThrottle;
  private readonly policy: DeliveryPolicy;
  private readonly bindWaitMs: number;
  private readonly log: (line: string) => void;
  private readonly now: () => number;
  private readonly listeners: { [K in keyof EngineEvents]: (...args: EngineEvents[K]) => void };
  /** Attempts that read a job's images from the store run here, one at a time. */
  private lane: Promise<void> = Promise.resolve();
  /** Waits between attempts (and for pending handles), cut short by detach(). */
  private readonly waits = new Set<() => void>();
  private detached = false;

  constructor(
    private readonly engine: Engine,
    private readonly store: JobsPort,
    private readonly options: RelayOptions = {},
  ) {
    this.policy = { ...DEFAULT_DELIVERY_POLICY, ...options.delivery };
    this.bindWaitMs = options.bindWaitMs ?? DEFAULT_BIND_WAIT_MS;
    this.log = options.log ?? (() => {});
    this.now = options.now ?? Date.now;
    this.edits = new KeyedThrottle(
      options.minEditIntervalMs ?? DEFAULT_MIN_EDIT_INTERVAL_MS,
      (err) => this.log(`easel: a status edit failed: ${describe(err)}`),
      this.now,
    );
    this.listeners = {
      resumed: ({ job }) => this.resume(job),
      queued: ({ job, position, etaMs, retry }) =>
        this.showStatus(job, presentQueued(job, position, etaMs, retry)),
      started: ({ job }) => this.showStatus(job, presentRunning(job)),
      progress: ({ job, progress }) => {
        if (progress.preview && this.outletFor(job)) {
          this.state(job.id).frames.push({ ...progress, image: progress.preview });
        }
        this.showStatus(job, presentRunning(job, progress));
      },
      done: ({ job, images, notes, renderMs }) => this.deliver(job, { images, notes, renderMs }),
      failed: ({ job, message }) =>
        this.finish(job, (outlet, handle) => this.showFailure(outlet, handle, job, message)),
      cancelled: ({ job }) =>
        this.finish(job, async (outlet, handle) => {
          if (handle !== undefined) await outlet.status(job, handle, presentCancelled(job));
          this.options.afterEnded?.(job);
        }),
    };
  }

  /** The outlet for one platform's jobs (before `engine.start()`, so that resumed jobs find it). */
  register<H>(platform: Requester["platform"], outlet: JobOutlet<H>): void {
    this.outlets.set(
      platform,
      gated(outlet as unknown as JobOutlet, () => this.gates.get(platform)?.opened),
    );
  }

  /**
   * Holds every message to `platform` until `open(platform)`: the composition root recovers the engine's jobs
   * before the platform connects (so no member meets a half-started bot), and their messages wait for it.
   */
  hold(platform: Requester["platform"]): void {
    if (this.gates.has(platform)) return;
    let open: () => void = () => {};
    const opened = new Promise<void>((resolve) => {
      open = resolve;
    });
    this.gates.set(platform, { opened, open });
  }

  /** The platform is connected: the messages held for it go out, in order. */
  open(platform: Requester["platform"]): void {
    this.gates.get(platform)?.open();
    this.gates.delete(platform);
  }

  /** Starts listening to the engine. */
  attach(): void {
    this.detached = false;
    for (const [event, listener] of Object.entries(this.listeners)) {
      this.engine.on(event as keyof EngineEvents, listener as never);
    }
  }

  /**
   * Stops listening and waits for the messages in flight. Results waiting for their next attempt stay
   * delivering in the store: the next start takes them over.
   */
  async detach(): Promise<void> {
    for (const [event, listener] of Object.entries(this.listeners)) {
      this.engine.off(event as keyof EngineEvents, listener as never);
    }
    this.detached = true;
    // A platform that never connected (a failed start) must not keep its held messages waiting for ever.
    for (const platform of [...this.gates.keys()]) this.open(platform);
    this.edits.clear();
    for (const wake of [...this.waits]) wake();
    await Promise.allSettled([...this.jobs.values()].map((s) => s.chain));
  }

  /** Resolves when every job's messages so far have gone out (tests, shutdown). */
  async idle(): Promise<void> {
    await Promise.allSettled([...this.jobs.values()].map((s) => s.chain));
  }

  bind(jobId: string, handle: unknown): void {
    const state = this.jobs.get(jobId);
    // A job whose messages are all out already (it ended without waiting for this): nothing to show any more.
    if (!state) return;
    this.setBinding(state, { kind: "bound", handle });
  }

  unbound(jobId: string): void {
    const state = this.jobs.get(jobId);
    if (!state || state.binding.kind === "bound") return;
    state.held = undefined;
    this.setBinding(state, { kind: "none" });
  }

  private state(jobId: string): JobState {
    let state = this.jobs.get(jobId);
    if (!state) {
      let settle: () => void = () => {};
      const settled = new Promise<void>((resolve) => {
        settle = resolve;
      });
      // A job first seen in this process is one an adapter is posting the status message of right now.
      state = {
        chain: Promise.resolve(),
        frames: [],
        binding: { kind: "pending" },
        held: undefined,
        settled,
        settle,
        opened: false,
        ended: false,
      };
      this.jobs.set(jobId, state);
    }
    return state;
  }

  private setBinding(state: JobState, binding: Binding): void {
    state.binding = binding;
    if (binding.kind === "pending") return;
    state.settle();
    const held = state.held;
    state.held = undefined;
    if (held && binding.kind === "bound" && !state.ended) this.showStatus(held.job, held.model);
  }

  private outletFor(job: Job): JobOutlet | undefined {
    return this.outlets.get(job.request.requester.platform);
  }

  /** A job an earlier process left unfinished: its recorded status message, then whatever it still needs. */
  private resume(job: Job): void {
    const outlet = this.outletFor(job);
    if (!outlet) return;
    const state = this.state(job.id);
    const recorded = outlet.recorded(job);
    this.setBinding(state, recorded === undefined ? { kind: "none" } : { kind: "bound", handle: recorded });
    if (job.state === "rendered" || job.state === "delivering") this.deliver(job, undefined);
    else if (job.state === "undeliverable") {
      this.finish(job, (o) => this.inLane(() => this.tell(o, job, job.errorMessage ?? "")));
    }
  }

  /** Shows a status: edits the bound message (throttled), holds it while pending, or opens one if none. */
  private showStatus(job: Job, model: MessageModel): void {
    const outlet = this.outletFor(job);
    if (!outlet) return;
    const state = this.state(job.id);
    if (state.ended) return;
    const binding = state.binding;
    if (binding.kind === "pending") {
      state.held = { job, model };
      return;
    }
    if (binding.kind === "none") {
      const open = outlet.open?.bind(outlet);
      if (!open || state.opened) return;
      state.opened = true;
      state.binding = { kind: "pending" };
      state.chain = state.chain.then(async () => {
        try {
          this.setBinding(state, { kind: "bound", handle: await open(job, model) });
        } catch (err) {
          this.log(`easel: could not post the status message of job ${job.id}: ${describe(err)}`);
          this.setBinding(state, { kind: "none" });
        }
      });
      return;
    }
    this.edits.schedule(job.id, async () => {
      state.chain = state.chain.then(async () => {
        // A last message queued since (the result, a cancel) replaces this status.
        if (state.ended || state.binding.kind !== "bound") return;
        try {
          const moved = await outlet.status(job, state.binding.handle, model);
          if (moved !== undefined) state.binding = { kind: "bound", handle: moved };
        } catch (err) {
          this.log(`easel: could not update the status of job ${job.id}: ${describe(err)}`);
        }
      });
    });
  }

  /**
   * The last message of a job: pending status edits are dropped, a pending status message is waited for,
   * then `send` runs with the handle (or undefined: the job has no status message).
   */
  private finish(job: Job, send: (outlet: JobOutlet, handle: unknown) => Promise<void>): void {
    const outlet = this.outletFor(job);
    if (!outlet) return;
    const state = this.state(job.id);
    state.ended = true;
    state.held = undefined;
    this.edits.cancel(job.id);
    const handleOf = () => (state.binding.kind === "bound" ? state.binding.handle : undefined);
    state.chain = state.chain
      .then(async () => {
        await this.whenSettled(state, job.id);
        if (this.detached) return;
        await send(outlet, handleOf());
      })
      .catch((err: unknown) => {
        this.log(`easel: could not post the last message of job ${job.id}: ${describe(err)}`);
      })
      .finally(() => {
        outlet.release?.(job.id, handleOf());
        if (this.jobs.get(job.id) === state) this.jobs.delete(job.id);
      });
  }

  /** Waits while the job's status message is pending (bounded by bindWaitMs, which only an adapter bug hits). */
  private async whenSettled(state: JobState, jobId: string): Promise<void> {
    if (state.binding.kind !== "pending") return;
    let stop: () => void = () => {};
    const expired = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), this.bindWaitMs);
      stop = () => {
        clearTimeout(timer);
        this.waits.delete(stop);
        resolve(false);
      };
      this.waits.add(stop);
    });
    const inTime = await Promise.race([state.settled.then(() => true), expired]);
    stop();
    if (!inTime && state.binding.kind === "pending") {
      if (!this.detached) {
        this.log(
          `easel: the status message of job ${jobId} was never bound; its last message goes without it`,
        );
      }
      this.setBinding(state, { kind: "none" });
    }
  }

  /** The delivery state machine for one result (see the module comment). */
  private deliver(
    job: Job,
    fresh: { images: StoredImage[]; notes: string[]; renderMs: number } | undefined,
  ): void {
    this.finish(job, async (outlet, handle) => {
      let images = fresh?.images;
      const notes = fresh?.notes ?? [];
      const renderMs = fresh?.renderMs ?? Math.max(0, (job.renderedAt ?? 0) - (job.startedAt ?? 0));
      for (;;) {
        const attempt = this.engine.beginDelivery(job.id);
        if (!attempt) return; // delivered or ended meanwhile
        try {
          const inMemory = images;
          if (inMemory) {
            await this.keepPreviews(attempt);
            await this.postResult(outlet, attempt, handle, inMemory, notes, renderMs);
          } else {
            await this.inLane(async () =>
              this.postResult(outlet, attempt, handle, await this.store.images(job.id), notes, renderMs),
            );
          }
        } catch (err) {
          const verdict = afterFailedAttempt(attempt, err, this.policy, this.now());
          if (verdict.kind === "give_up") {
            await this.giveUp(outlet, attempt, err, verdict.why);
            return;
          }
          this.log(
            `easel: could not post the result of job ${job.id} (attempt ${attempt.deliveryAttempts}); trying again in ${Math.round(verdict.delayMs / 1000)} s: ${describe(err)}`,
          );
          // Not held while waiting: the next attempt reads them again, in the lane.
          images = undefined;
          await this.wait(verdict.delayMs);
          if (this.detached) return; // still delivering in the store: the next start takes it over
          continue;
        }
        const delivered = this.engine.delivered(job.id);
        this.options.afterResult?.(delivered ?? attempt);
        return;
      }
    });
  }

  private async postResult(
    outlet: JobOutlet,
    job: Job,
    handle: unknown,
    images: StoredImage[],
    notes: string[],
    renderMs: number,
  ): Promise<void> {
    const model = presentDone(job, images, notes, renderMs);
    const byId = new Map(images.map((i) => [i.id, i]));
    const files: OutgoingFile[] = [];
    for (const { imageId, filename } of model.images) {
      const image = byId.get(imageId);
      if (!image) continue;
      const bytes = image.png.length > 0 ? image.png : await this.store.imageBytes(imageId);
      files.push({ imageId, filename, bytes, width: image.width, height: image.height });
    }
    await outlet.result(job, handle, model, files);
  }

  /** The animation is a nicety: failing to keep it must never hold the result back. */
  private async keepPreviews(job: Job): Promise<void> {
    const frames = this.jobs.get(job.id)?.frames ?? [];
    if (frames.length === 0 || !this.options.previews) return;
    await this.options.previews.keep(job, frames).catch((err: unknown) => {
      this.log(`easel: could not keep the previews of job ${job.id}: ${describe(err)}`);
    });
  }

  /** The result will never be posted: undeliverable (durably), images kept, the requester told. */
  private async giveUp(outlet: JobOutlet, job: Job, err: unknown, why: "permanent" | "attempts" | "age") {
    const reason =
      why === "permanent" && err instanceof Error
        ? err.message
        : BOT_MESSAGES.deliveryKeptFailing(job.deliveryAttempts ?? 1);
    this.log(
      `easel: giving up on the result of job ${job.id} (${why}; its images are kept): ${describe(err)}`,
    );
    const ended = this.engine.undeliverable(job.id, reason);
    if (!ended) return;
    await this.tell(outlet, ended, reason);
  }

  /** Tells the requester their result is undeliverable; a transient failure leaves it to the next start. */
  private async tell(outlet: JobOutlet, job: Job, reason: string): Promise<void> {
    try {
      await outlet.undeliverable(job, presentUndeliverable(job, reason));
    } catch (err) {
      this.log(
        `easel: could not tell the requester of job ${job.id} that it is undeliverable: ${describe(err)}`,
      );
      if (!isPermanentDeliveryError(err)) return;
    }
    this.engine.failureShown(job.id);
    this.options.afterEnded?.(job);
  }

  private async showFailure(outlet: JobOutlet, handle: unknown, job: Job, message: string): Promise<void> {
    const model = presentFailed(job, message);
    for (let attempt = 1; ; attempt++) {
      try {
        await outlet.failure(job, handle, model);
        break;
      } catch (err) {
        const permanent = isPermanentDeliveryError(err);
        if (permanent || attempt >= FAILURE_ATTEMPTS) {
          // Transient: the next start shows it. Permanent: nothing ever will, so it counts as shown.
          this.log(`easel: could not show the failure of job ${job.id}: ${describe(err)}`);
          if (!permanent) return;
          break;
        }
        await this.wait(this.policy.retryDelayMs * 4 ** (attempt - 1));
        if (this.detached) return;
      }
    }
    this.engine.failureShown(job.id);
    this.options.afterEnded?.(job);
  }

  /** Runs `task` in the lane: one at a time, so that only one job's images are read and held at once. */
  private inLane<T>(task: () => Promise<T>): Promise<T> {
    const run = this.lane.then(task);
    this.lane = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Resolves true after `ms`, or false at once when detached (or when detach() comes meanwhile). */
  private wait(ms: number): Promise<boolean> {
    if (this.detached) return Promise.resolve(false);
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.waits.delete(wake);
        resolve(false);
      };
      const timer = setTimeout(() => {
        this.waits.delete(wake);
        resolve(true);
      }, ms);
      this.waits.add(wake);
    });
  }
}

/** An error as one log line, without stack traces of SDK internals. */
function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? ` (${err.cause.name}: ${err.cause.message})` : "";
  return `${err.name}: ${err.message}${cause}`;
}

/** `outlet` with every call that reaches the platform waiting for `gate()` (when there is one) first. */
function gated(outlet: JobOutlet, gate: () => Promise<void> | undefined): JobOutlet {
  const after = async <T>(call: () => Promise<T>): Promise<T> => {
    await gate();
    return call();
  };
  const { open, release } = outlet;
  return {
    recorded: (job) => outlet.recorded(job),
    ...(open ? { open: (job, model) => after(() => open.call(outlet, job, model)) } : {}),
    status: (job, handle, model) => after(() => outlet.status(job, handle, model)),
    result: (job, handle, model, files) => after(() => outlet.result(job, handle, model, files)),
    failure: (job, handle, model) => after(() => outlet.failure(job, handle, model)),
    undeliverable: (job, model) => after(() => outlet.undeliverable(job, model)),
    ...(release ? { release: (jobId, handle) => release.call(outlet, jobId, handle) } : {}),
  };
}
