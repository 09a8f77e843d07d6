/**
 * At most one run per key per interval, the latest request winning: for message edits that platforms
 * rate-limit (vote tallies every 3 s). A request inside the interval waits for its end; requests that arrive
 * meanwhile replace it, so only the newest state is sent.
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
    const wait = Math.max(0, (this.last.get(key) ?? Number.NEGATIVE_INFINITY) + this.intervalMs - this.now());
    const entry = {
      run,
      timer: setTimeout(() => {
        this.pending.delete(key);
        const at = this.now();
        this.last.set(key, at);
        entry.run().catch(this.onError);
        // Forget the key once its interval is over, so that keys (messages) do not pile up for ever.
        setTimeout(() => {
          if (this.last.get(key) === at) this.last.delete(key);
        }, this.intervalMs).unref();
      }, wait),
    };
    this.pending.set(key, entry);
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

  /** Drops whatever is waiting. */
  clear(): void {
    for (const { timer } of this.pending.values()) clearTimeout(timer);
    this.pending.clear();
  }
}
