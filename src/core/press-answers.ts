import { castVote, closeDeletedBallot } from "./ballots.ts";
import type { Actor, BotServices } from "./bot-services.ts";
import { pressButton, queuedBy } from "./button-press.ts";
import { parseButtonId } from "./buttons.ts";
import type { StoredImage } from "./engine.ts";
import { type Explanation, howItWasMade } from "./explain.ts";
import type { ImagineOutcome, ImagineQueued } from "./imagine.ts";
import type { Job } from "./job.ts";
import { type PendingStatus, pendingStatusOf } from "./pending-status.ts";
import type { StatusHandles } from "./relay.ts";
import type { TallyBoard, TallyLabels } from "./vote-tally.ts";

/**
 * A press on one of easel's buttons, answered the same way on every platform: which answer each outcome gets,
 * in what order, and what becomes of a new job's status message when an answer fails. The adapter gives only
 * the SDK calls ({@link PressReplies}).
 */

/** The platform's answers to one press; `H` is its handle on a status message. */
export interface PressReplies<H> {
  /** A private answer to the presser. */
  tell(text: string): Promise<void>;
  /** A vote counted: its private confirmation. */
  confirmVote(text: string): Promise<void>;
  /** The pressed message and how to relabel its vote buttons; absent when it cannot be edited. */
  tally?: { messageKey: string; relabel(labels: TallyLabels): Promise<void> };
  /**
   * Posts the status message of the job the press queued, binding it through `pending`, and says it is
   * queued as the platform does; `upscale` for the 2× job of a U press.
   */
  openStatus(outcome: ImagineQueued, pending: PendingStatus<H>, upscale: boolean): Promise<void>;
  /** 🗑: removes the pressed message. */
  remove(): Promise<void>;
  /** U: posts one image of `job` alone, at full size. */
  showFullSize(job: Job, image: StoredImage): Promise<void>;
  /** "How it was made" of `job`. */
  explain(job: Job, explanation: Explanation): Promise<void>;
}

/** Who pressed which button, and the parts that answer it. */
export interface Press {
  services: BotServices;
  /** The relay: a new job's status message is bound there once posted. */
  handles: StatusHandles;
  tallies: TallyBoard;
  actor: Actor;
  /** The platform's id of the press (a redelivered press finds the job it made). */
  eventId: string;
  customId: string;
  now: number;
}

/** Answers a button press with the platform's `replies`. */
export async function answerPress<H>(press: Press, replies: PressReplies<H>): Promise<void> {
  const { services, actor } = press;
  const button = parseButtonId(press.customId);
  if (button.ok && button.value.action === "vote" && button.value.variant !== undefined) {
    const vote = castVote(services, actor, button.value.jobId, button.value.variant, press.now);
    if (!vote.ok) return replies.tell(vote.message);
    await replies.confirmVote(vote.confirmation);
    const tally = replies.tally;
    if (tally) press.tallies.afterVote(vote, tally.messageKey, (labels) => tally.relabel(labels));
    return;
  }
  const outcome = await pressButton(services, actor, press.eventId, press.customId);
  // The relay holds the new job's statuses until its message is posted: every way out binds or abandons it.
  const pending = pendingStatusOf<H>(press.handles, queuedBy(outcome));
  const queued = async (made: ImagineOutcome, upscale: boolean) => {
    if (!made.ok) return replies.tell(made.message);
    if (pending) await replies.openStatus(made, pending, upscale);
  };
  try {
    switch (outcome.kind) {
      case "refused":
      case "cancel":
        return await replies.tell(outcome.message);
      case "job":
        return await queued(outcome.outcome, false);
      case "delete":
        closeDeletedBallot(services, outcome.job, press.now);
        return await replies.remove();
      case "upscale":
        try {
          await replies.showFullSize(outcome.job, outcome.image);
        } catch (err) {
          // Without the image it goes with, the upscale would arrive unexplained: it is not made.
          if (pending) services.engine.cancel(pending.jobId);
          throw err;
        }
        return await queued(outcome.upscale, true);
      case "explain":
        return await replies.explain(outcome.job, await howItWasMade(services, outcome.job));
    }
  } catch (err) {
    pending?.abandon();
    throw err;
  }
}
