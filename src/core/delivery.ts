/**
 * The messages easel posted for a job, by platform id, so that it can edit them later (progress, tallies),
 * map a button press back to its job, and know after a restart what was already posted (nothing twice).
 * The store keeps them (src/store/deliveries.ts); platforms reach them through `DeliveryLog`.
 *
 * Posting is two steps: record the delivery without a message id just before the platform call, then fill the
 * id in. The first row is the post's delivery key ({@link deliveryKey}), committed durably (synchronous=FULL)
 * before the call; a row still without an id after an error or a crash means "the post may or may not have
 * happened", and the outlet looks for it on the platform by its key before posting again.
 */

/**
 * What a posted message is: the status/progress message, the result, a failure notice, an announcement, the
 * private notice that a result is undeliverable, one image posted alone at full size (a U press), or "how it
 * was made" (its animation).
 */
export type DeliveryKind =
  | "status"
  | "result"
  | "failure"
  | "cancelled"
  | "announcement"
  | "notice"
  | "image"
  | "explanation";

/** Every DeliveryKind. */
export const DELIVERY_KINDS: readonly DeliveryKind[] = [
  "status",
  "result",
  "failure",
  "cancelled",
  "announcement",
  "notice",
  "image",
  "explanation",
];

const KIND_LETTERS: Readonly<Record<DeliveryKind, string>> = {
  status: "s",
  result: "r",
  failure: "f",
  cancelled: "c",
  announcement: "a",
  notice: "n",
  image: "i",
  explanation: "e",
};

/**
 * The delivery key of a recorded post: what the platform effect carries (a Discord nonce, a Slack message's
 * metadata or file name) so that, after an error or a crash, the outlet can ask the platform whether the post
 * happened before making it again. Unique per row, stable across attempts (a retry reuses the row), at most
 * 25 characters (Discord's nonce limit: a 10-character job id, a letter and the row id in base 36) and safe in
 * file names.
 */
export function deliveryKey(delivery: Pick<Delivery, "id" | "jobId" | "kind">): string {
  return `${delivery.jobId}-${KIND_LETTERS[delivery.kind]}${delivery.id.toString(36)}`;
}

/** A message easel posted for a job. */
export interface Delivery {
  id: number;
  jobId: string;
  platform: string;
  kind: DeliveryKind;
  channelId: string;
  /** Discord message id or Slack message ts; absent while the post is in flight. */
  messageId?: string;
  /** Discord thread id or Slack thread_ts the message is in. */
  threadId?: string;
  /**
   * What lets easel edit or follow up without the bot token: Discord interaction token or Slack response_url.
   * A credential while it lives: never log it.
   */
  replyToken?: string;
  /** When replyToken stops working (Discord: 15 min; Slack response_url: 30 min). */
  replyExpiresAt?: number;
  createdAt: number;
  updatedAt: number;
}

/** What recordDelivery needs. */
export interface DeliveryInput {
  jobId: string;
  platform: string;
  kind: DeliveryKind;
  channelId: string;
  messageId?: string;
  threadId?: string;
  replyToken?: string;
  replyExpiresAt?: number;
  now?: number;
}

/** Fields updateDelivery may change (null clears; the reply token is cleared once it has expired). */
export interface DeliveryPatch {
  messageId?: string;
  threadId?: string | null;
  replyToken?: string | null;
  replyExpiresAt?: number | null;
  now?: number;
}

/** The deliveries record as platforms use it (the store implements it). */
export interface DeliveryLog {
  /** Records a message posted (or about to be, without messageId); the same message again updates it. */
  recordDelivery(input: DeliveryInput): Delivery;
  updateDelivery(id: number, patch: DeliveryPatch): Delivery;
  /** The messages posted for a job (optionally of one kind), oldest first. */
  deliveriesForJob(jobId: string, kind?: DeliveryKind): Delivery[];
  findDeliveryByMessage(platform: string, channelId: string, messageId: string): Delivery | undefined;
}

/** The newest message of this kind that was really posted for a job (a recorded id), if any. */
export function latestPosted(
  log: DeliveryLog,
  jobId: string,
  kind: DeliveryKind,
): (Delivery & { messageId: string }) | undefined {
  return log
    .deliveriesForJob(jobId, kind)
    .filter((d): d is Delivery & { messageId: string } => d.messageId !== undefined)
    .at(-1);
}

/**
 * The status message an earlier process recorded for a job: the newest one posted, else a reply recorded
 * before the platform answered with its id (a crash in between), named `unnamed` (the platform's name for the
 * reply it has not named yet, Discord's "@original"), when the platform has such a name.
 */
export function recordedStatus(
  log: DeliveryLog,
  jobId: string,
  unnamed?: string,
): (Delivery & { messageId: string }) | undefined {
  const posted = latestPosted(log, jobId, "status");
  if (posted || unnamed === undefined) return posted;
  const reply = log
    .deliveriesForJob(jobId, "status")
    .filter((d) => d.messageId === undefined && d.replyToken !== undefined)
    .at(-1);
  return reply ? { ...reply, messageId: unnamed } : undefined;
}
