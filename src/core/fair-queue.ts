/**
 * The order in which queued jobs start: fair across workspaces (guilds / Slack teams) and, within a workspace,
 * across users; each user's own jobs first-in first-out. The next job comes from the workspace, then the user,
 * served least recently (never served counts as longest ago; ties go to the oldest waiting job). So a member
 * who queues ten prompts delays a newcomer by at most one job, and so does one busy server.
 */

/** What the queue needs to know about a waiting job. */
export interface QueuedEntry {
  jobId: string;
  workspaceId: string;
  userId: string;
}

interface Waiting extends QueuedEntry {
  /** Arrival order, for FIFO within a user and for ties. */
  seq: number;
}

/** Remembered "last served" marks are dropped beyond this many, oldest first (memory bound). */
const MAX_REMEMBERED = 10_000;

/** One fair queue (one per backend). */
export class FairQueue {
  private readonly waiting = new Map<string, Waiting>();
  private readonly servedWorkspace = new Map<string, number>();
  private readonly servedUser = new Map<string, number>();
  private arrivals = 0;
  private dispatches = 0;

  /** Jobs waiting. */
  get size(): number {
    return this.waiting.size;
  }

  has(jobId: string): boolean {
    return this.waiting.has(jobId);
  }

  /** Adds a job behind its user's earlier jobs. */
  push(entry: QueuedEntry): void {
    if (this.waiting.has(entry.jobId)) return;
    this.waiting.set(entry.jobId, { ...entry, seq: this.arrivals++ });
  }

  /** Takes the next job to start and records whom it served. */
  shift(): QueuedEntry | undefined {
    const next = pickNext([...this.waiting.values()], this.servedWorkspace, this.servedUser);
    if (!next) return undefined;
    this.waiting.delete(next.jobId);
    const mark = this.dispatches++;
    remember(this.servedWorkspace, next.workspaceId, mark);
    remember(this.servedUser, userKey(next), mark);
    return { jobId: next.jobId, workspaceId: next.workspaceId, userId: next.userId };
  }

  /** Removes a waiting job (cancelled); true if it was waiting. */
  remove(jobId: string): boolean {
    return this.waiting.delete(jobId);
  }

  /** Every waiting job in the order it would start if nothing else arrived (position 1 first). */
  order(): QueuedEntry[] {
    const pending = [...this.waiting.values()];
    const workspaces = new Map(this.servedWorkspace);
    const users = new Map(this.servedUser);
    const out: QueuedEntry[] = [];
    let mark = this.dispatches;
    while (pending.length > 0) {
      const next = pickNext(pending, workspaces, users) as Waiting;
      pending.splice(pending.indexOf(next), 1);
      workspaces.set(next.workspaceId, mark);
      users.set(userKey(next), mark);
      mark++;
      out.push({ jobId: next.jobId, workspaceId: next.workspaceId, userId: next.userId });
    }
    return out;
  }
}

const userKey = (e: QueuedEntry) => `${e.workspaceId}\u0000${e.userId}`;

function remember(map: Map<string, number>, key: string, mark: number): void {
  map.delete(key);
  map.set(key, mark);
  if (map.size > MAX_REMEMBERED) map.delete(map.keys().next().value as string);
}

/** The least recently served workspace, then user within it, then that user's oldest job. */
function pickNext(
  pending: readonly Waiting[],
  workspaces: ReadonlyMap<string, number>,
  users: ReadonlyMap<string, number>,
): Waiting | undefined {
  let best: Waiting | undefined;
  let bestKey: [number, number, number] | undefined;
  for (const w of pending) {
    const key: [number, number, number] = [
      workspaces.get(w.workspaceId) ?? -1,
      users.get(userKey(w)) ?? -1,
      w.seq,
    ];
    if (bestKey === undefined || compare(key, bestKey) < 0) {
      best = w;
      bestKey = key;
    }
  }
  return best;
}

function compare(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return 0;
}
