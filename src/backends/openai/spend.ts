import { EaselError } from "../../core/errors.ts";
import type { Requester } from "../../core/request.ts";

/**
 * Daily image caps and spend accounting for the OpenAI backend. The counting lives behind `SpendLedger`, a
 * small synchronous interface the SQLite store can implement later (better-sqlite3 is synchronous, so check and
 * count stay atomic); `MemorySpendLedger` keeps it in memory for now, so totals start from zero on a restart.
 * Days are UTC calendar days.
 */

/** One successful API call's images, as counted and priced. */
export interface SpendEntry {
  /** UTC day, "2026-08-21". */
  day: string;
  /** Milliseconds since the epoch. */
  at: number;
  platform: Requester["platform"];
  workspaceId: string;
  userId: string;
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

/** Where OpenAI usage is counted: images per member and per workspace per day, and cost totals. */
export interface SpendLedger {
  record(entry: SpendEntry): void;
  /** Images counted on `day` for one member (across workspaces) and for one workspace. */
  imagesOn(
    day: string,
    who: { platform: Requester["platform"]; userId: string; workspaceId: string },
  ): { user: number; workspace: number };
  totals(query: SpendQuery): SpendTotals;
}

/** SpendLedger in memory (lost on restart; the store will implement the same interface). */
export class MemorySpendLedger implements SpendLedger {
  private readonly entries: SpendEntry[] = [];

  record(entry: SpendEntry): void {
    this.entries.push({ ...entry });
  }

  imagesOn(
    day: string,
    who: { platform: Requester["platform"]; userId: string; workspaceId: string },
  ): { user: number; workspace: number } {
    let user = 0;
    let workspace = 0;
    for (const e of this.entries) {
      if (e.day !== day || e.platform !== who.platform) continue;
      if (e.userId === who.userId) user += e.images;
      if (e.workspaceId === who.workspaceId) workspace += e.images;
    }
    return { user, workspace };
  }

  totals(query: SpendQuery): SpendTotals {
    const totals: SpendTotals = { images: 0, costUsd: 0, unpricedImages: 0 };
    for (const e of this.entries) {
      if (query.platform !== undefined && e.platform !== query.platform) continue;
      if (query.workspaceId !== undefined && e.workspaceId !== query.workspaceId) continue;
      if (query.userId !== undefined && e.userId !== query.userId) continue;
      if (query.fromDay !== undefined && e.day < query.fromDay) continue;
      if (query.toDay !== undefined && e.day > query.toDay) continue;
      totals.images += e.images;
      if (e.costUsd === undefined) totals.unpricedImages += e.images;
      else totals.costUsd += e.costUsd;
    }
    totals.costUsd = Math.round(totals.costUsd * 1e6) / 1e6;
    return totals;
  }
}

/** Daily caps; 0 means no cap. */
export interface DailyImageCaps {
  perUser: number;
  perGuild: number;
}

/** The UTC day of a timestamp, "2026-08-21". */
export const utcDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/** Direct messages share the workspace id "dm": they are not one guild, so no guild cap applies to them. */
const NO_GUILD = "dm";

/** Images promised to running jobs and not yet counted, so two jobs at once cannot both pass a cap. */
interface Pending {
  day: string;
  user: string;
  guild: string;
  images: number;
}

/** Images counted against a cap while a job runs: `commit` what the provider made, `release` the rest. */
export interface QuotaReservation {
  /** Counts `images` made (and their estimated cost) in the ledger. */
  commit(images: number, model: string, costUsd: number | undefined): void;
  /** Returns the images not committed to the caps (the job failed or made fewer). Idempotent. */
  release(): void;
}

/**
 * Checks and holds the daily caps. `check` is for the moment a request arrives (refused at ack time, with the
 * reason); `reserve` holds the images while the job runs, so concurrent jobs see each other.
 */
export class DailyImageQuota {
  private readonly pending = new Set<Pending>();

  constructor(
    private readonly ledger: SpendLedger,
    private readonly caps: DailyImageCaps,
    private readonly now: () => number = Date.now,
  ) {}

  /** Why `images` more for this requester would pass a cap today; undefined when they fit. */
  check(requester: Requester, images: number): string | undefined {
    const day = utcDay(this.now());
    const used = this.ledger.imagesOn(day, requester);
    const userKey = keyOf(requester.platform, requester.userId);
    const guildKey = keyOf(requester.platform, requester.workspaceId);
    for (const p of this.pending) {
      if (p.day !== day) continue;
      if (p.user === userKey) used.user += p.images;
      if (p.guild === guildKey) used.workspace += p.images;
    }
    const { perUser, perGuild } = this.caps;
    if (perUser > 0 && used.user + images > perUser) return capMessage("you", used.user, perUser, images);
    if (perGuild > 0 && requester.workspaceId !== NO_GUILD && used.workspace + images > perGuild)
      return capMessage("this server", used.workspace, perGuild, images);
    return undefined;
  }

  /** Holds `images` against today's caps, or throws "limit_reached" naming the cap. */
  reserve(requester: Requester, images: number): QuotaReservation {
    const refusal = this.check(requester, images);
    if (refusal) throw new EaselError("limit_reached", refusal);
    const day = utcDay(this.now());
    const pending: Pending = {
      day,
      user: keyOf(requester.platform, requester.userId),
      guild: keyOf(requester.platform, requester.workspaceId),
      images,
    };
    this.pending.add(pending);
    return {
      commit: (made, model, costUsd) => {
        this.ledger.record({
          day,
          at: this.now(),
          platform: requester.platform,
          workspaceId: requester.workspaceId,
          userId: requester.userId,
          model,
          images: made,
          costUsd,
        });
        pending.images = Math.max(0, pending.images - made);
      },
      release: () => {
        this.pending.delete(pending);
      },
    };
  }
}

const keyOf = (platform: string, id: string): string => `${platform}\u0000${id}`;

function capMessage(who: "you" | "this server", used: number, cap: number, asked: number): string {
  const left = Math.max(0, cap - used);
  const subject = who === "you" ? "You have" : "This server has";
  const limit = who === "you" ? "the daily limit per member" : "this server's daily limit";
  if (left === 0)
    return `${subject} used all ${cap} OpenAI images for today (${limit}); it resets at 00:00 UTC.`;
  return `${subject} ${left} OpenAI image${left === 1 ? "" : "s"} left today of ${cap} (${limit}); this job asks for ${asked}. Ask for fewer images, or wait until 00:00 UTC.`;
}
