import { rmSync } from "node:fs";
import { join } from "node:path";
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import type Database from "better-sqlite3";
import { EaselError } from "../core/errors.ts";
import { isFinalState, JOB_STATES } from "../core/job.ts";
import type { HousekeepingPort, PruneCounts, PruneOptions } from "../core/retention.ts";
import { writeTransaction } from "./database.ts";
import { type ImageStore, sweepStaleTempFiles } from "./images.ts";

/**
 * Retention (EASEL_RETENTION_DAYS): deleting finished jobs older than a cutoff, with their images, previews,
 * messages and votes, in bounded batches. The policy (what to call when) is core/retention.ts; this is the
 * SQL and the files.
 *
 * What is never deleted, whatever its age:
 * - jobs that are not finished (queued, running, rendered, delivering), and failed or undeliverable ones whose
 *   requester was not told yet: the engine and the relay still owe them work;
 * - a contest's winner (its ballot is the job's id, kind 'contest', with a winner): the announcement and any
 *   later "winners" view need the job and its images;
 * - both jobs of an arena match that was rated, is still open, or closed at its deadline and awaits rating:
 *   the ratings were computed from them and the reveal shows them. A match called off (closed as deleted)
 *   was never rated; its jobs go like any other, and the match row with them;
 * - a job whose own vote is still running (a deadline in the future): the contest clock will close it.
 *
 * Image files are content-addressed (one file per sha256, shared by every row with the same bytes): a file
 * goes only when no row names it any more, checked under the write lock (ImageStore.removeUnreferencedFiles).
 * An image a kept job starts from (img2img: a variation or upscale names its parent's image by sha256) keeps
 * a row as an upload (job_id NULL) when its job is deleted, so that the kept job can still be rendered again;
 * such uploads go once no job names them.
 */

/** Final states whose requester is told once (failure_notified_at, see JobStore.listUnnotifiedFailures). */
const NOTIFIED_STATES = "('failed', 'undeliverable')";

/** Jobs deleted per transaction (each with its images, messages and votes): short write locks. */
export const DEFAULT_PRUNE_BATCH = 100;

/** The states a job never leaves (from core's transition table, so a new state is covered), the only ones pruned. */
const FINISHED = `(${JOB_STATES.filter(isFinalState)
  .map((state) => `'${state}'`)
  .join(", ")})`;

/** A finished job older than the cutoff that no keep rule (see the note at the top) protects. */
const PRUNABLE = `
  j.state IN ${FINISHED}
  AND coalesce(j.finished_at, j.updated_at) < :cutoff
  AND (j.state NOT IN ${NOTIFIED_STATES} OR j.failure_notified_at IS NOT NULL)
  AND NOT EXISTS (
    SELECT 1 FROM ballots b WHERE b.id = j.id
      AND ((b.kind = 'contest' AND b.winner IS NOT NULL) OR (b.closed_at IS NULL AND b.closes_at IS NOT NULL)))
  AND NOT EXISTS (
    SELECT 1 FROM arena_matches m JOIN ballots b ON b.id = m.id
    WHERE (m.job_a = j.id OR m.job_b = j.id)
      AND (m.rated_at IS NOT NULL OR b.closed_at IS NULL OR b.closed_by IS NOT 'deleted'))`;

interface ImageRowCopy {
  sha256: string;
  mime: string;
  seed: number | null;
  width: number;
  height: number;
  bytes: number;
  created_at: number;
}

/** Deletes what retention lets go. Built by Store; reach it as `store.retention`. */
export class RetentionStore {
  private readonly candidates: Database.Statement<
    [{ after: number; cutoff: number; limit: number }],
    { seq: number; id: string }
  >;
  private readonly imagesOf: Database.Statement<[string], ImageRowCopy>;
  private readonly matchesOf: Database.Statement<[{ ids: string }], { id: string }>;
  private readonly deleteVotes: Database.Statement<[string]>;
  private readonly deleteMatches: Database.Statement<[string]>;
  private readonly deleteBallots: Database.Statement<[string]>;
  private readonly deleteDeliveries: Database.Statement<[string]>;
  private readonly deleteImages: Database.Statement<[string]>;
  private readonly deleteJobs: Database.Statement<[string]>;
  private readonly namedAsInit: Database.Statement<[string], { one: number }>;
  private readonly anyRow: Database.Statement<[string, string], { one: number }>;
  private readonly keepAsUpload: Database.Statement<unknown[]>;
  private readonly staleUploads: Database.Statement<
    [{ after: number; cutoff: number; limit: number }],
    ImageRowCopy & { id: number }
  >;
  private readonly deleteImageRows: Database.Statement<[string]>;

