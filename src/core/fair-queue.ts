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

/** Waiting jobs grouped as workspace → user → FIFO list (what the selection walks). */
type Groups = Map<string, Map<string, Waiting[]>>;

/** One fair queue (one per backend). */
export class FairQueue {
  private readonly waiting = new Map<string, Waiting>();
  private readonly servedWorkspace = new Map<string, number>();
  private readonly servedUser = new Map<string, number>();
  private arrivals = 0;
  private dispatches = 0;
  /** The predicted order, kept until the queue changes (positions are read far more often than changed). */
  private cachedOrder: QueuedEntry[] | undefined;

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
    this.cachedOrder = undefined;
  }

  /** Takes the next job to start and records whom it served. */
  shift(): QueuedEntry | undefined {
    const next = this.order()[0];
    if (!next) return undefined;
    this.waiting.delete(next.jobId);
    const mark = this.dispatches++;
    remember(this.servedWorkspace, next.workspaceId, mark);
    remember(this.servedUser, userKey(next), mark);
    this.cachedOrder = undefined;
    return next;
  }

  /** Removes a waiting job (cancelled); true if it was waiting. */
  remove(jobId: string): boolean {
    const removed = this.waiting.delete(jobId);
    if (removed) this.cachedOrder = undefined;
    return removed;
  }

  /** Every waiting job in the order it would start if nothing else arrived (position 1 first). */
  order(): QueuedEntry[] {
    if (this.cachedOrder === undefined) this.cachedOrder = this.predict();
    return this.cachedOrder;
  }

  /** Simulates the selection: O(jobs × (workspaces + users of the chosen workspace)). */
  private predict(): QueuedEntry[] {
    const groups: Groups = new Map();
    // A Map iterates in insertion order, which is arrival (seq) order.
    for (const w of this.waiting.values()) {
      let users = groups.get(w.workspaceId);
      if (!users) {
        users = new Map();
        groups.set(w.workspaceId, users);
      }
      const key = userKey(w);
      const jobs = users.get(key);
      if (jobs) jobs.push(w);
      else users.set(key, [w]);
    }
    const workspaceMark = new Map(this.servedWorkspace);
    const userMark = new Map(this.servedUser);
    const out: QueuedEntry[] = [];
    let mark = this.dispatches;
    while (groups.size > 0) {
      const [workspaceId, users] = leastServed(groups, workspaceMark, (u) => firstSeq(u));
      const [key, jobs] = leastServed(users, userMark, (j) => (j[0] as Waiting).seq);
      const next = jobs.shift() as Waiting;
      if (jobs.length === 0) users.delete(key);
      if (users.size === 0) groups.delete(workspaceId);
      workspaceMark.set(workspaceId, mark);
      userMark.set(key, mark);
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

function firstSeq(users: Map<string, Waiting[]>): number {
  let min = Number.POSITIVE_INFINITY;
  for (const jobs of users.values()) min = Math.min(min, (jobs[0] as Waiting).seq);
  return min;
}

/** The entry served longest ago (never served first), ties broken by the oldest waiting job. */
function leastServed<T>(
  entries: Map<string, T>,
  marks: ReadonlyMap<string, number>,
  oldest: (value: T) => number,
): [string, T] {
  let best: [string, T] | undefined;
  let bestMark = 0;
  let bestSeq = 0;
  for (const entry of entries) {
    const mark = marks.get(entry[0]) ?? -1;
    const seq = oldest(entry[1]);
    if (best === undefined || mark < bestMark || (mark === bestMark && seq < bestSeq)) {
      best = entry;
      bestMark = mark;
      bestSeq = seq;
    }
  }
  return best as [string, T];
}
