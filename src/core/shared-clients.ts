/**
 * Clients an adapter makes per key (an interaction token's webhook clients) and shares between the jobs that use
 * the key (an arena's two sides share one token): each made when first asked for, and closed once the last job
 * using its key is released, or at shutdown.
 */
export class SharedClients<C, K extends string = string> {
  private readonly keys = new Map<string, { clients: Map<K, C>; jobs: Set<string> }>();

  constructor(
    private readonly make: (key: string, kind: K) => C,
    private readonly close: (client: C) => void,
  ) {}

  /** `jobId` uses `key` until it is released. */
  use(key: string, jobId: string): void {
    this.entry(key).jobs.add(jobId);
  }

  /** The client of `kind` for `key`, made on first use. */
  get(key: string, kind: K): C {
    const { clients } = this.entry(key);
    let client = clients.get(kind);
    if (client === undefined) {
      client = this.make(key, kind);
      clients.set(kind, client);
    }
    return client;
  }

  /** `jobId` is done with `key`: its clients close unless another job still uses it. */
  release(key: string, jobId: string): void {
    const entry = this.keys.get(key);
    entry?.jobs.delete(jobId);
    if (entry && entry.jobs.size > 0) return;
    this.keys.delete(key);
    for (const client of entry?.clients.values() ?? []) this.close(client);
  }

  /** Closes every client (shutdown). */
  closeAll(): void {
    for (const { clients } of this.keys.values()) for (const client of clients.values()) this.close(client);
    this.keys.clear();
  }

  private entry(key: string): { clients: Map<K, C>; jobs: Set<string> } {
    let entry = this.keys.get(key);
    if (!entry) {
      entry = { clients: new Map(), jobs: new Set() };
      this.keys.set(key, entry);
    }
    return entry;
  }
}
