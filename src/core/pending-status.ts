import type { ImagineOutcome } from "./imagine.ts";
import type { StatusHandles } from "./relay.ts";

/**
 * A new job's status message while its adapter posts it. The relay holds the job's statuses until the message
 * is bound (it edits it from then on) or abandoned (it shows none), so every way out of a post must end in one
 * of the two: `post` makes sure of it, for both platforms.
 */
export class PendingStatus<H> {
  constructor(
    private readonly handles: StatusHandles,
    readonly jobId: string,
  ) {}

  /** The status message exists: the relay edits it through `handle` from now on. */
  bind(handle: H): H {
    this.handles.bind(this.jobId, handle);
    return handle;
  }

  /** The status message will not be posted (the post failed, or the job was refused or cancelled). */
  abandon(): void {
    this.handles.unbound(this.jobId);
  }

  /** Posts the status message with `post` and binds what it answers; a failed post abandons it and throws. */
  async post(post: () => Promise<H>): Promise<H> {
    let handle: H;
    try {
      handle = await post();
    } catch (err) {
      this.abandon();
      throw err;
    }
    return this.bind(handle);
  }
}

/**
 * The pending status message of the job a command or a press just queued, or none: the queue refused it, or
 * the event was redelivered and its job has its status message already.
 */
export function pendingStatusOf<H>(
  handles: StatusHandles,
  outcome: ImagineOutcome | undefined,
): PendingStatus<H> | undefined {
  return outcome?.ok && !outcome.duplicate ? new PendingStatus<H>(handles, outcome.job.id) : undefined;
}
