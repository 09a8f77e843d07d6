import { EaselError } from "../../core/errors.ts";
import { MESSAGES } from "../../core/messages.ts";
import type { Requester } from "../../core/request.ts";
import type { OpenAiGuildCaps } from "../../core/settings.ts";
import {
  type DailyImageCaps,
  type DayCounts,
  dailyCapInForce,
  roundUsd,
  type SpendCounter,
  type SpendEntry,
  type SpenderTotals,
  type SpendLedger,
  type SpendQuery,
  type SpendTotals,
  utcDay,
} from "../../core/spend.ts";

/**
 * Daily image caps for the OpenAI backend, over a `SpendLedger` (src/core/spend.ts): the store's
 * `SqliteSpendLedger` in production (totals survive a restart), `MemorySpendLedger` here for tests and for a
 * backend built without a store. Check and count stay atomic within the process: the ledger is synchronous
 * (better-sqlite3), `check` and `reserve` run in one turn of the event loop, and a reservation holds the images
 * of a running job until `commit` records what was made. Days are UTC calendar days.
 */

export type {
  DailyImageCaps,
  SpendEntry,
  SpenderTotals,
  SpendLedger,
  SpendQuery,
  SpendTotals,
} from "../../core/spend.ts";
export { utcDay } from "../../core/spend.ts";

/** SpendLedger in memory (lost on restart; the store's SqliteSpendLedger keeps it). */
export class MemorySpendLedger implements SpendLedger {
  private readonly entries: SpendEntry[] = [];

  record(entry: SpendEntry): void {
    this.entries.push({ ...entry });
  }

  imagesOn(day: string, who: SpendCounter): DayCounts {
    const counts: DayCounts = { user: 0, workspace: 0, userInWorkspace: 0 };
    for (const e of this.entries) {
      if (e.day !== day || e.platform !== who.platform) continue;
      if (who.backend !== undefined && backendOf(e) !== who.backend) continue;
      if (e.userId === who.userId) counts.user += e.images;
      if (e.workspaceId === who.workspaceId) counts.workspace += e.images;
      if (e.userId === who.userId && e.workspaceId === who.workspaceId) counts.userInWorkspace += e.images;
    }
    return counts;
  }

  totals(query: SpendQuery): SpendTotals {
    const totals: SpendTotals = { images: 0, costUsd: 0, unpricedImages: 0 };
    for (const e of this.matching(query)) add(totals, e);
    totals.costUsd = roundUsd(totals.costUsd);
    return totals;
  }

  topSpenders(query: SpendQuery, limit: number): SpenderTotals[] {
    const byUser = new Map<string, SpenderTotals>();
    for (const e of this.matching(query)) {
      const key = keyOf(e.platform, e.userId);
      let totals = byUser.get(key);
      if (totals === undefined) {
        totals = { platform: e.platform, userId: e.userId, images: 0, costUsd: 0, unpricedImages: 0 };
        byUser.set(key, totals);
      }
      add(totals, e);
    }
    const all = [...byUser.values()].map((t) => ({ ...t, costUsd: roundUsd(t.costUsd) }));
    all.sort(
      (a, b) =>
        b.costUsd - a.costUsd ||
        b.images - a.images ||
        compare(a.platform, b.platform) ||
        compare(a.userId, b.userId),
    );
    return all.slice(0, Math.max(0, Math.floor(limit)));
  }

  private *matching(query: SpendQuery): Iterable<SpendEntry> {
    for (const e of this.entries) {
      if (query.platform !== undefined && e.platform !== query.platform) continue;
      if (query.workspaceId !== undefined && e.workspaceId !== query.workspaceId) continue;
      if (query.userId !== undefined && e.userId !== query.userId) continue;
      if (query.backend !== undefined && backendOf(e) !== query.backend) continue;
      if (query.fromDay !== undefined && e.day < query.fromDay) continue;
      if (query.toDay !== undefined && e.day > query.toDay) continue;
      yield e;
    }
  }
}

const backendOf = (e: SpendEntry) => e.backend ?? "openai";

function add(totals: SpendTotals, e: SpendEntry): void {
  totals.images += e.images;
  if (e.costUsd === undefined) totals.unpricedImages += e.images;
  else totals.costUsd += e.costUsd;
}

/** Code-unit order, the same as SQLite's BINARY collation. */
const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Direct messages share the workspace id "dm": they are not one guild, so no guild cap or override applies. */
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
 * Checks and holds the daily caps: the operator's (per member across workspaces, per workspace) and a guild's
 * lower overrides (per member in that guild, for the guild; 0 turns OpenAI off there). `check` is for the
 * moment a request arrives (refused at ack time, with the reason); `reserve` holds the images while the job
 * runs, so concurrent jobs see each other.
 */
export class DailyImageQuota {
  private readonly pending = new Set<Pending>();

  constructor(
    private readonly ledger: SpendLedger,
    private readonly caps: DailyImageCaps,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Why `images` more for this requester would pass a cap today (a sentence from MESSAGES naming the cap and
   * when it resets); undefined when they fit. `guild` is the guild's settings, or just their cap overrides.
   */
  check(requester: Requester, images: number, guild?: OpenAiGuildCaps): string | undefined {
    const day = utcDay(this.now());
    const used = this.ledger.imagesOn(day, { ...requester, backend: "openai" });
    const userKey = keyOf(requester.platform, requester.userId);
    const guildKey = keyOf(requester.platform, requester.workspaceId);
    for (const p of this.pending) {
      if (p.day !== day) continue;
      if (p.user === userKey) used.user += p.images;
      if (p.guild === guildKey) used.workspace += p.images;
      if (p.user === userKey && p.guild === guildKey) used.userInWorkspace += p.images;
    }
    const inGuild = requester.workspaceId !== NO_GUILD;
    const overrides = inGuild ? guild : undefined;
    const { perUser, perGuild } = this.caps;
    const over = (scope: "member" | "server", setBy: "operator" | "guild", cap: number, count: number) =>
      count + images > cap
        ? MESSAGES.openAiDailyLimit({ scope, setBy, cap, used: count, asked: images })
        : undefined;

    const member = dailyCapInForce(perUser, overrides?.openaiDailyImagesPerUser);
    const server = inGuild ? dailyCapInForce(perGuild, overrides?.openaiDailyImagesPerGuild) : undefined;
    return (
      // A guild's own caps first: 0 there means "off", whatever was used.
      (member?.setBy === "guild" ? over("member", "guild", member.cap, used.userInWorkspace) : undefined) ??
      (server?.setBy === "guild" ? over("server", "guild", server.cap, used.workspace) : undefined) ??
      (perUser > 0 ? over("member", "operator", perUser, used.user) : undefined) ??
      (server?.setBy === "operator" ? over("server", "operator", server.cap, used.workspace) : undefined)
    );
  }

  /** Holds `images` against today's caps, or throws "limit_reached" naming the cap. */
  reserve(requester: Requester, images: number, guild?: OpenAiGuildCaps): QuotaReservation {
    const refusal = this.check(requester, images, guild);
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
          backend: "openai",
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
