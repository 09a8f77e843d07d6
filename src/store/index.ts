import { resolve } from "node:path";
import type Database from "better-sqlite3";
import {
  databasePath,
  integrityCheck,
  type Migration,
  openDatabase,
  schemaVersion,
  writeTransaction,
} from "./database.ts";
import { DeliveryStore } from "./deliveries.ts";
import { type ImageFileOps, ImageStore } from "./images.ts";
import { JobStore } from "./jobs.ts";
import { RetentionStore } from "./retention.ts";
import { SettingsStore } from "./settings.ts";
import { SqliteSpendLedger } from "./spend.ts";
import { VoteStore } from "./votes.ts";

/**
 * easel's record: one SQLite file (`<EASEL_DATA_DIR>/easel.db`) and the image files beside it, with one
 * module per table family. Votes (issue 8) will be one more migration and one more module here.
 */

export type { Migration } from "./database.ts";
export { DEFAULT_BUSY_TIMEOUT_MS, MIGRATIONS } from "./database.ts";
export type { Delivery, DeliveryInput, DeliveryKind, DeliveryPatch } from "./deliveries.ts";
export type { ImageFileOps, ImageMeta, ImageRecord } from "./images.ts";
export type { CreateJobInput, JobFilter, JobRecord, RecoverySnapshot, TransitionOptions } from "./jobs.ts";
export { DEFAULT_PRUNE_BATCH, RetentionStore, storeHousekeeping } from "./retention.ts";
export type { SetSettingsOptions, SettingsParser, SettingsRecord, SettingsScope } from "./settings.ts";
export { SqliteSpendLedger } from "./spend.ts";

/** Options for {@link Store.open}. */
export interface StoreOptions {
  /** Milliseconds to wait on another connection's lock before "store_busy" (default 5000). */
  busyTimeoutMs?: number;
  /** Time source for the timestamps the callers do not pass (default Date.now); tests pass a fake clock. */
  clock?: () => number;
  /** Schema steps (default MIGRATIONS); tests pass longer lists. */
  migrations?: readonly Migration[];
  /** File operations for image saves (tests inject ENOSPC). */
  imageFileOps?: Partial<ImageFileOps>;
}

/** The opened store: jobs, images, settings, deliveries and the spend ledger over one connection. */
export class Store {
  readonly jobs: JobStore;
  readonly images: ImageStore;
  readonly settings: SettingsStore;
  readonly deliveries: DeliveryStore;
  /** Paid backends' images and cost per day (the OpenAI backend's `ledger`): caps and admin totals. */
  readonly spend: SqliteSpendLedger;
  /** Ballots, votes, arena matches and model ratings. */
  readonly votes: VoteStore;
  /** Deleting finished jobs past the retention period (EASEL_RETENTION_DAYS), with their files. */
  readonly retention: RetentionStore;

  private constructor(
    /** The data folder (absolute). */
    readonly dataDir: string,
    /** The connection, for modules added later (votes) and for tests; prefer the module APIs. */
    readonly db: Database.Database,
    options: StoreOptions,
  ) {
    const clock = options.clock ?? Date.now;
    this.jobs = new JobStore(db, clock);
    const imageOptions =
      options.imageFileOps === undefined ? { clock } : { clock, fileOps: options.imageFileOps };
    this.images = new ImageStore(db, dataDir, imageOptions);
    this.settings = new SettingsStore(db, clock);
    this.deliveries = new DeliveryStore(db, clock);
    this.spend = new SqliteSpendLedger(db);
    this.votes = new VoteStore(db, clock);
    this.retention = new RetentionStore(db, this.images);
  }

  /**
   * Opens (creating if needed) the store in `dataDir`: folders, easel.db with WAL and synchronous=FULL, the
   * schema brought up to date. A database from a newer easel is refused ("store_version").
   */
  static open(dataDir: string, options: StoreOptions = {}): Store {
    const dir = resolve(dataDir);
    const openOptions = {
      ...(options.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: options.busyTimeoutMs }),
      ...(options.migrations === undefined ? {} : { migrations: options.migrations }),
    };
    return new Store(dir, openDatabase(dir, openOptions), options);
  }

  /** Path of the database file. */
  get path(): string {
    return databasePath(this.dataDir);
  }

  /** The schema version of the open file. */
  get schemaVersion(): number {
    return schemaVersion(this.db);
  }

  /** Runs `fn` as one write transaction (BEGIN IMMEDIATE); store calls inside it join it. */
  transaction<T>(fn: () => T, action = "writing to the store"): T {
    return writeTransaction(this.db, action, fn);
  }

  /** `PRAGMA integrity_check`: ["ok"] when the file is sound. */
  integrityCheck(): string[] {
    return integrityCheck(this.db);
  }

  /** Closes the connection (idempotent); SQLite checkpoints the WAL when the last connection closes. */
  close(): void {
    if (this.db.open) this.db.close();
  }
}
