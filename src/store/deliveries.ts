import type Database from "better-sqlite3";
import {
  DELIVERY_KINDS,
  type Delivery,
  type DeliveryInput,
  type DeliveryKind,
  type DeliveryLog,
  type DeliveryPatch,
} from "../core/delivery.ts";
import { EaselError } from "../core/errors.ts";
import { durableWriteTransaction, guard, writeTransaction } from "./database.ts";

/** The deliveries table: the messages easel posted for each job (see core/delivery.ts for the why). */

/**
 * A stored reply token without an expiry is cleared once its row is this old: no token easel stores lives
 * longer (Discord interaction tokens 15 minutes, Slack response_urls 30), so it is certainly dead by then.
 */
export const UNDATED_REPLY_TOKEN_MAX_AGE_MS = 60 * 60_000;

/** Rows cleared per transaction, so that a first clean-up of a long history never holds the lock for long. */
const CLEAR_BATCH = 1000;

export type { Delivery, DeliveryInput, DeliveryKind, DeliveryPatch } from "../core/delivery.ts";

interface DeliveryRow {
  id: number;
  job_id: string;
  platform: string;
  kind: DeliveryKind;
  channel_id: string;
  message_id: string | null;
  thread_id: string | null;
  reply_token: string | null;
  reply_expires_at: number | null;
  created_at: number;
  updated_at: number;
}

/** The deliveries table. */
export class DeliveryStore implements DeliveryLog {
  private readonly insert: Database.Statement<unknown[], DeliveryRow>;
  private readonly byId: Database.Statement<[number], DeliveryRow>;
  private readonly byMessage: Database.Statement<[string, string, string], DeliveryRow>;
  private readonly byJob: Database.Statement<[string], DeliveryRow>;
  private readonly update: Database.Statement<unknown[], DeliveryRow>;
  private readonly clearTokens: Database.Statement<[{ now: number; undated: number; limit: number }]>;

  constructor(
    private readonly db: Database.Database,
    private readonly clock: () => number = Date.now,
  ) {
    // The same message recorded twice (a retried call after a timeout) updates the one row.
    this.insert = db.prepare(
      `INSERT INTO deliveries (job_id, platform, kind, channel_id, message_id, thread_id, reply_token,
         reply_expires_at, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (platform, channel_id, message_id) DO UPDATE SET kind = excluded.kind,
         thread_id = coalesce(excluded.thread_id, thread_id), reply_token = coalesce(excluded.reply_token, reply_token),
         reply_expires_at = coalesce(excluded.reply_expires_at, reply_expires_at), updated_at = excluded.updated_at
         WHERE job_id = excluded.job_id
       RETURNING *`,
    );
    this.byId = db.prepare("SELECT * FROM deliveries WHERE id = ?");
    this.byMessage = db.prepare(
      "SELECT * FROM deliveries WHERE platform = ? AND channel_id = ? AND message_id = ?",
    );
    this.byJob = db.prepare("SELECT * FROM deliveries WHERE job_id = ? ORDER BY id");
    this.update = db.prepare(
      `UPDATE deliveries SET message_id = ?, thread_id = ?, reply_token = ?, reply_expires_at = ?, updated_at = ?
       WHERE id = ? RETURNING *`,
    );
    // Only rows of jobs that are done with their messages: the Discord outlet reads a status row's token, dead
    // or alive, as "this status message is the interaction reply" (it then moves to a channel message instead
    // of editing or deleting the reply), so an unfinished job keeps its token until it finishes. A failed or
    // undeliverable job whose notice was not shown yet is not done: start-up posts it through the same target.
    // updated_at is left alone: it says when the message record last changed, which this does not.
    this.clearTokens = db.prepare(
      `UPDATE deliveries SET reply_token = NULL, reply_expires_at = NULL
       WHERE id IN (
         SELECT d.id FROM deliveries d
         WHERE d.reply_token IS NOT NULL
           AND (d.reply_expires_at < :now OR (d.reply_expires_at IS NULL AND d.updated_at < :undated))
           AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = d.job_id AND (j.state IN ('delivered', 'cancelled')
                       OR (j.state IN ('failed', 'undeliverable') AND j.failure_notified_at IS NOT NULL)))
         LIMIT :limit)`,
    );
  }

