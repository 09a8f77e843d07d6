import { randomBytes } from "node:crypto";
import type Database from "better-sqlite3";
import { EaselError } from "../core/errors.ts";
import { JOB_STATES, JOB_TRANSITIONS, type Job, type JobState } from "../core/job.ts";
import type { BackendName, GenerationRequest, Requester } from "../core/request.ts";
import { durableWriteTransaction, guard, StatementCache, whereClause, writeTransaction } from "./database.ts";

/**
 * The jobs table: one row per job, created before the user is acknowledged, moved through JOB_TRANSITIONS
 * inside transactions so that two parties (cancel and completion, two processes) cannot both win.
 */

/** A job as stored, with its FIFO sequence number. */
export interface JobRecord extends Job {
  /** Strictly increasing in creation order and never reused: the queue's FIFO order. */
  seq: number;
  updatedAt: number;
  /** When the requester was shown the failure (failed and undeliverable jobs only); absent until then. */
  failureNotifiedAt?: number;
}

/** What createJob needs. */
export interface CreateJobInput {
  /** The platform event (Discord interaction id, Slack trigger id) that asked for the job. */
  eventId: string;
  request: GenerationRequest;
  now?: number;
}

/**
 * Fields a transition may set besides the state. Left out, attempts and timestamps follow the defaults
 * described on {@link JobStore.transition}; null clears an error field.
 */
export interface TransitionOptions {
  /** Refuse unless the job is in one of these states now (compare-and-set for racing callers). */
  from?: readonly JobState[];
  now?: number;
  attempts?: number;
  startedAt?: number;
  renderedAt?: number;
  finishedAt?: number;
  errorCode?: string | null;
  errorMessage?: string | null;
  /** The backend's estimated cost in US dollars (set with → rendered); left out keeps the stored value. */
  costUsd?: number;
  /** Delivery attempts so far and when the first began (the delivery machine's); left out keeps them. */
  deliveryAttempts?: number;
  deliveringSince?: number;
}

/** Filters for listJobs / countJobs; absent fields do not filter. */
export interface JobFilter {
  states?: readonly JobState[];
  platform?: Requester["platform"];
  userId?: string;
  workspaceId?: string;
  channelId?: string;
  backend?: BackendName;
  /** At most this many rows (listJobs only). */
  limit?: number;
}

/** Unfinished jobs at start-up, each list in original (seq) order. */
export interface RecoverySnapshot {
  /** Waiting to run: run them again in this order. */
  queued: JobRecord[];
  /** Were rendering when the process died: retry (back to queued) or fail with a notice. */
  running: JobRecord[];
  /** Images saved but not delivered: deliver without rendering again. */
  rendered: JobRecord[];
}

/**
 * Crockford's base32 alphabet in lower case: no i, l, o or u, so ids survive being read aloud or typed into
 * `/cancel`, and they are safe in URLs, file names and Discord custom_ids without escaping.
 */
const ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz";
/** 10 characters = 50 random bits: a collision is unlikely for millions of jobs, and createJob retries one. */
export const JOB_ID_LENGTH = 10;

/** A fresh random job id (10 lower-case base32 characters from the OS CSPRNG). */
export function newJobId(): string {
  const bytes = randomBytes(JOB_ID_LENGTH);
  let id = "";
  // 256 is a multiple of 32, so masking keeps every character equally likely.
  for (const byte of bytes) id += ID_ALPHABET[byte & 31];
  return id;
}

interface JobRow {
  seq: number;
  id: string;
  event_id: string;
  request: string;
  state: JobState;
  attempts: number;
  created_at: number;
  updated_at: number;
  started_at: number | null;
  rendered_at: number | null;
  finished_at: number | null;
  error_code: string | null;
  error_message: string | null;
  failure_notified_at: number | null;
  cost_usd: number | null;
  delivery_attempts: number;
  delivering_since: number | null;
}

/** The jobs table's operations. */
export class JobStore {
  private readonly insert: Database.Statement<unknown[]>;
  private readonly byId: Database.Statement<[string], JobRow>;
  private readonly byEventId: Database.Statement<[string], JobRow>;
  private readonly update: Database.Statement<unknown[], JobRow>;
  private readonly unnotified: Database.Statement<[], JobRow>;
  private readonly markNotified: Database.Statement<[number, number, string], JobRow>;
  private readonly bumpAttempts: Database.Statement<[number, string], { attempts: number }>;
  /** Filtered queries are built from the set of filters used; there are few combinations, so cache them. */
  private readonly queries: StatementCache;

