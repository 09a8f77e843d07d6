import { isPermanentDeliveryError } from "./delivery-error.ts";
import type { Job } from "./job.ts";
import { BOT_MESSAGES } from "./messages.ts";
import type { MessageModel } from "./presenter.ts";

/**
 * The delivery state machine's rules: rendered → delivering (each attempt counted on the job, the first one's
 * time kept) → delivered, or undeliverable when the platform refused for good (a permanent DeliveryError), or
 * after `maxAttempts` attempts, or once the first attempt is `maxAgeMs` old. Between attempts the wait grows
 * fourfold from `retryDelayMs` up to `maxRetryDelayMs`, so a platform outage of an hour is ridden out without
 * hammering it (Discord bans an IP after 10,000 refused requests in 10 minutes). The relay (core/relay.ts) runs
 * the machine; the engine keeps its states; outlets only say whether an error is permanent.
 */

export interface DeliveryPolicy {
  /** Attempts before a result is given up (default 5). */
  maxAttempts: number;
  /** Milliseconds after the first attempt when a result is given up at its next failure (default 24 h). */
  maxAgeMs: number;
  /** Wait before the second attempt; each later wait is four times the one before (default 5 s). */
  retryDelayMs: number;
  /** The longest wait between two attempts (default 1 h). */
  maxRetryDelayMs: number;
}

export const DEFAULT_DELIVERY_POLICY: Readonly<DeliveryPolicy> = {
  maxAttempts: 5,
  maxAgeMs: 24 * 60 * 60_000,
  retryDelayMs: 5_000,
  maxRetryDelayMs: 60 * 60_000,
};

/** What to do after a failed attempt. */
export type DeliveryVerdict =
  | { kind: "retry"; delayMs: number }
  | { kind: "give_up"; why: "permanent" | "attempts" | "age" };

/** The verdict on `job` (as stored after its attempt began) whose attempt failed with `err` at `now`. */
export function afterFailedAttempt(
  job: Job,
  err: unknown,
  policy: DeliveryPolicy,
  now: number,
): DeliveryVerdict {
  if (isPermanentDeliveryError(err)) return { kind: "give_up", why: "permanent" };
  const attempts = job.deliveryAttempts ?? 1;
  if (attempts >= policy.maxAttempts) return { kind: "give_up", why: "attempts" };
  // Age is checked only after an attempt failed: a start after a long downtime still tries once.
  if (now - (job.deliveringSince ?? now) >= policy.maxAgeMs) return { kind: "give_up", why: "age" };
  const delayMs = Math.min(policy.maxRetryDelayMs, policy.retryDelayMs * 4 ** (attempts - 1));
  return { kind: "retry", delayMs };
}

/** The requester's notice that their result could not be posted (a DM, or an ephemeral where there is one). */
export function presentUndeliverable(job: Job, why: string): MessageModel {
  const { channelId, userId } = job.request.requester;
  return {
    content: `<@${userId}> ${BOT_MESSAGES.undeliverable(`<#${channelId}>`, job.id, why)}`,
    title: job.request.prompt.slice(0, 256) || "(empty prompt)",
    fields: [],
    images: [],
    buttons: [],
    footer: `Job ${job.id}`,
    tone: "error",
  };
}