  /**
   * Forgets the reply tokens (Discord interaction tokens, Slack response_urls) that have expired: those whose
   * reply_expires_at is before `now`, and those stored without an expiry more than an hour ago
   * ({@link UNDATED_REPLY_TOKEN_MAX_AGE_MS}), on jobs that are finished and reported. They are credentials
   * while they live and useless after, so they should not sit in the file (and its backups) for ever.
   * Returns how many rows were cleared. Runs in batches of its own transactions.
   */
  clearExpiredReplyTokens(now = this.clock()): number {
    let cleared = 0;
    for (;;) {
      const changes = writeTransaction(this.db, "clearing expired reply tokens", () => {
        return this.clearTokens.run({
          now,
          undated: now - UNDATED_REPLY_TOKEN_MAX_AGE_MS,
          limit: CLEAR_BATCH,
        }).changes;
      });
      cleared += changes;
      if (changes < CLEAR_BATCH) return cleared;
    }
  }

  /**
   * Records a message posted (or about to be posted, without messageId) for a job. Recording the same
   * message again updates it; the same message for another job is a "conflict".
   */
  recordDelivery(input: DeliveryInput): Delivery {
    checkKind(input.kind);
    const now = input.now ?? this.clock();
    // Durable: a row recorded before a post is its delivery key, which must outlive a power loss the post
    // survives (else a restart would post again without looking); one recorded after names the message.
    return durableWriteTransaction(this.db, `recording a ${input.kind} message of job ${input.jobId}`, () => {
      const row = this.insert.get(
        input.jobId,
        input.platform,
        input.kind,
        input.channelId,
        input.messageId ?? null,
        input.threadId ?? null,
        input.replyToken ?? null,
        input.replyExpiresAt ?? null,
        now,
        now,
      );
      if (row === undefined) {
        throw new EaselError(
          "conflict",
          `message ${input.messageId} in ${input.platform} channel ${input.channelId} is already recorded for another job`,
        );
      }
      return toDelivery(row);
    });
  }

  /** Changes a recorded delivery (the message id once the post returned, a new thread, an expired token). */
  updateDelivery(id: number, patch: DeliveryPatch): Delivery {
    const now = patch.now ?? this.clock();
    return durableWriteTransaction(this.db, `updating delivery ${id}`, () => {
      const row = this.byId.get(id);
      if (row === undefined) throw new EaselError("not_found", `delivery ${id} does not exist`);
      const pick = <V>(value: V | null | undefined, old: V | null): V | null =>
        value === undefined ? old : value;
      const updated = this.update.get(
        patch.messageId ?? row.message_id,
        pick(patch.threadId, row.thread_id),
        pick(patch.replyToken, row.reply_token),
        pick(patch.replyExpiresAt, row.reply_expires_at),
        now,
        id,
      );
      if (updated === undefined) throw new EaselError("not_found", `delivery ${id} does not exist`);
      return toDelivery(updated);
    });
  }

  /** The messages posted for a job (optionally of one kind), oldest first. */
  deliveriesForJob(jobId: string, kind?: DeliveryKind): Delivery[] {
    const rows = guard(`listing messages of job ${jobId}`, () => this.byJob.all(jobId));
    return rows.filter((row) => kind === undefined || row.kind === kind).map(toDelivery);
  }

  /** The delivery of a platform message (a button press names its message): which job it shows. */
  findDeliveryByMessage(platform: string, channelId: string, messageId: string): Delivery | undefined {
    const row = guard(`finding message ${messageId}`, () =>
      this.byMessage.get(platform, channelId, messageId),
    );
    return row === undefined ? undefined : toDelivery(row);
  }
}

function checkKind(kind: string): void {
  if (!(DELIVERY_KINDS as readonly string[]).includes(kind)) {
    throw new EaselError(
      "invalid_argument",
      `unknown delivery kind "${kind}"; kinds: ${DELIVERY_KINDS.join(", ")}`,
    );
  }
}

function toDelivery(row: DeliveryRow): Delivery {
  const delivery: Delivery = {
    id: row.id,
    jobId: row.job_id,
    platform: row.platform,
    kind: row.kind,
    channelId: row.channel_id,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
  if (row.message_id !== null) delivery.messageId = row.message_id;
  if (row.thread_id !== null) delivery.threadId = row.thread_id;
  if (row.reply_token !== null) delivery.replyToken = row.reply_token;
  if (row.reply_expires_at !== null) delivery.replyExpiresAt = row.reply_expires_at;
  return delivery;
}
