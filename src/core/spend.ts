import type { BackendName, Requester } from "./request.ts";

/**
 * Spend accounting for paid backends (the OpenAI images API): what one successful call made and cost, and the
 * ledger that counts it. The types live in core so that the store implements the ledger over SQLite
 * (src/store/spend.ts) and the OpenAI backend keeps its cap logic over the interface (in memory in tests).
 * The ledger is synchronous on purpose: with better-sqlite3, a cap check and the count it relies on run in one
 * turn of the event loop, so two jobs of one process cannot both pass a cap between check and count.
 * Days are UTC calendar days ("2026-08-21"), so every cap resets at 00:00 UTC.
 */

/** One successful API call's images, as counted and priced. */
export interface SpendEntry {
  /** UTC day, "2026-08-21" (see {@link utcDay}). */
  day: string;
  /** Milliseconds since the epoch. */
  at: number;
  platform: Requester["platform"];
  workspaceId: string;
  userId: string;
  /** The backend that made the images; "openai" when left out (the only paid one today). */
  backend?: BackendName;
  model: string;
  images: number;
  /** Estimated US dollars for these images; undefined when the model has no price. */
  costUsd: number | undefined;
}

/** Which entries to add up; every field narrows, none means everything. */
export interface SpendQuery {
  platform?: Requester["platform"];
  workspaceId?: string;
  userId?: string;
  backend?: BackendName;
  /** First and last UTC day included ("2026-08-01"). */
  fromDay?: string;
  toDay?: string;
}

/** Totals an admin can read. */
export interface SpendTotals {
  images: number;
  /** Sum of the priced images' estimates. */
  costUsd: number;
  /** Images with no price in the table (their cost is not in `costUsd`). */
  unpricedImages: number;
}

/** One member's totals, for an admin's "top spenders" list. */
export interface SpenderTotals extends SpendTotals {
  platform: Requester["platform"];
  userId: string;
}

/** Whose images `imagesOn` counts; `backend` left out counts every backend. */
export interface SpendCounter {
  platform: Requester["platform"];
  userId: string;
  workspaceId: string;
  backend?: BackendName;
}

/** Images counted on one day, as the caps need them. */
export interface DayCounts {
  /** The member's images in every workspace (the operator's per-member cap counts these). */
  user: number;
  /** The workspace's images, every member's. */
  workspace: number;
  /** The member's images in this workspace (a guild's own per-member cap counts these). */
  userInWorkspace: number;
}

/** Where paid usage is counted: images per member and per workspace per day, and cost totals. */
export interface SpendLedger {
  record(entry: SpendEntry): void;
  /** Images counted on `day` for one member (across workspaces), for one workspace, and for both at once. */
  imagesOn(day: string, who: SpendCounter): DayCounts;
  totals(query: SpendQuery): SpendTotals;
  /**
   * The members who spent most (estimated cost, then images), at most `limit` of them, each with their
   * totals under `query` (a member is counted across workspaces unless the query names one).
   */
  topSpenders(query: SpendQuery, limit: number): SpenderTotals[];
}

/** Daily image caps as the operator configures them; 0 means no cap. */
export interface DailyImageCaps {
  perUser: number;
  perGuild: number;
}

/** The backend a spend entry belongs to when it names none. */
export const DEFAULT_SPEND_BACKEND: BackendName = "openai";

/** The UTC day of a timestamp, "2026-08-21". */
export const utcDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/** Rounds a dollar sum to a millionth, so that float sums read back as the prices that went in. */
export const roundUsd = (usd: number): number => Math.round(usd * 1e6) / 1e6;

/** A daily cap in force, and who set it: the operator's configuration or the guild's admins. */
export interface DailyCapInForce {
  cap: number;
  setBy: "operator" | "guild";
}

/**
 * The cap in force from the operator's (0: none) and a guild's override (absent: the operator's; 0: none
 * allowed). A guild may only lower the operator's cap; a stored override above it (the operator lowered the
 * cap later) counts as the operator's. Undefined when nothing caps.
 */
export function dailyCapInForce(operator: number, guild: number | undefined): DailyCapInForce | undefined {
  const configured = operator > 0 ? operator : undefined;
  if (guild === undefined || !Number.isFinite(guild) || guild < 0)
    return configured === undefined ? undefined : { cap: configured, setBy: "operator" };
  const lowered = Math.floor(guild);
  if (configured !== undefined && lowered >= configured) return { cap: configured, setBy: "operator" };
  return { cap: lowered, setBy: "guild" };
}
