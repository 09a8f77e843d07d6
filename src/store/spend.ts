import type Database from "better-sqlite3";
import { EaselError } from "../core/errors.ts";
import {
  type DayCounts,
  DEFAULT_SPEND_BACKEND,
  roundUsd,
  type SpendCounter,
  type SpendEntry,
  type SpenderTotals,
  type SpendLedger,
  type SpendQuery,
  type SpendTotals,
} from "../core/spend.ts";
import { guard, StatementCache, whereClause, writeTransaction } from "./database.ts";

/**
 * The spend table: what paid backends (OpenAI) made and cost, one row per successful API call, so that the
 * daily caps and the admins' totals survive a restart.
 *
 * Check and count stay atomic without a lock: better-sqlite3 is synchronous, so the OpenAI backend's cap check
 * (`imagesOn` plus the images its running jobs hold) and the reservation that follows run in one turn of the
 * event loop, before any other job's check; `record` commits as soon as a call succeeds. One bot process owns
 * the caps; a second process on the same file would see the rows but not the first one's running jobs.
 */

interface TotalsRow {
  images: number;
  cost_usd: number;
  unpriced_images: number;
}

/** A UTC day as the ledger stores it ("2026-08-21"). */
const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** SpendLedger over SQLite (the `spend` table, migration 2). */
export class SqliteSpendLedger implements SpendLedger {
  private readonly insert: Database.Statement<unknown[]>;
  private readonly counts: Database.Statement<unknown[], DayCounts>;
  /** Queries are built from the set of filters used; there are few combinations, so cache them. */
  private readonly queries: StatementCache;

  constructor(private readonly db: Database.Database) {
    this.queries = new StatementCache(db);
    this.insert = db.prepare(
      `INSERT INTO spend (day, at, platform, workspace_id, user_id, backend, model, images, cost_usd)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    // One statement, so the three counts are one snapshot; each sub-select searches its own index.
    const count = (where: string) =>
      `(SELECT CAST(total(images) AS INTEGER) FROM spend
        WHERE day = :day AND platform = :platform AND ${where} AND (:backend IS NULL OR backend = :backend))`;
    this.counts = db.prepare(
      `SELECT ${count("user_id = :user")} AS user, ${count("workspace_id = :workspace")} AS workspace,
              ${count("user_id = :user AND workspace_id = :workspace")} AS userInWorkspace`,
    );
  }

  /** Adds one entry; refuses a malformed day or a negative count or cost ("invalid_argument"). */
  record(entry: SpendEntry): void {
    if (!DAY.test(entry.day))
      throw new EaselError("invalid_argument", `spend day must look like 2026-08-21, not "${entry.day}"`);
    if (!Number.isInteger(entry.images) || entry.images < 0)
      throw new EaselError(
        "invalid_argument",
        `spend images must be a whole number >= 0, not ${entry.images}`,
      );
    if (entry.costUsd !== undefined && !(Number.isFinite(entry.costUsd) && entry.costUsd >= 0))
      throw new EaselError("invalid_argument", `spend cost must be a number >= 0, not ${entry.costUsd}`);
    writeTransaction(
      this.db,
      `recording ${entry.images} images for ${entry.platform} user ${entry.userId}`,
      () =>
        this.insert.run(
          entry.day,
          entry.at,
          entry.platform,
          entry.workspaceId,
          entry.userId,
          entry.backend ?? DEFAULT_SPEND_BACKEND,
          entry.model,
          entry.images,
          entry.costUsd ?? null,
        ),
    );
  }

  imagesOn(day: string, who: SpendCounter): DayCounts {
    const row = guard(`counting the images of ${who.platform} user ${who.userId} on ${day}`, () =>
      this.counts.get({
        day,
        platform: who.platform,
        user: who.userId,
        workspace: who.workspaceId,
        backend: who.backend ?? null,
      }),
    );
    return {
      user: row?.user ?? 0,
      workspace: row?.workspace ?? 0,
      userInWorkspace: row?.userInWorkspace ?? 0,
    };
  }

  totals(query: SpendQuery): SpendTotals {
    const { sql, params } = whereClause(query, SPEND_FILTERS);
    const statement = this.queries.get(`SELECT ${TOTALS} FROM spend${sql}`);
    const row = guard("adding up spend", () => statement.get(...params) as TotalsRow | undefined);
    return toTotals(row);
  }

  topSpenders(query: SpendQuery, limit: number): SpenderTotals[] {
    const n = Math.max(0, Math.floor(limit));
    if (n === 0) return [];
    const { sql, params } = whereClause(query, SPEND_FILTERS);
    const statement = this.queries.get(
      `SELECT platform, user_id, ${TOTALS} FROM spend${sql}
       GROUP BY platform, user_id
       ORDER BY round(total(cost_usd), 6) DESC, images DESC, platform, user_id
       LIMIT ?`,
    );
    const rows = guard(
      "listing top spenders",
      () =>
        statement.all(...params, n) as (TotalsRow & {
          platform: SpenderTotals["platform"];
          user_id: string;
        })[],
    );
    return rows.map((row) => ({ platform: row.platform, userId: row.user_id, ...toTotals(row) }));
  }
}

const TOTALS = `CAST(total(images) AS INTEGER) AS images, total(cost_usd) AS cost_usd,
  CAST(total(CASE WHEN cost_usd IS NULL THEN images END) AS INTEGER) AS unpriced_images`;

function toTotals(row: TotalsRow | undefined): SpendTotals {
  return {
    images: row?.images ?? 0,
    costUsd: roundUsd(row?.cost_usd ?? 0),
    unpricedImages: row?.unpriced_images ?? 0,
  };
}

/** The conditions a SpendQuery's fields stand for. */
const SPEND_FILTERS: readonly (readonly [keyof SpendQuery, string])[] = [
  ["platform", "platform = ?"],
  ["workspaceId", "workspace_id = ?"],
  ["userId", "user_id = ?"],
  ["backend", "backend = ?"],
  ["fromDay", "day >= ?"],
  ["toDay", "day <= ?"],
];
