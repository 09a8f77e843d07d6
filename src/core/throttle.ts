/**
 * At most one run per key per interval, the latest request winning: for message edits that platforms
 * rate-limit (vote tallies every 3 s). A request inside the interval waits for its end; requests that arrive
 * meanwhile replace it, so only the newest state is sent.
 *
 * Keys are messages, so there is no end to them: both maps are bounded. `pending` holds a key only while its
 * run waits (at most one interval). `last` only matters for one interval after a run: it is kept in run order,
 * and each run drops the expired entries from its front (each entry is dropped once, so this is O(1) per run),
 * so it holds the keys run within the last interval and no more. No entry may go earlier (an LRU cap could let
 * an edit through too soon and draw a 429), and no timer per run is needed.
 */
export class KeyedThrottle {
  private readonly last = new Map<string, number>();
  private readonly pending = new Map<string, { run: () => Promise<void>; timer: NodeJS.Timeout }>();

  constructor(
    private readonly intervalMs: number,
    private readonly onError: (err: unknown) => void,
    private readonly now: () => number = Date.now,
  ) {}

  schedule(key: string, run: () => Promise<void>): void {
    const queued = this.pending.get(key);
    if (queued) {
      queued.run = run;
      return;
    }
    const now = this.now();
    const lastRun = this.last.get(key);
    // Expiry on access: an entry whose interval is over says nothing any more.
    if (lastRun !== undefined && now - lastRun >= this.intervalMs) this.last.delete(key);
    const wait = lastRun === undefined ? 0 : Math.max(0, lastRun + this.intervalMs - now);
    const entry = {
      run,
      timer: setTimeout(() => {
        this.pending.delete(key);
        // Re-inserted, so that the map's order is the order of the runs (the oldest first).
        this.last.delete(key);
        this.last.set(key, this.now());
        this.dropExpired();
        entry.run().catch(this.onError);
      }, wait),
    };
    this.pending.set(key, entry);
  }

  /** Keys remembered (`last`) and waiting (`pending`): for tests and metrics. */
  get size(): { remembered: number; waiting: number } {
    return { remembered: this.last.size, waiting: this.pending.size };
  }

  /** Drops the entries whose interval is over; the map is in run order, so they are all at its front. */
  private dropExpired(): void {
    const now = this.now();
    for (const [key, at] of this.last) {
      if (now - at < this.intervalMs) break;
      this.last.delete(key);
    }
  }

  /** Drops what is waiting for one key (its last run still counts for the interval). */
  cancel(key: string): void {
    const queued = this.pending.get(key);
    if (!queued) return;
    clearTimeout(queued.timer);
    this.pending.delete(key);
  }

  /** Whether a run is waiting for this key. */
  waiting(key: string): boolean {
    return this.pending.has(key);
  }

  /** Drops whatever is waiting (past runs still count for their interval). */
  clear(): void {
    for (const { timer } of this.pending.values()) clearTimeout(timer);
    this.pending.clear();
  }
}
