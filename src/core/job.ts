import type { GenerationRequest } from "./request.ts";

/**
 * Jobs and their states. A job row exists before the user is acknowledged; states only move forward:
 * queued → running → rendered → delivering → delivered | undeliverable, or → failed / cancelled (from queued,
 * running or rendered). `delivering` is the delivery state machine's (src/core/relay.ts): attempts and their age
 * are counted on the job, and `undeliverable` ends a result that can never be posted (its images are kept).
 */

export const JOB_STATES = [
  "queued",
  "running",
  "rendered",
  "delivering",
  "delivered",
  "undeliverable",
  "failed",
  "cancelled",
] as const;
/** One of JOB_STATES. */
export type JobState = (typeof JOB_STATES)[number];

/** Which states each state may move to (the store refuses anything else). */
export const JOB_TRANSITIONS: Readonly<Record<JobState, readonly JobState[]>> = {
  // running → queued: a retry after a transient failure, or a restart that found the job mid-run.
  queued: ["running", "failed", "cancelled"],
  running: ["rendered", "queued", "failed", "cancelled"],
  // rendered → delivered: engine.delivered() without a beginDelivery() first (a caller that counts no attempts).
  rendered: ["delivering", "delivered", "failed", "cancelled"],
  // delivering → delivering: one more attempt (its count and the first one's time are on the job).
  delivering: ["delivering", "delivered", "undeliverable"],
  delivered: [],
  undeliverable: [],
  failed: [],
  cancelled: [],
};

/** True for states a job never leaves. */
export function isFinalState(state: JobState): boolean {
  return JOB_TRANSITIONS[state].length === 0;
}

/** A job as the store keeps it. */
export interface Job {
  id: string;
  /** The platform event that created it (Discord interaction id, Slack trigger id): unique. */
  eventId: string;
  request: GenerationRequest;
  state: JobState;
  /** Render attempts started so far. */
  attempts: number;
  createdAt: number;
  startedAt?: number;
  renderedAt?: number;
  finishedAt?: number;
  /** Error code (EaselError code) and user-facing message when failed. */
  errorCode?: string;
  errorMessage?: string;
  /** The backend's estimated cost in US dollars (BackendResult.costUsd), once rendered; absent when none. */
  costUsd?: number;
  /** Delivery attempts started so far (the delivery machine gives up after a number of them). */
  deliveryAttempts?: number;
  /** When the first delivery attempt started: the age the delivery machine gives up after. */
  deliveringSince?: number;
}
