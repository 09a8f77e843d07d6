import { mkdirSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { EaselError } from "../core/errors.ts";
import { rebuildTable } from "./rebuild-table.ts";

/**
 * Opening easel.db: pragmas, schema migrations, and the one place SQLite errors become EaselErrors.
 *
 * Durability: WAL lets readers (the queue display, button presses) run while the engine writes. A new job's
 * row is committed with `synchronous=FULL` (an fsync of the WAL) before the user is told "queued": with WAL's
 * NORMAL the last commits survive a SIGKILL (they are in the OS cache) but roll back on a power loss or kernel
 * panic, and an acknowledged job must never vanish. Render state changes commit with NORMAL: each one that a
 * power loss could roll back is recovered safely (a job found "running" runs again), and the next FULL commit
 * syncs them too, since the WAL is written in order. What guards a post that is not idempotent commits FULL:
 * a deliveries row (a delivery key written before its post, and the message id after it) and the end of a
 * delivery (→ delivered, → undeliverable), so a power loss can never roll back "this was posted" after the
 * platform showed it; a delivery attempt's count stays NORMAL (losing it only allows one attempt more).
 */

/** The file name of the database inside EASEL_DATA_DIR. */
export const DATABASE_FILE = "easel.db";

/** How long a writer waits for another connection's lock before giving up with "store_busy". */
export const DEFAULT_BUSY_TIMEOUT_MS = 5000;

/** One schema step. `version` is the `PRAGMA user_version` the database has after it. */
export interface Migration {
  version: number;
  name: string;
  /** SQL run with `exec` (several statements allowed), or a function for steps that need data logic. */
  up: string | ((db: Database.Database) => void);
  /**
   * The step rebuilds a table that others point at (SQLite's 12-step ALTER): foreign keys are switched off
   * around the migration transaction (the pragma is a no-op inside one) and checked before it commits.
   */
  rebuildsTables?: boolean;
}

/**
 * The job states migration 1's CHECK allowed, frozen here: a released step's SQL must never change, and
 * interpolating JOB_STATES would have changed it for new databases only. Later lists are frozen in their steps.
 */
const STATE_LIST_V1 = "'queued', 'running', 'rendered', 'delivered', 'failed', 'cancelled'";

/**
 * The schema, in order. Append only: a released step is never edited, a change is a new step (votes are
 * version 3). Each step's SQL runs in the same transaction as its user_version bump.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "jobs, images, settings, deliveries",
    up: `
      -- seq is the rowid: AUTOINCREMENT keeps it strictly increasing and never reused, even after rows are
      -- pruned, so it is the FIFO order. id is the public key (custom_ids, URLs); foreign keys point at it.
      CREATE TABLE jobs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE CHECK (length(id) BETWEEN 6 AND 32 AND id NOT GLOB '*[^0-9A-Za-z]*'),
        event_id TEXT NOT NULL UNIQUE CHECK (length(event_id) > 0),
        request TEXT NOT NULL CHECK (json_valid(request)),
        state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN (${STATE_LIST_V1})),
        attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        platform TEXT NOT NULL,
        workspace_id TEXT NOT NULL,
        channel_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        backend TEXT NOT NULL,
        model TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        started_at INTEGER,
        rendered_at INTEGER,
        finished_at INTEGER,
        error_code TEXT,
        error_message TEXT,
        -- A failure is final in the row before the user is told; this closes the gap a crash can open.
        failure_notified_at INTEGER
      );
      CREATE INDEX jobs_state_seq ON jobs (state, seq);
      CREATE INDEX jobs_user_state ON jobs (user_id, state);
      CREATE INDEX jobs_workspace_state ON jobs (workspace_id, state);

      -- One row per (job, variant); the file is shared by content (sha256), so the same bytes are stored once
      -- however many rows name them. Rows without a job are uploads (img2img inputs). variant 0 is a grid.
      CREATE TABLE images (
        id INTEGER PRIMARY KEY,
        sha256 TEXT NOT NULL CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'),
        job_id TEXT REFERENCES jobs (id),
        variant INTEGER CHECK ((job_id IS NULL AND variant IS NULL) OR (job_id IS NOT NULL AND variant >= 0)),
        seed INTEGER,
        width INTEGER NOT NULL CHECK (width > 0),
        height INTEGER NOT NULL CHECK (height > 0),
        bytes INTEGER NOT NULL CHECK (bytes >= 0),
        mime TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        UNIQUE (job_id, variant)
      );
      CREATE INDEX images_sha256 ON images (sha256);
      CREATE UNIQUE INDEX images_upload_sha256 ON images (sha256) WHERE job_id IS NULL;

      CREATE TABLE guild_settings (
        platform TEXT NOT NULL,
        workspace_id TEXT NOT NULL,
        settings TEXT NOT NULL CHECK (json_valid(settings) AND json_type(settings) = 'object'),
        updated_at INTEGER NOT NULL,
        updated_by TEXT,
        PRIMARY KEY (platform, workspace_id)
      ) WITHOUT ROWID;

      CREATE TABLE channel_settings (
        platform TEXT NOT NULL,
        workspace_id TEXT NOT NULL,
        channel_id TEXT NOT NULL,
        settings TEXT NOT NULL CHECK (json_valid(settings) AND json_type(settings) = 'object'),
        updated_at INTEGER NOT NULL,
        updated_by TEXT,
        PRIMARY KEY (platform, workspace_id, channel_id)
      ) WITHOUT ROWID;

      -- kind and platform are checked in TypeScript, not by CHECK: SQLite cannot alter a CHECK without
      -- rebuilding the table, and new kinds (contest announcements) are expected.
      -- message_id NULL: the post was started but its id is not known yet (crash window, see deliveries.ts).
      CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY,
        job_id TEXT NOT NULL REFERENCES jobs (id),
        platform TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (length(kind) > 0),
        channel_id TEXT NOT NULL,
        message_id TEXT,
        thread_id TEXT,
        reply_token TEXT,
        reply_expires_at INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        UNIQUE (platform, channel_id, message_id)
      );
      CREATE INDEX deliveries_job ON deliveries (job_id, kind);
    `,
  },
  {
    version: 2,
    name: "spend ledger, job cost",
    up: `
      -- What a paid backend (OpenAI) made and cost, one row per successful API call: the daily caps count it
      -- and admins read totals from it (store/spend.ts). No foreign key to jobs: the ledger outlives pruned
      -- jobs, and a cap must still count images whose job row is gone. cost_usd NULL: the model has no price.
      CREATE TABLE spend (
        id INTEGER PRIMARY KEY,
        day TEXT NOT NULL CHECK (length(day) = 10 AND day GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
        at INTEGER NOT NULL,
        platform TEXT NOT NULL,
        workspace_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        backend TEXT NOT NULL,
        model TEXT NOT NULL,
        images INTEGER NOT NULL CHECK (images >= 0),
        cost_usd REAL CHECK (cost_usd IS NULL OR cost_usd >= 0)
      );
      -- The caps' two questions: a member's images today, a workspace's images today.
      CREATE INDEX spend_day_user ON spend (day, platform, user_id);
      CREATE INDEX spend_day_workspace ON spend (day, platform, workspace_id);

      -- The estimated cost a backend reported for the job (BackendResult.costUsd); NULL: none reported.
      ALTER TABLE jobs ADD COLUMN cost_usd REAL CHECK (cost_usd IS NULL OR cost_usd >= 0);
    `,
  },
  {
    version: 3,
    name: "ballots, votes, arena matches, model ratings",
    up: `
      -- What members vote on: a result's variants (id = its job id), a contest, or an arena match. No foreign
      -- key to jobs: an arena match is two jobs. closes_at NULL: open while the result exists.
      CREATE TABLE ballots (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('result', 'contest', 'arena')),
        platform TEXT NOT NULL,
        workspace_id TEXT NOT NULL,
        channel_id TEXT NOT NULL,
        owner_id TEXT NOT NULL,
        choices INTEGER NOT NULL CHECK (choices BETWEEN 1 AND 10),
        created_at INTEGER NOT NULL,
        closes_at INTEGER,
        closed_at INTEGER,
        closed_by TEXT CHECK (closed_by IS NULL OR closed_by IN ('deadline', 'deleted')),
        winner INTEGER
      );
      CREATE INDEX ballots_open_deadline ON ballots (closes_at) WHERE closed_at IS NULL AND closes_at IS NOT NULL;
      CREATE INDEX ballots_workspace ON ballots (platform, workspace_id, created_at);

      -- One vote per member per ballot: the primary key is the uniqueness the rules rely on.
      CREATE TABLE votes (
        ballot_id TEXT NOT NULL REFERENCES ballots (id),
        platform TEXT NOT NULL,
        voter_id TEXT NOT NULL,
        choice INTEGER NOT NULL CHECK (choice >= 1),
        voted_at INTEGER NOT NULL,
        PRIMARY KEY (ballot_id, platform, voter_id)
      );

      -- An arena match: the same prompt on two models, shown as A and B until the ballot closes.
      CREATE TABLE arena_matches (
        id TEXT PRIMARY KEY REFERENCES ballots (id),
        prompt TEXT NOT NULL,
        job_a TEXT NOT NULL REFERENCES jobs (id),
        job_b TEXT NOT NULL REFERENCES jobs (id),
        model_a TEXT NOT NULL,
        model_b TEXT NOT NULL,
        rated_at INTEGER
      );

      CREATE TABLE model_ratings (
        model TEXT PRIMARY KEY,
        rating REAL NOT NULL,
        games INTEGER NOT NULL DEFAULT 0,
        wins INTEGER NOT NULL DEFAULT 0,
        losses INTEGER NOT NULL DEFAULT 0,
        draws INTEGER NOT NULL DEFAULT 0,
        votes INTEGER NOT NULL DEFAULT 0
      );
    `,
  },
  {
    version: 4,
    name: "indexes for retention and token clean-up",
    up: `
      -- Deleting a job makes SQLite look for arena matches naming it (foreign keys): without these each
      -- deleted job would scan the whole table. The pruner also asks "is this job in a match?".
      CREATE INDEX arena_matches_job_a ON arena_matches (job_a);
      CREATE INDEX arena_matches_job_b ON arena_matches (job_b);

      -- The stored reply tokens that may still need clearing: cleared rows leave the index, so the periodic
      -- clean-up reads only the few live ones (see DeliveryStore.clearExpiredReplyTokens).
      CREATE INDEX deliveries_reply_expiry ON deliveries (reply_expires_at) WHERE reply_token IS NOT NULL;

      -- Jobs whose request starts from a stored image (img2img: variation, upscale): an image file that such
      -- a job still names must outlive the job that made it (see store/retention.ts).
      CREATE INDEX jobs_init_image ON jobs (json_extract(request, '$.init.imageId'))
        WHERE json_extract(request, '$.init.imageId') IS NOT NULL;
    `,
  },
  {
    version: 5,
    name: "delivery states, attempts and age on jobs",
    rebuildsTables: true,
    up: (db) => {
      // The delivery state machine (core/relay.ts) adds `delivering` and `undeliverable`. A CHECK cannot be
      // altered, so the table is rebuilt with every row, column, index and its AUTOINCREMENT counter; the new
      // list is written out here, frozen like migration 1's.
      rebuildTable(db, "jobs", (sql) =>
        sql.replace(
          `CHECK (state IN (${STATE_LIST_V1}))`,
          "CHECK (state IN ('queued', 'running', 'rendered', 'delivering', 'delivered', 'undeliverable', " +
            "'failed', 'cancelled'))",
        ),
      );
      db.exec(`
        -- Attempts to post the result so far, and when the first began: the machine gives up after either.
        ALTER TABLE jobs ADD COLUMN delivery_attempts INTEGER NOT NULL DEFAULT 0 CHECK (delivery_attempts >= 0);
        ALTER TABLE jobs ADD COLUMN delivering_since INTEGER;
      `);
    },
  },
  {
    version: 6,
    name: "images withheld by the safety checker",
    up: `
      -- A result image the model's safety checker flagged: stored (black), never posted, voted, varied or upscaled.
      ALTER TABLE images ADD COLUMN flagged INTEGER NOT NULL DEFAULT 0 CHECK (flagged IN (0, 1));
    `,
  },
];

/** Options for {@link openDatabase}. */
export interface OpenDatabaseOptions {
  /** Milliseconds a statement waits on another connection's lock (default {@link DEFAULT_BUSY_TIMEOUT_MS}). */
  busyTimeoutMs?: number;
  /** The schema to bring the file to (default {@link MIGRATIONS}); tests pass longer lists. */
  migrations?: readonly Migration[];
}

/** The path of easel.db inside a data folder. */
export function databasePath(dataDir: string): string {
  return join(dataDir, DATABASE_FILE);
}

/** Opens (creating folders and file as needed) `<dataDir>/easel.db`, sets the pragmas and migrates it. */
export function openDatabase(dataDir: string, options: OpenDatabaseOptions = {}): Database.Database {
  const path = databasePath(dataDir);
  const busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
  try {
    mkdirSync(dataDir, { recursive: true });
  } catch (err) {
    throw fileSystemError(err, `creating the data folder ${dataDir}`);
  }
  let db: Database.Database;
  try {
    db = new Database(path, { timeout: busyTimeoutMs });
  } catch (err) {
    throw translateSqliteError(err, `opening ${path}`);
  }
  try {
    // busy_timeout first, so that switching to WAL waits for a second process opening the file too.
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
    // SQLite answers with the mode it ended up in rather than failing (e.g. on a file system without shared
    // memory): refuse to run without WAL instead of silently losing the durability described above.
    const mode = db.pragma("journal_mode = WAL", { simple: true });
    if (mode !== "wal") {
      throw new EaselError(
        "io_error",
        `${path} could not be switched to WAL mode (it is in ${String(mode)} mode): put EASEL_DATA_DIR on a local disk`,
      );
    }
    // Per connection, not stored in the file: every connection must set it (see the note at the top).
    db.pragma("synchronous = NORMAL");
    db.pragma("foreign_keys = ON");
    migrate(db, options.migrations ?? MIGRATIONS, path);
  } catch (err) {
    db.close();
    throw translateSqliteError(err, `opening ${path}`);
  }
  return db;
}

/** The schema version recorded in the file (`PRAGMA user_version`). */
export function schemaVersion(db: Database.Database): number {
  return Number(db.pragma("user_version", { simple: true }));
}

/**
 * Applies the migrations newer than the file's user_version, all in one IMMEDIATE transaction (all or
 * nothing; a second process starting at the same moment waits, then finds the work done). Refuses a file
 * from a newer easel instead of guessing at its schema.
 */
export function migrate(
  db: Database.Database,
  migrations: readonly Migration[] = MIGRATIONS,
  label = db.name,
): { from: number; to: number } {
  checkMigrationList(migrations);
  const latest = migrations.at(-1)?.version ?? 0;
  // Read again inside the transaction (another process may migrate first); this only decides the pragma.
  const rebuilding =
    migrations.some((step) => step.rebuildsTables && step.version > schemaVersion(db)) &&
    db.pragma("foreign_keys", { simple: true }) === 1;
  const run = db.transaction(() => {
    const from = schemaVersion(db);
    if (from > latest) {
      throw new EaselError(
        "store_version",
        `${label} has schema version ${from}, but this easel only knows versions up to ${latest}: it was ` +
          "written by a newer easel. Run that version, or restore a backup made before the upgrade.",
      );
    }
    for (const step of migrations) {
      if (step.version <= from) continue;
      if (typeof step.up === "string") db.exec(step.up);
      else step.up(db);
      db.pragma(`user_version = ${step.version}`);
    }
    if (rebuilding) {
      const broken = db.pragma("foreign_key_check") as unknown[];
      if (broken.length > 0) {
        throw new EaselError(
          "store_corrupt",
          `${label}: ${broken.length} rows point at rows that do not exist after the migration`,
        );
      }
    }
    return { from, to: Math.max(from, latest) };
  });
  // A table rebuild drops and recreates a table others point at: foreign keys must be off while it runs, and
  // that pragma only takes effect outside a transaction.
  if (rebuilding) db.pragma("foreign_keys = OFF");
  try {
    return run.immediate();
  } finally {
    if (rebuilding) db.pragma("foreign_keys = ON");
  }
}

function checkMigrationList(migrations: readonly Migration[]): void {
  let previous = 0;
  for (const step of migrations) {
    if (!Number.isInteger(step.version) || step.version !== previous + 1) {
      throw new EaselError(
        "invalid_argument",
        `migration "${step.name}" has version ${step.version}; versions must count up from 1 without gaps`,
      );
    }
    previous = step.version;
  }
}

/** Runs `fn` in a BEGIN IMMEDIATE transaction (nested calls become savepoints), translating SQLite errors. */
export function writeTransaction<T>(db: Database.Database, action: string, fn: () => T): T {
  // IMMEDIATE takes the write lock up front: a deferred read-then-write transaction that loses the race to
  // another connection fails with SQLITE_BUSY at once, without waiting out busy_timeout.
  return guard(action, () => db.transaction(fn).immediate());
}

/**
 * A write transaction committed with an fsync (synchronous=FULL), for what must survive a power loss the moment
 * it returns: a new job before its acknowledgement (see the note at the top). Nested in an open transaction it
 * simply joins it (the outer commit decides).
 */
export function durableWriteTransaction<T>(db: Database.Database, action: string, fn: () => T): T {
  if (db.inTransaction) return writeTransaction(db, action, fn);
  db.exec("PRAGMA synchronous = FULL");
  try {
    return writeTransaction(db, action, fn);
  } finally {
    db.exec("PRAGMA synchronous = NORMAL");
  }
}

/** Runs `fn`, turning SQLite errors into EaselErrors that name `action`; other errors pass through. */
export function guard<T>(action: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw translateSqliteError(err, action);
  }
}