  constructor(
    private readonly db: Database.Database,
    private readonly clock: () => number = Date.now,
  ) {
    this.queries = new StatementCache(db);
    this.insert = db.prepare(
      `INSERT INTO jobs (id, event_id, request, state, attempts, platform, workspace_id, channel_id, user_id,
         backend, model, created_at, updated_at)
       VALUES (?, ?, ?, 'queued', 0, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT DO NOTHING`,
    );
    this.byId = db.prepare("SELECT * FROM jobs WHERE id = ?");
    this.byEventId = db.prepare("SELECT * FROM jobs WHERE event_id = ?");
    this.update = db.prepare(
      `UPDATE jobs SET state = ?, updated_at = ?, attempts = ?, started_at = ?, rendered_at = ?,
         finished_at = ?, error_code = ?, error_message = ?, cost_usd = ?, delivery_attempts = ?,
         delivering_since = ?
       WHERE id = ? RETURNING *`,
    );
    this.unnotified = db.prepare(
      // An undeliverable result is told to its requester like a failure (core/relay.ts), once.
      "SELECT * FROM jobs WHERE state IN ('failed', 'undeliverable') AND failure_notified_at IS NULL ORDER BY seq",
    );
    this.markNotified = db.prepare(
      `UPDATE jobs SET failure_notified_at = ?, updated_at = ? WHERE id = ? AND state IN ('failed', 'undeliverable')
       RETURNING *`,
    );
    this.bumpAttempts = db.prepare(
      "UPDATE jobs SET attempts = attempts + 1, updated_at = ? WHERE id = ? RETURNING attempts",
    );
  }

  /**
   * Creates the job for a platform event, or returns the one that event already created (created=false):
   * a redelivered interaction makes one job. The first request wins; a later one with the same eventId is
   * ignored.
   */
  createJob(input: CreateJobInput): { job: JobRecord; created: boolean } {
    const now = input.now ?? this.clock();
    const { request } = input;
    const requester = request.requester;
    const json = JSON.stringify(request);
    return durableWriteTransaction(this.db, `creating the job for event ${input.eventId}`, () => {
      // ON CONFLICT DO NOTHING covers both unique keys: event_id (the duplicate we expect) and id (a random
      // collision, told apart below by finding no row for the event, and retried with a new id).
      for (let tries = 0; tries < 5; tries++) {
        const id = newJobId();
        const result = this.insert.run(
          id,
          input.eventId,
          json,
          requester.platform,
          requester.workspaceId,
          requester.channelId,
          requester.userId,
          request.backend,
          request.model,
          now,
          now,
        );
        const row = this.byEventId.get(input.eventId);
        if (row !== undefined) return { job: toJob(row), created: result.changes > 0 };
      }
      throw new EaselError("conflict", "could not find a free job id after 5 tries");
    });
  }

  /** The job with this id, or undefined. */
  getJob(id: string): JobRecord | undefined {
    const row = guard(`reading job ${id}`, () => this.byId.get(id));
    return row === undefined ? undefined : toJob(row);
  }

  /** The job a platform event created, or undefined. */
  getJobByEventId(eventId: string): JobRecord | undefined {
    const row = guard(`reading the job of event ${eventId}`, () => this.byEventId.get(eventId));
    return row === undefined ? undefined : toJob(row);
  }

  /**
   * Moves a job to `to`, atomically checking JOB_TRANSITIONS (and `from`, when given) against the state it
   * has now; refusal is EaselError "conflict" naming both states, e.g. a cancel that lost to completion.
   * Unless the options say otherwise: → running counts an attempt and sets started_at (the current
   * attempt's start); → rendered sets rendered_at; → a final state sets finished_at.
   */
  transition(id: string, to: JobState, options: TransitionOptions = {}): JobRecord {
    const now = options.now ?? this.clock();
    return writeTransaction(this.db, `moving job ${id} to ${to}`, () => {
      const row = this.byId.get(id);
      if (row === undefined) throw new EaselError("not_found", `job ${id} does not exist`);
      const current = row.state;
      if (options.from !== undefined && !options.from.includes(current)) {
        throw new EaselError(
          "conflict",
          `job ${id} is ${current}, not ${options.from.join(" or ")}, so it cannot move to ${to}`,
        );
      }
      if (!JOB_TRANSITIONS[current].includes(to)) {
        const allowed = JOB_TRANSITIONS[current];
        throw new EaselError(
          "conflict",
          `job ${id} cannot move from ${current} to ${to} (from ${current} it may move to ${
            allowed.length === 0 ? "nothing: it is final" : allowed.join(", ")
          })`,
        );
      }
      if (options.attempts !== undefined && !(Number.isInteger(options.attempts) && options.attempts >= 0)) {
        throw new EaselError(
          "invalid_argument",
          `attempts must be a whole number >= 0, not ${options.attempts}`,
        );
      }
      if (options.costUsd !== undefined && !(Number.isFinite(options.costUsd) && options.costUsd >= 0)) {
        throw new EaselError("invalid_argument", `costUsd must be a number >= 0, not ${options.costUsd}`);
      }
      const final = JOB_TRANSITIONS[to].length === 0;
      const updated = this.update.get(
        to,
        now,
        options.attempts ?? (to === "running" ? row.attempts + 1 : row.attempts),
        options.startedAt ?? (to === "running" ? now : row.started_at),
        options.renderedAt ?? (to === "rendered" ? now : row.rendered_at),
        options.finishedAt ?? (final ? now : row.finished_at),
        options.errorCode === undefined ? row.error_code : options.errorCode,
        options.errorMessage === undefined ? row.error_message : options.errorMessage,
        options.costUsd ?? row.cost_usd,
        options.deliveryAttempts ?? row.delivery_attempts,
        options.deliveringSince ?? row.delivering_since,
        id,
      );
      if (updated === undefined) throw new EaselError("not_found", `job ${id} does not exist`);
      return toJob(updated);
    });
  }

