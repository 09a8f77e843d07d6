import type { Requester } from "./request.ts";

/**
 * Votes among the variants of one result, contests (a vote with a deadline that announces a winner) and the
 * arena (two models, blind, rated with Elo). The rules live here; the store keeps ballots and votes with a
 * uniqueness constraint (one vote per member per ballot), and the platforms only carry presses in and tallies
 * out.
 */

/** What is voted on: a result's variants, a contest (with a deadline), or an arena match (A = 1, B = 2). */
export type BallotKind = "result" | "contest" | "arena";

export interface Ballot {
  /** The result's job id, or the arena match id. */
  id: string;
  kind: BallotKind;
  platform: Requester["platform"];
  workspaceId: string;
  channelId: string;
  /** Who made it (their own votes follow the server's self-vote setting); empty for the arena. */
  ownerId: string;
  /** Choices are 1..choices. */
  choices: number;
  createdAt: number;
  /** Voting ends then (contests and the arena); undefined: open while the result exists. */
  closesAt?: number;
  closedAt?: number;
  /** Why it closed: the deadline, or the result was deleted. */
  closedBy?: "deadline" | "deleted";
  /** The winning choice, once closed (undefined: no votes, or deleted). */
  winner?: number;
}

/** Votes per choice (index 0 = choice 1) and when each choice last gained a vote (for the tie rule). */
export interface Tally {
  counts: number[];
  lastVoteAt: (number | undefined)[];
  total: number;
}

/** What a press did. */
export type VoteChange = "added" | "moved" | "removed" | "unchanged";

/** The persistence voting needs; src/store implements it over SQLite (one transaction per call). */
export interface VotesPort {
  /** Creates the ballot if it is not there yet; returns the stored one. */
  openBallot(ballot: Omit<Ballot, "closedAt" | "closedBy" | "winner">): Ballot;
  ballot(id: string): Ballot | undefined;
  /**
   * Applies one press atomically: no vote → add; a vote for another choice → move; the same choice → remove,
   * unless the member's vote changed less than `debounceMs` ago (a double click, not a take-back).
   */
  press(
    ballotId: string,
    voter: { platform: string; userId: string },
    choice: number,
    now: number,
    debounceMs: number,
  ): VoteChange;
  tally(ballotId: string): Tally;
  /** Closes a ballot once (false when it was already closed). */
  close(ballotId: string, closedAt: number, by: "deadline" | "deleted", winner: number | undefined): boolean;
  /** Ballots with a deadline that are not closed yet, soonest first. */
  openDeadlines(): Ballot[];
  /** Sets (or moves) an open ballot's deadline. */
  setDeadline(ballotId: string, closesAt: number): void;
  /** Contests and arena matches closed by their deadline whose announcement was never recorded as posted. */
  unannounced(): Ballot[];
  recordMatch(match: ArenaMatch): void;
  match(id: string): ArenaMatch | undefined;
  matchOfJob(jobId: string): ArenaMatch | undefined;
  /** Rates a closed match once (see the store); undefined when it was rated already. */
  rateMatch(
    matchId: string,
    votes: [number, number],
    elo: EloSettings,
    scoreA: number | undefined,
  ): [ModelRating, ModelRating] | undefined;
  rating(model: string): ModelRating | undefined;
  /** Average milliseconds per image of a model's finished jobs ("backend:model"); undefined before any. */
  msPerImage(model: string): number | undefined;
  ratings(): ModelRating[];
  topResults(platform: string, workspaceId: string, since: number, limit: number): TopResult[];
  topCreators(
    platform: string,
    workspaceId: string,
    since: number,
    limit: number,
  ): { ownerId: string; votes: number }[];
}

/** An arena match: the same prompt on two models, shown as A and B until its ballot closes. */
export interface ArenaMatch {
  id: string;
  prompt: string;
  jobA: string;
  jobB: string;
  /** "backend:model". */
  modelA: string;
  modelB: string;
  ratedAt?: number;
}

/** One row of `/top`: a result and the votes it got, with who made it. */
export interface TopResult {
  ballotId: string;
  platform: string;
  workspaceId: string;
  channelId: string;
  ownerId: string;
  votes: number;
}

/** A second press of the same choice within this is a double click (kept), not a take-back. */
export const DOUBLE_CLICK_MS = 3_000;

/** Contest and arena durations: `--vote 10m`, `2h`, `1d`; at least a minute, at most a week. */
export const VOTE_DURATION = { minMs: 60_000, maxMs: 7 * 24 * 3_600_000 } as const;

/** Parses "10m", "90s", "2h", "1d" (or a bare number of minutes) into milliseconds; the reason names the limits. */
export function parseVoteDuration(text: string): { ok: true; ms: number } | { ok: false; reason: string } {
  const m = /^\s*(\d{1,6})\s*(s|m|min|h|d)?\s*$/i.exec(text);
  const unit = (m?.[2] ?? "m").toLowerCase();
  const factor = unit === "s" ? 1_000 : unit === "h" ? 3_600_000 : unit === "d" ? 86_400_000 : 60_000;
  const ms = m ? Number(m[1]) * factor : Number.NaN;
  if (!Number.isFinite(ms) || ms < VOTE_DURATION.minMs || ms > VOTE_DURATION.maxMs) {
    return {
      ok: false,
      reason: `--vote takes a duration from 1m to 7d, like 10m, 2h or 1d (got "${text.trim()}")`,
    };
  }
  return { ok: true, ms };
}

/**
 * The winner of a tally: most votes; a tie goes to the choice that reached its final count first (its last
 * vote is the earliest), so a late vote can only ever break a tie by adding, never by timing. No votes: none.
 */
export function winnerOf(tally: Tally): number | undefined {
  let best: number | undefined;
  for (let i = 0; i < tally.counts.length; i++) {
    const count = tally.counts[i] ?? 0;
    if (count === 0) continue;
    if (best === undefined) {
      best = i;
      continue;
    }
    const bestCount = tally.counts[best] ?? 0;
    const at = tally.lastVoteAt[i] ?? Number.POSITIVE_INFINITY;
    const bestAt = tally.lastVoteAt[best] ?? Number.POSITIVE_INFINITY;
    if (count > bestCount || (count === bestCount && at < bestAt)) best = i;
  }
  return best === undefined ? undefined : best + 1;
}

/** Elo settings (EASEL_ELO_K, EASEL_ELO_START). */
export interface EloSettings {
  k: number;
  start: number;
}

export const DEFAULT_ELO: Readonly<EloSettings> = Object.freeze({ k: 32, start: 1000 });

/** New ratings after one game; `scoreA` is 1 (A won), 0.5 (draw) or 0 (B won). */
export function eloUpdate(ratingA: number, ratingB: number, scoreA: number, k: number): [number, number] {
  const expectedA = 1 / (1 + 10 ** ((ratingB - ratingA) / 400));
  const delta = k * (scoreA - expectedA);
  return [ratingA + delta, ratingB - delta];
}

/** A model's standing in the arena. */
export interface ModelRating {
  /** "backend:model", e.g. "ldm:sd15" or "openai:gpt-image-1". */
  model: string;
  rating: number;
  games: number;
  wins: number;
  losses: number;
  draws: number;
  /** Votes its images received in the arena. */
  votes: number;
}