/** Maps a better-sqlite3 error to an EaselError with a code callers branch on; anything else is returned. */
export function translateSqliteError(err: unknown, action: string): unknown {
  if (!(err instanceof Database.SqliteError)) return err;
  const code = err.code;
  const options = { cause: err };
  if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")) {
    return new EaselError(
      "store_busy",
      `the database stayed locked by another writer while ${action} (${code}); try again shortly`,
      options,
    );
  }
  if (code === "SQLITE_FULL") {
    return new EaselError(
      "disk_full",
      `the disk holding the database is full while ${action}: free space in the data folder`,
      options,
    );
  }
  if (code.startsWith("SQLITE_CORRUPT") || code === "SQLITE_NOTADB") {
    return new EaselError(
      "store_corrupt",
      `the database file is damaged or not a SQLite database while ${action} (${code}): restore a backup`,
      options,
    );
  }
  if (
    code.startsWith("SQLITE_IOERR") ||
    code.startsWith("SQLITE_CANTOPEN") ||
    code.startsWith("SQLITE_READONLY")
  ) {
    return new EaselError(
      "io_error",
      `the database could not be read or written while ${action} (${code})`,
      options,
    );
  }
  if (code === "SQLITE_CONSTRAINT_FOREIGNKEY") {
    return new EaselError("not_found", `${action}: it refers to a job that does not exist`, options);
  }
  if (code.startsWith("SQLITE_CONSTRAINT")) {
    return new EaselError("invalid_argument", `${action}: ${err.message} (${code})`, options);
  }
  return err;
}