  /**
   * Counts one more attempt without a state change (a move to running already counts one; this is for
   * attempts the engine counts otherwise). Returns the new count.
   */
  incrementAttempts(id: string, now?: number): number {
    const at = now ?? this.clock();
    return writeTransaction(this.db, `counting an attempt of job ${id}`, () => {
      const row = this.bumpAttempts.get(at, id);
      if (row === undefined) throw new EaselError("not_found", `job ${id} does not exist`);
      return row.attempts;
    });
  }

  /** Failed jobs whose failure has not been shown to the requester yet (a crash came in between), in order. */
  listUnnotifiedFailures(): JobRecord[] {
    return guard("listing unreported failures", () => this.unnotified.all()).map(toJob);
  }

  /** Records that the requester was told about the failure; false when the job is not a failed job. */
  markFailureNotified(id: string, now?: number): boolean {
    const at = now ?? this.clock();
    return writeTransaction(this.db, `marking the failure of job ${id} as shown`, () => {
      return this.markNotified.get(at, at, id) !== undefined;
    });
  }

  /** Jobs matching the filter in FIFO (seq) order. */
  listJobs(filter: JobFilter = {}): JobRecord[] {
    const { sql, params } = jobWhere(filter);
    const limit = filter.limit === undefined ? "" : ` LIMIT ${Math.max(0, Math.floor(filter.limit))}`;
    const statement = this.queries.get(`SELECT * FROM jobs${sql} ORDER BY seq${limit}`);
    return guard("listing jobs", () => (statement.all(...params) as JobRow[]).map(toJob));
  }

  /** How many jobs match the filter (all states unless `states` is given). */
  countJobs(filter: Omit<JobFilter, "limit"> = {}): number {
    const { sql, params } = jobWhere(filter);
    const statement = this.queries.get(`SELECT count(*) AS n FROM jobs${sql}`);
    return guard("counting jobs", () => (statement.get(...params) as { n: number }).n);
  }

  /** How many jobs are waiting (state queued) for a user, a workspace, or everyone: the queue limits. */
  countQueued(filter: Omit<JobFilter, "limit" | "states"> = {}): number {
    return this.countJobs({ ...filter, states: ["queued"] });
  }

  /** The unfinished jobs the engine must deal with at start-up, in their original order. */
  listForRecovery(): RecoverySnapshot {
    const jobs = this.listJobs({ states: ["queued", "running", "rendered"] });
    return {
      queued: jobs.filter((job) => job.state === "queued"),
      running: jobs.filter((job) => job.state === "running"),
      rendered: jobs.filter((job) => job.state === "rendered"),
    };
  }
}

function jobWhere(filter: Omit<JobFilter, "limit">): { sql: string; params: unknown[] } {
  const conditions: string[] = [];
  const params: unknown[] = [];
  if (filter.states !== undefined) {
    for (const state of filter.states) {
      if (!(JOB_STATES as readonly string[]).includes(state))
        throw new EaselError("invalid_argument", `unknown job state "${state}"`);
    }
    // An empty list matches nothing, as it says.
    conditions.push(
      filter.states.length === 0 ? "0" : `state IN (${filter.states.map(() => "?").join(", ")})`,
    );
    params.push(...filter.states);
  }
  return whereClause(filter, JOB_FILTERS, conditions, params);
}

/** The conditions a JobFilter's plain fields stand for. */
const JOB_FILTERS: readonly (readonly [Exclude<keyof JobFilter, "states" | "limit">, string])[] = [
  ["platform", "platform = ?"],
  ["userId", "user_id = ?"],
  ["workspaceId", "workspace_id = ?"],
  ["channelId", "channel_id = ?"],
  ["backend", "backend = ?"],
];

function toJob(row: JobRow): JobRecord {
  const job: JobRecord = {
    seq: row.seq,
    id: row.id,
    eventId: row.event_id,
    request: JSON.parse(row.request) as GenerationRequest,
    state: row.state,
    attempts: row.attempts,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
  if (row.started_at !== null) job.startedAt = row.started_at;
  if (row.rendered_at !== null) job.renderedAt = row.rendered_at;
  if (row.finished_at !== null) job.finishedAt = row.finished_at;
  if (row.error_code !== null) job.errorCode = row.error_code;
  if (row.error_message !== null) job.errorMessage = row.error_message;
  if (row.failure_notified_at !== null) job.failureNotifiedAt = row.failure_notified_at;
  if (row.cost_usd !== null) job.costUsd = row.cost_usd;
  job.deliveryAttempts = row.delivery_attempts;
  if (row.delivering_since !== null) job.deliveringSince = row.delivering_since;
  return job;
}
