import { webApi } from "@slack/bolt";
import type { Delivery, DeliveryInput, DeliveryLog } from "../../core/delivery.ts";
import { deliverOnce, type KeyedOutcome, lookupFrom } from "../../core/keyed-delivery.ts";
import type { SlackMessage } from "./blocks.ts";
import { classify } from "./errors.ts";
import { slackLogger } from "./logger.ts";

/**
 * Slack's two non-idempotent calls on core's keyed path (core/keyed-delivery.ts): a message carries its
 * delivery key in its metadata and is looked for in the channel's history; an upload carries it in its files'
 * names (their titles, which Slack shows, stay as easel named them) and is looked for in its thread, or in the
 * channel's history when it has none. The calls go through a client that never retries on its own (a retry
 * after a lost answer would post twice); the lookups, which only read, through the retrying one. Without the
 * history scopes a lookup cannot be made, and the post is made again (said in the log).
 */

/** The metadata event type easel's messages carry their delivery key in. */
export const DELIVERY_EVENT_TYPE = "easel_delivery";
/** How many messages one lookup reads (one page). */
const LOOKUP_LIMIT = 200;

/** A file to upload: its bytes and the name easel gives it. */
export interface UploadFile {
  filename: string;
  bytes: Uint8Array;
}

/** Whether to take over a row an earlier attempt left without an id (see core/keyed-delivery.ts). */
export interface KeyedPostOptions {
  resume: boolean;
}

/** A post's delivery row as Slack's posts record it. */
export type SlackDelivery = Omit<DeliveryInput, "platform">;

export class KeyedPosts {
  constructor(
    /** For lookups: reads, which may be retried. */
    private readonly client: webApi.WebClient,
    /** For posts: it must not retry on its own. */
    private readonly once: webApi.WebClient,
    private readonly deliveries: DeliveryLog,
    private readonly log: (line: string) => void,
  ) {}

  /** chat.postMessage in `input.channelId`, once by its delivery key; answers the message's ts. */
  message(input: SlackDelivery, message: SlackMessage, options: KeyedPostOptions): Promise<KeyedOutcome> {
    return deliverOnce(
      this.deliveries,
      { ...input, platform: "slack" },
      {
        make: async (key, row) => {
          const posted = await this.once.chat.postMessage({
            channel: row.channelId,
            text: message.text,
            blocks: message.blocks,
            unfurl_links: false,
            unfurl_media: false,
            metadata: { event_type: DELIVERY_EVENT_TYPE, event_payload: { key } },
          });
          if (!posted.ts) throw new Error("Slack did not say which message it posted");
          return posted.ts;
        },
        find: (key, row) => this.findMessage(key, row),
        classify,
      },
      { ...options, log: this.log },
    );
  }

  /**
   * files.uploadV2 into `input.channelId` (in the thread `input.threadId` when given) with `comment`, once by
   * its delivery key; answers the first file's id.
   */
  upload(
    input: SlackDelivery,
    files: readonly UploadFile[],
    comment: string,
    options: KeyedPostOptions,
  ): Promise<KeyedOutcome> {
    return deliverOnce(
      this.deliveries,
      { ...input, platform: "slack" },
      {
        make: async (key, row) => {
          const answer = (await this.once.files.uploadV2({
            channel_id: row.channelId,
            ...(row.threadId ? { thread_ts: row.threadId } : {}),
            initial_comment: comment,
            file_uploads: files.map((f) => ({
              file: Buffer.from(f.bytes),
              filename: keyedName(f.filename, key),
              title: f.filename,
            })),
          })) as { files?: { files?: { id?: string }[] }[] };
          return answer.files?.[0]?.files?.[0]?.id ?? `upload:${key}`;
        },
        find: (key, row) => this.findUpload(key, row),
        classify,
      },
      { ...options, log: this.log },
    );
  }

  /** The ts of the channel message carrying `key` in its metadata, if Slack has it. */
  private async findMessage(key: string, row: Delivery): Promise<string | undefined> {
    const answer = await this.client.conversations.history({
      channel: row.channelId,
      oldest: oldest(row),
      limit: LOOKUP_LIMIT,
      include_all_metadata: true,
    });
    return answer.messages?.find((m) => metadataKey(m) === key)?.ts;
  }

  /** The first file id of the message whose files carry `key` in their names, if Slack has it. */
  private async findUpload(key: string, row: Delivery): Promise<string | undefined> {
    const answer = row.threadId
      ? await this.client.conversations.replies({
          channel: row.channelId,
          ts: row.threadId,
          limit: LOOKUP_LIMIT,
        })
      : await this.client.conversations.history({
          channel: row.channelId,
          oldest: oldest(row),
          limit: LOOKUP_LIMIT,
        });
    const message = answer.messages?.find((m) => m.files?.some((f) => f.name?.includes(key)));
    return message?.files?.[0]?.id;
  }
}

/** A client like `client` that never retries on its own, for the calls a retry would make twice. */
export function noRetryClient(client: webApi.WebClient, log: (line: string) => void): webApi.WebClient {
  return new webApi.WebClient(client.token, {
    slackApiUrl: client.slackApiUrl,
    retryConfig: { retries: 0 },
    logger: slackLogger(log, undefined, "web-api"),
  });
}

/**
 * `easel-k3x9a2b7cd-grid.png` with key K → `K.easel-k3x9a2b7cd-grid.png`: the key first, so that the name still
 * ends as easel named it.
 */
function keyedName(filename: string, key: string): string {
  return `${key}.${filename}`;
}

/** The oldest ts a message with this row's key can have. */
function oldest(row: Delivery): string {
  return (lookupFrom(row) / 1000).toFixed(6);
}

/** The delivery key in a message's metadata, if easel put one there. */
function metadataKey(message: { metadata?: unknown }): unknown {
  const metadata = message.metadata as
    | { event_type?: unknown; event_payload?: { key?: unknown } }
    | undefined;
  return metadata?.event_type === DELIVERY_EVENT_TYPE ? metadata.event_payload?.key : undefined;
}
