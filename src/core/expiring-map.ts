/**
 * A map whose entries expire a fixed time after the moment each one carries, never holding more than a set
 * number: for what a platform hands out with a lifetime (Slack's response_urls, its admin lookups). Entries
 * are kept in insertion order; each `set` drops the expired ones from the front, stopping at the first that
 * still lives (each entry is dropped once, so this is O(1) per entry), and past the cap the oldest, so the map
 * holds at most the entries of the last `ttlMs` and never more than `maxEntries`. This relies on entries being
 * set in the order of their moments, which holds for anything issued before easel sees it.
 */
export class ExpiringMap<K, V> {
  readonly #entries = new Map<K, { value: V; at: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The entry for `key`, expired or not (an expired one may still be here until the next `set`). */
  get(key: K): { value: V; at: number } | undefined {
    return this.#entries.get(key);
  }

  /** The value for `key` while it lives. */
  live(key: K): V | undefined {
    const entry = this.#entries.get(key);
    return entry !== undefined && this.now() - entry.at < this.ttlMs ? entry.value : undefined;
  }

  /** Sets `key` (moved to the end) with its moment `at`, after dropping what has expired or is over the cap. */
  set(key: K, value: V, at: number = this.now()): void {
    this.#entries.delete(key);
    const now = this.now();
    for (const [old, entry] of this.#entries) {
      if (this.#entries.size < this.maxEntries && now - entry.at < this.ttlMs) break;
      this.#entries.delete(old);
    }
    this.#entries.set(key, { value, at });
  }

  has(key: K): boolean {
    return this.#entries.has(key);
  }

  /** How many entries are held: for tests and metrics. */
  get size(): number {
    return this.#entries.size;
  }
}