/** Maps a Node file-system error (ENOSPC, EIO …) to an EaselError naming what was being done. */
export function fileSystemError(err: unknown, action: string): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === undefined) return err;
  const options = { cause: err };
  if (code === "ENOSPC" || code === "EDQUOT") {
    return new EaselError(
      "disk_full",
      `no space left on the disk while ${action} (${code}): free space in the data folder (EASEL_DATA_DIR)`,
      options,
    );
  }
  return new EaselError("io_error", `file-system error while ${action} (${code})`, options);
}

/** `PRAGMA integrity_check`: ["ok"] when the file is sound, otherwise one line per problem. */
export function integrityCheck(db: Database.Database): string[] {
  return (db.pragma("integrity_check") as { integrity_check: string }[]).map((row) => row.integrity_check);
}

/**
 * A WHERE clause (with a leading space, or "" for none) from the fields of `filter` that are set, each with its
 * condition ("user_id = ?"), after any `conditions` the caller built itself.
 */
export function whereClause<F extends object>(
  filter: F,
  columns: readonly (readonly [keyof F & string, string])[],
  conditions: string[] = [],
  params: unknown[] = [],
): { sql: string; params: unknown[] } {
  for (const [key, condition] of columns) {
    const value = filter[key];
    if (value === undefined) continue;
    conditions.push(condition);
    params.push(value);
  }
  return { sql: conditions.length === 0 ? "" : ` WHERE ${conditions.join(" AND ")}`, params };
}

/** Prepared statements by their SQL, for queries built from a few filter combinations (prepared once each). */
export class StatementCache {
  private readonly statements = new Map<string, Database.Statement<unknown[], unknown>>();

  constructor(private readonly db: Database.Database) {}

  get(sql: string): Database.Statement<unknown[], unknown> {
    let statement = this.statements.get(sql);
    if (statement === undefined) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }
}
