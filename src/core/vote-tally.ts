import type { CountedVote } from "./ballots.ts";
import { parseButtonId } from "./buttons.ts";
import { errorText } from "./platform-errors.ts";
import { voteRow } from "./presenter.ts";
import { KeyedThrottle } from "./throttle.ts";
import type { Tally, VotesPort } from "./voting.ts";

/**
 * The counts on a message's vote buttons after a vote, for both platforms: which buttons change and to what
 * label, and how often the message may be edited. Adapters only read their message's buttons and make the edit.
 */

/** Vote tallies: at most one edit per message this often (the rule; both platforms allow more). */
export const TALLY_EDIT_INTERVAL_MS = 3_000;

/** A button's new label for the ballot's counts, or undefined when it is not a vote button (left as it is). */
export type TallyLabels = (customId: string) => string | undefined;

/** The labels of a ballot's vote buttons with `tally`'s counts ("🗳 2 · 3"). */
export function tallyLabels(ballotId: string, tally: Tally): TallyLabels {
  return (customId) => {
    const id = parseButtonId(customId);
    if (!id.ok || id.value.action !== "vote" || id.value.variant === undefined) return undefined;
    const n = id.value.variant;
    const [button] = voteRow(ballotId, [String(n)], tally, [n]);
    return button?.label;
  };
}

export interface TallyBoardOptions {
  /** The fewest milliseconds between two relabels of one message (default {@link TALLY_EDIT_INTERVAL_MS}). */
  intervalMs?: number;
  /** Operator log lines (a failed edit is logged, never thrown). */
  log: (line: string) => void;
  now?: () => number;
}

/** Relabels vote buttons after votes, throttled per message, the latest counts winning. */
export class TallyBoard {
  private readonly edits: KeyedThrottle;

  constructor(
    private readonly votes: Pick<VotesPort, "tally">,
    options: TallyBoardOptions,
  ) {
    this.edits = new KeyedThrottle(
      options.intervalMs ?? TALLY_EDIT_INTERVAL_MS,
      (err) => options.log(`easel: could not update a vote tally: ${errorText(err)}`),
      options.now,
    );
  }

  /**
   * After `vote`, the message `messageKey` (a platform message id) gets the ballot's counts through `relabel`,
   * within one interval. Counts are read when the edit runs, so a burst of votes makes one edit with the last.
   * The arena shows none until its reveal, so that they cannot sway the vote.
   */
  afterVote(vote: CountedVote, messageKey: string, relabel: (labels: TallyLabels) => Promise<void>): void {
    if (!vote.countsShown) return;
    const ballotId = vote.ballot.id;
    // Async, so that a failed read (the store closed at shutdown) is logged like a failed edit, never thrown.
    this.edits.schedule(messageKey, async () => relabel(tallyLabels(ballotId, this.votes.tally(ballotId))));
  }

  /** Drops the edits still waiting (shutdown). */
  clear(): void {
    this.edits.clear();
  }
}
