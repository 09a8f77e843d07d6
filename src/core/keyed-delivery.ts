import { type Delivery, type DeliveryInput, type DeliveryLog, deliveryKey } from "./delivery.ts";
import { DeliveryError } from "./delivery-error.ts";
import { errorText } from "./platform-errors.ts";

/**
 * The one path every non-idempotent post takes, on every platform (DESIGN: "every effect that is not idempotent
 * carries a delivery key written durably before it, and is looked up on the platform before it is repeated").
 * The row is recorded first (its id makes the key); the post carries the key (a Discord nonce, Slack message
 * metadata or file names); after a transient error, and before trying again a row an earlier attempt left
 * without a message id (its answer was lost, or the process died), the platform is asked whether the post
 * happened. Adapters give only the two SDK calls: make the post, and look for it.
 */

/** A platform's side of one keyed post. */
export interface KeyedPost {
  /** Makes the post carrying `key`; answers the platform's id for it (message id, ts, file id). */
  make(key: string, row: Delivery): Promise<string>;
  /** The id of the post carrying `key`, if the platform has it; throws when it cannot look (no scope, no access). */
  find(key: string, row: Delivery): Promise<string | undefined>;
  /** The SDK's error as the delivery machine's (permanent: the post cannot have happened, and nothing is looked up). */
  classify(err: unknown): DeliveryError;
}

export interface KeyedDeliveryOptions {
  /**
   * Take over a row of the same job, kind and channel that an earlier attempt left without a message id (a retried
   * result, an announcement after a restart). Off for posts that are each new (every U press posts its image).
   */
  resume: boolean;
  /**
   * Which rows left without an id are this path's posts, when a platform also records others of the kind
   * (Discord's interaction reply, recorded before its defer, is edited, never posted again). Default: all.
   */
  resumable?: (row: Delivery) => boolean;
  /** Operator log lines: a lookup that could not be made is said (the post may then show twice). */
  log: (line: string) => void;
}

/** How far before its row was recorded a keyed post may show on the platform (clocks differ). */
const LOOKUP_MARGIN_MS = 60_000;

/** The earliest time (ms) a post with this row's key can carry on the platform: where a lookup starts. */
export function lookupFrom(row: Pick<Delivery, "createdAt">): number {
  return Math.max(0, row.createdAt - LOOKUP_MARGIN_MS);
}

/** How a keyed post ended: its row with the platform's id, and whether it was found rather than made. */
export interface KeyedOutcome {
  row: Delivery & { messageId: string };
  found: boolean;
}

/** Posts `post` once per delivery key; see the module comment. */
export async function deliverOnce(
  deliveries: DeliveryLog,
  input: DeliveryInput,
  post: KeyedPost,
  options: KeyedDeliveryOptions,
): Promise<KeyedOutcome> {
  const done = (row: Delivery, messageId: string, found: boolean): KeyedOutcome => ({
    row: { ...deliveries.updateDelivery(row.id, { messageId }), messageId },
    found,
  });
  const look = async (row: Delivery, when: string): Promise<string | undefined> => {
    try {
      return await post.find(deliveryKey(row), row);
    } catch (err) {
      options.log(
        `easel: could not look for job ${row.jobId}'s ${row.kind} post ${when} (${describe(err)}); it may show twice`,
      );
      return undefined;
    }
  };
  let row = options.resume
    ? deliveries
        .deliveriesForJob(input.jobId, input.kind)
        .find(
          (d) =>
            d.messageId === undefined && d.channelId === input.channelId && (options.resumable?.(d) ?? true),
        )
    : undefined;
  if (row) {
    const found = await look(row, "before posting it again");
    if (found !== undefined) return done(row, found, true);
  } else {
    row = deliveries.recordDelivery(input);
  }
  try {
    return done(row, await post.make(deliveryKey(row), row), false);
  } catch (err) {
    const refused = post.classify(err);
    if (!refused.permanent) {
      const found = await look(row, "after an error");
      if (found !== undefined) return done(row, found, true);
    }
    throw refused;
  }
}

/** The SDK's own error behind a classified one. */
function describe(err: unknown): string {
  return errorText(err instanceof DeliveryError && err.cause !== undefined ? err.cause : err);
}
