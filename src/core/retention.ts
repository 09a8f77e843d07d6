/**
 * Housekeeping: what easel removes on its own so that a long-running bot does not grow without bound on disk.
 * At start and then every hour: temp files a crash or a failed write left behind, reply tokens (Discord
 * interaction tokens, Slack response_urls) that have expired, and, when EASEL_RETENTION_DAYS is set, finished
 * jobs older than that with their images and previews (contest winners and rated arena matches are kept; see
 * src/store/retention.ts for every rule). Unset, nothing is pruned: keeping everything is the default.
 *
 * This is the policy (when, and how far back); the store does the deleting through {@link HousekeepingPort}.
 */

const DAY_MS = 24 * 60 * 60_000;

/** How often housekeeping runs after the first pass at start. */
export const HOUSEKEEPING_INTERVAL_MS = 60 * 60_000;

/** Temp files younger than this may belong to a write in progress (this process or another): left alone. */
export const TEMP_FILE_MIN_AGE_MS = 60 * 60_000;

/** The shortest EASEL_RETENTION_DAYS: a day keeps every vote and button of a fresh result working. */
export const MIN_RETENTION_DAYS = 1;

/** What a prune removed. */
export interface PruneCounts {
  jobs: number;
  /** Image rows of the pruned jobs. */
  images: number;
  /** Upload rows (img2img inputs no job names any more). */
  uploads: number;
  /** Image files removed from disk (a file still named by a kept row stays). */
  files: number;
  /** Preview files (`<job>.gif`, `<job>.gif.frames`) removed. */
  previews: number;
  deliveries: number;
  ballots: number;
  votes: number;
  arenaMatches: number;
}

export interface PruneOptions {
  /** The folder of `<job>.gif` previews; left out, previews are not touched. */
  previewsDir?: string;
  /** Jobs per transaction. */
  batchSize?: number;
  /** Stops between batches once aborted (easel is stopping). */
  signal?: AbortSignal;
}

/** The store operations housekeeping uses (src/store/retention.ts `storeHousekeeping`). */
export interface HousekeepingPort {
  /** Removes temp files older than `olderThanMs` (wall time `now`); returns how many. */
  sweepTempFiles(olderThanMs: number, now: number): Promise<number>;
  /** Forgets reply tokens that expired before `now`; returns how many rows it cleared. */
  clearExpiredReplyTokens(now: number): number;
  pruneOlderThan(cutoff: number, options?: PruneOptions): Promise<PruneCounts>;
}

/** One pass's results; `pruned` is absent when no retention period is set. */
export interface HousekeepingReport {
  tempFiles: number;
  replyTokens: number;
  pruned?: PruneCounts;
}

/** The time before which finished jobs are pruned, or undefined to keep everything (`days` unset). */
export function retentionCutoff(now: number, days: number | undefined): number | undefined {
  if (days === undefined) return undefined;
  if (!Number.isInteger(days) || days < MIN_RETENTION_DAYS) {
    throw new RangeError(
      `a retention period is a whole number of days >= ${MIN_RETENTION_DAYS}, not ${days}`,
    );
  }
  return now - days * DAY_MS;
}

export interface HousekeeperOptions {
  /** EASEL_RETENTION_DAYS; undefined keeps jobs for ever (temp files and tokens are still cleaned). */
  retentionDays?: number;
  /** Between passes (default {@link HOUSEKEEPING_INTERVAL_MS}). */
  intervalMs?: number;
  /** Wall clock (default Date.now): compared with file times and the store's timestamps. */
  now?: () => number;
  /** Told one line per pass that removed something, and about failures. */
  log?: (line: string) => void;
}

/**
 * Runs housekeeping once at start() and then every interval, never two passes at once; a failed pass is
 * logged and the next one runs as planned. stop() ends the timer and waits for a pass in progress, which
 * stops between prune batches.
 */
export class Housekeeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly abort = new AbortController();
  private stopped = false;

  constructor(
    private readonly port: HousekeepingPort,
    private readonly options: HousekeeperOptions = {},
  ) {
    // Checked here, so a bad value fails at start-up rather than an hour later.
    retentionCutoff(0, options.retentionDays);
  }

  /** Starts the first pass now (in the background) and the hourly ones after it. */
  start(): void {
    if (this.stopped || this.running !== undefined || this.timer !== undefined) return;
    this.kick();
  }

  /** One pass: temp files, expired tokens, then pruning when a retention period is set. */
  async runOnce(): Promise<HousekeepingReport> {
    const now = (this.options.now ?? Date.now)();
    const tempFiles = await this.port.sweepTempFiles(TEMP_FILE_MIN_AGE_MS, now);
    const replyTokens = this.port.clearExpiredReplyTokens(now);
    const cutoff = retentionCutoff(now, this.options.retentionDays);
    if (cutoff === undefined) return { tempFiles, replyTokens };
    const pruned = await this.port.pruneOlderThan(cutoff, { signal: this.abort.signal });
    return { tempFiles, replyTokens, pruned };
  }

  /** Stops the timer and waits for a pass in progress (it stops at its next batch boundary). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private kick(): void {
    this.timer = undefined;
    this.running = this.runOnce()
      .then((report) => {
        const line = describeReport(report);
        if (line) this.options.log?.(`easel: housekeeping ${line}`);
      })
      .catch((err: unknown) => {
        this.options.log?.(
          `easel: housekeeping failed (next try in an hour): ${err instanceof Error ? err.message : String(err)}`,
        );
      })
      .finally(() => {
        this.running = undefined;
        if (this.stopped) return;
        // The next pass is timed from the end of this one, so passes never overlap; unref: it keeps no
        // process alive on its own.
        this.timer = setTimeout(() => this.kick(), this.options.intervalMs ?? HOUSEKEEPING_INTERVAL_MS);
        this.timer.unref();
      });
  }
}

/** "removed 3 temp files, 12 expired reply tokens, 40 jobs (…)", or "" when nothing was removed. */
export function describeReport(report: HousekeepingReport): string {
  const parts: string[] = [];
  const count = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"}`;
  if (report.tempFiles > 0) parts.push(count(report.tempFiles, "temp file"));
  if (report.replyTokens > 0) parts.push(count(report.replyTokens, "expired reply token"));
  const p = report.pruned;
  if (p && (p.jobs > 0 || p.uploads > 0 || p.files > 0)) {
    parts.push(
      `${count(p.jobs, "old job")} (${count(p.images + p.uploads, "image row")}, ${count(p.files, "file")}, ${count(
        p.previews,
        "preview file",
      )})`,
    );
  }
  return parts.length === 0 ? "" : `removed ${parts.join(", ")}`;
}
