import type { CommandReply } from "./command-model.ts";
import type { ImagineQueued } from "./imagine.ts";
import { type PendingStatus, pendingStatusOf } from "./pending-status.ts";
import type { StatusHandles } from "./relay.ts";

/**
 * A command's reply answered the same way on every platform: a text, a refusal, or the status messages of the
 * jobs it queued (one, or an arena's A and B, in that order). The relay holds a new job's statuses until its
 * status message is posted, so every way out binds or abandons each one. The adapter gives only the SDK calls
 * ({@link CommandAnswers}).
 */

/** A reply that queued jobs. */
export type QueuedReply = Exclude<CommandReply, { kind: "text" }>;

/** The platform's answers to one command; `H` is its handle on a status message. */
export interface CommandAnswers<H> {
  /** A text answer; `ephemeral`: only the member sees it (a refusal's reason is one). */
  say(text: string, ephemeral: boolean): Promise<void>;
  /** Before any status message: the platform's own acknowledgement of what was queued (Slack's ack). */
  acknowledge?(reply: QueuedReply): Promise<void>;
  /** Posts one queued job's status message (`side` 1: an arena's B), binding it through `pending`. */
  openStatus(outcome: ImagineQueued, pending: PendingStatus<H>, side: number): Promise<void>;
  /** After the status messages: an arena's introduction, where the acknowledgement did not carry it. */
  introduce?(text: string): Promise<void>;
}

/** Answers `reply` with the platform's `answers`. */
export async function answerCommand<H>(
  handles: StatusHandles,
  reply: CommandReply,
  answers: CommandAnswers<H>,
): Promise<void> {
  if (reply.kind === "text") return answers.say(reply.text, reply.ephemeral);
  if (reply.kind === "job" && !reply.outcome.ok) return answers.say(reply.outcome.message, true);
  const queued = reply.kind === "job" ? [reply.outcome as ImagineQueued] : reply.sides;
  // None for a redelivered event: its job has its status message already.
  const pending = queued.map((q) => pendingStatusOf<H>(handles, q));
  let opened = 0;
  try {
    await answers.acknowledge?.(reply);
    for (const [side, outcome] of queued.entries()) {
      const p = pending[side];
      if (p) await answers.openStatus(outcome, p, side);
      opened = side + 1;
    }
  } catch (err) {
    // A status message that was not posted must not leave its job, or the arena's other side, waiting for it.
    for (const p of pending.slice(opened)) p?.abandon();
    throw err;
  }
  if (reply.kind === "arena") await answers.introduce?.(reply.text);
}