  constructor(
    private readonly db: Database.Database,
    private readonly images: ImageStore,
  ) {
    // seq > :after walks the table once per run: jobs a keep rule protects are not read again by each batch.
    this.candidates = db.prepare(
      `SELECT j.seq, j.id FROM jobs j WHERE j.seq > :after AND ${PRUNABLE} ORDER BY j.seq LIMIT :limit`,
    );
    // Lists are passed as one JSON array (json_each), so each statement is prepared once for any batch size.
    const inList = "(SELECT value FROM json_each(?))";
    this.imagesOf = db.prepare(
      `SELECT sha256, mime, seed, width, height, bytes, created_at FROM images WHERE job_id IN ${inList}`,
    );
    this.matchesOf = db.prepare(
      `SELECT id FROM arena_matches
       WHERE job_a IN (SELECT value FROM json_each(:ids)) OR job_b IN (SELECT value FROM json_each(:ids))`,
    );
    this.deleteVotes = db.prepare(`DELETE FROM votes WHERE ballot_id IN ${inList}`);
    this.deleteMatches = db.prepare(`DELETE FROM arena_matches WHERE id IN ${inList}`);
    this.deleteBallots = db.prepare(`DELETE FROM ballots WHERE id IN ${inList}`);
    this.deleteDeliveries = db.prepare(`DELETE FROM deliveries WHERE job_id IN ${inList}`);
    this.deleteImages = db.prepare(`DELETE FROM images WHERE job_id IN ${inList}`);
    this.deleteJobs = db.prepare(`DELETE FROM jobs WHERE id IN ${inList}`);
    // The same expression as the jobs_init_image index (migration 4), so that this is an index search.
    this.namedAsInit = db.prepare(
      "SELECT 1 AS one FROM jobs WHERE json_extract(request, '$.init.imageId') = ? LIMIT 1",
    );
    this.anyRow = db.prepare("SELECT 1 AS one FROM images WHERE sha256 = ? AND mime = ? LIMIT 1");
    this.keepAsUpload = db.prepare(
      `INSERT INTO images (sha256, job_id, variant, seed, width, height, bytes, mime, created_at)
       VALUES (?, NULL, NULL, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    );
    this.staleUploads = db.prepare(
      `SELECT id, sha256, mime, seed, width, height, bytes, created_at FROM images i
       WHERE i.id > :after AND i.job_id IS NULL AND i.created_at < :cutoff
         AND NOT EXISTS (SELECT 1 FROM jobs WHERE json_extract(request, '$.init.imageId') = i.sha256)
       ORDER BY i.id LIMIT :limit`,
    );
    this.deleteImageRows = db.prepare(`DELETE FROM images WHERE id IN ${inList}`);
  }

  /**
   * Deletes the finished jobs that ended before `cutoff` (ms) and that no keep rule protects (see the note
   * at the top of this file), with their image rows, deliveries, ballots and votes, then the image files no
   * row names any more and `<previewsDir>/<job>.gif` and `.gif.frames`; then uploads older than the cutoff
   * that no job names. Each batch of jobs is one transaction, and the event loop gets a turn between batches;
   * an aborted `signal` stops between batches (what was deleted stays deleted). Running it again deletes
   * nothing more. Returns what it removed.
   */
  async pruneOlderThan(cutoff: number, options: PruneOptions = {}): Promise<PruneCounts> {
    if (!Number.isFinite(cutoff)) throw new EaselError("invalid_argument", `cutoff ${cutoff} is not a time`);
    const limit = Math.max(1, Math.floor(options.batchSize ?? DEFAULT_PRUNE_BATCH));
    const counts: PruneCounts = {
      jobs: 0,
      images: 0,
      uploads: 0,
      files: 0,
      previews: 0,
      deliveries: 0,
      ballots: 0,
      votes: 0,
      arenaMatches: 0,
    };
    let after = 0;
    while (options.signal?.aborted !== true) {
      const batch = writeTransaction(this.db, "deleting jobs past the retention period", () => {
        const jobs = this.candidates.all({ after, cutoff, limit });
        if (jobs.length === 0) return undefined;
        after = jobs[jobs.length - 1]?.seq ?? after;
        const ids = JSON.stringify(jobs.map((job) => job.id));
        const images = this.imagesOf.all(ids);
        // A result's or contest's ballot has the job's id; an arena match has its own, found by its jobs.
        const ballots = JSON.stringify([
          ...jobs.map((job) => job.id),
          ...this.matchesOf.all({ ids }).map((m) => m.id),
        ]);
        counts.votes += this.deleteVotes.run(ballots).changes;
        counts.arenaMatches += this.deleteMatches.run(ballots).changes;
        counts.ballots += this.deleteBallots.run(ballots).changes;
        counts.deliveries += this.deleteDeliveries.run(ids).changes;
        counts.images += this.deleteImages.run(ids).changes;
        counts.jobs += this.deleteJobs.run(ids).changes;
        for (const image of images) {
          // Checked after the deletes: a job of this same batch that named the image is gone and does not count.
          if (this.namedAsInit.get(image.sha256) === undefined) continue;
          if (this.anyRow.get(image.sha256, image.mime) !== undefined) continue;
          this.keepAsUpload.run(
            image.sha256,
            image.seed,
            image.width,
            image.height,
            image.bytes,
            image.mime,
            image.created_at,
          );
        }
        return { ids: jobs.map((job) => job.id), images };
      });
      if (batch === undefined) break;
      // Files after their rows are committed: a crash in between leaves files no row names (disk only),
      // never a row naming a missing file.
      counts.files += this.images.removeUnreferencedFiles(batch.images);
      if (options.previewsDir !== undefined)
        counts.previews += removePreviews(options.previewsDir, batch.ids);
      await yieldToEventLoop();
    }
    let afterUpload = 0;
    while (options.signal?.aborted !== true) {
      const uploads = writeTransaction(this.db, "deleting uploads past the retention period", () => {
        const rows = this.staleUploads.all({ after: afterUpload, cutoff, limit });
        if (rows.length === 0) return undefined;
        afterUpload = rows[rows.length - 1]?.id ?? afterUpload;
        counts.uploads += this.deleteImageRows.run(JSON.stringify(rows.map((row) => row.id))).changes;
        return rows;
      });
      if (uploads === undefined) break;
      counts.files += this.images.removeUnreferencedFiles(uploads);
      await yieldToEventLoop();
    }
    return counts;
  }
}

/** Removes the previews of deleted jobs; returns how many files it removed. */
function removePreviews(previewsDir: string, jobIds: readonly string[]): number {
  let removed = 0;
  for (const id of jobIds) {
    for (const name of [`${id}.gif`, `${id}.gif.frames`]) {
      try {
        rmSync(join(previewsDir, name));
        removed++;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      }
    }
  }
  return removed;
}

/**
 * The store's side of core/retention.ts's Housekeeper: temp files in the image shards and in the previews
 * folder, expired reply tokens, and pruning (previews of pruned jobs included).
 */
export function storeHousekeeping(
  store: {
    images: ImageStore;
    deliveries: { clearExpiredReplyTokens(now?: number): number };
    retention: RetentionStore;
  },
  previewsDir: string,
): HousekeepingPort {
  return {
    async sweepTempFiles(olderThanMs, now) {
      const images = await store.images.sweepTempFiles(olderThanMs, now);
      return images + (await sweepStaleTempFiles(previewsDir, { olderThanMs, now }));
    },
    clearExpiredReplyTokens: (now) => store.deliveries.clearExpiredReplyTokens(now),
    pruneOlderThan: (cutoff, options) => store.retention.pruneOlderThan(cutoff, { previewsDir, ...options }),
  };
}
