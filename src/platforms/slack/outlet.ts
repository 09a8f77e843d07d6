import { webApi } from "@slack/bolt";
import type { Announcer } from "../../core/ballots.ts";
import type { BotServices } from "../../core/bot-services.ts";
import { type Delivery, deliveryKey, latestPosted } from "../../core/delivery.ts";
import { DeliveryError } from "../../core/delivery-error.ts";
import type { Job } from "../../core/job.ts";
import { BOT_MESSAGES } from "../../core/messages.ts";
import type { MessageModel } from "../../core/presenter.ts";
import type { JobOutlet, OutgoingFile, StatusHandles } from "../../core/relay.ts";
import type { Ballot } from "../../core/voting.ts";
import { layoutBlocks, type SlackMessage } from "./blocks.ts";
import { RESPONSE_URL_TTL_MS, type ReplySender, type ReplyTarget } from "./replies.ts";

/**
 * Where a Slack job's messages go. Each job has one status message in its channel, posted with the bot token
 * right after the ack and edited with chat.update as the job waits and renders (the relay keeps edits to one
 * per 2 s, and owns the handle on the message: a StatusTarget, bound once chat.postMessage answered). The
 * result is uploaded with files.uploadV2 into that message's thread (the reply mentions the requester, which
 * notifies them), then the status message itself becomes the result card: settings, the prompt to rerun, and
 * the buttons. A failure turns the card into the failure, and the requester is told ephemerally (response_url
 * while it lasts, else the bot token). A result that can never be posted is told to the requester in a DM.
 *
 * Edits are idempotent; a new message and an upload are not. Each is recorded in the deliveries log before it
 * is made (durably: the row is its delivery key) and carries the key: a message in its metadata, an upload in
 * its files' names. Such calls go through a client that never retries on its own (a retry after a lost answer
 * would post twice); after an error, or when a later attempt finds the row without a message id (the answer
 * was lost, or the process died), the outlet reads the channel (conversations.history) or the thread
 * (conversations.replies) for the key, and posts only if it is not there. Without the history scopes it
 * cannot look, and posts again (said in the log).
 */

/** The metadata event type easel's messages carry their delivery key in. */
export const DELIVERY_EVENT_TYPE = "easel_delivery";
/** How far before a delivery key was recorded its message may be (clocks differ). */
const LOOKUP_MARGIN_MS = 60_000;

/** A job's status message: the relay's handle on it (its fields are this outlet's to change). */
export interface StatusTarget {
  channelId: string;
  ts: string;
  deliveryId: number;
  /** The command's response_url (ephemeral answers to the requester) and when it was issued. */
  reply?: ReplyTarget;
  /** What the message shows now (an edit to the same is skipped). */
  shown?: string;
}

/** A Slack error code (`not_in_channel`, `channel_not_found`, …) of a Web API failure, if it is one. */
export function slackErrorCode(err: unknown): string | undefined {
  const source = err instanceof DeliveryError ? err.cause : err;
  const data = (source as { data?: { error?: unknown } } | undefined)?.data;
  return typeof data?.error === "string" ? data.error : undefined;
}

/** The bot cannot post in the channel: it is not a member (a private channel it is not in is invisible). */
export function isNotInChannel(err: unknown): boolean {
  const code = slackErrorCode(err);
  return code === "not_in_channel" || code === "channel_not_found" || code === "is_archived";
}

/** Slack's answers that no retry can change, with what the requester is told. */
const PERMANENT_CODES: ReadonlyMap<string, string> = new Map([
  ["not_in_channel", BOT_MESSAGES.deliveryNotInChannel],
  ["channel_not_found", BOT_MESSAGES.deliveryChannelGone],
  ["is_archived", BOT_MESSAGES.deliveryArchived],
  ["restricted_action", BOT_MESSAGES.deliveryNoAccess],
  ["missing_scope", BOT_MESSAGES.deliveryNoAccess],
  ["account_inactive", BOT_MESSAGES.deliveryBotRemoved],
  ["token_revoked", BOT_MESSAGES.deliveryBotRemoved],
  ["invalid_auth", BOT_MESSAGES.deliveryBotRemoved],
  ["team_access_not_granted", BOT_MESSAGES.deliveryBotRemoved],
]);

/** @slack/web-api's error as the delivery machine's: permanent for the codes above, transient otherwise. */
export function classify(err: unknown): DeliveryError {
  if (err instanceof DeliveryError) return err;
  const code = slackErrorCode(err);
  const why = code === undefined ? undefined : PERMANENT_CODES.get(code);
  if (why) return new DeliveryError(why, { permanent: true, cause: err });
  const what = code ?? (err instanceof Error ? `${err.name}: ${err.message}` : String(err));
  return new DeliveryError(`Slack did not take the message (${what})`, { permanent: false, cause: err });
}

/** What the bot knows when it opens a job's status message. */
export interface OpenInput {
  channelId: string;
  /** The status model to show first. */
  model: MessageModel;
  reply?: ReplyTarget;
}

/** A job whose status message the bot is about to post: post it, or give up on it. */
export interface PendingStatus {
  /** Posts the status message and binds it; throws what Slack answered (the bot tells the member). */
  open(input: OpenInput): Promise<StatusTarget>;
  /** The message will not be posted (the job was refused or cancelled): nothing more is shown. */
  abandon(): void;
}

export interface SlackOutletOptions {
  log: (line: string) => void;
  /** The relay: the outlet hands it each job's status message. */
  handles: StatusHandles;
  /** The client for non-idempotent calls; it must not retry on its own (default: one made from `client`). */
  once?: webApi.WebClient;
}

export class SlackOutlet implements JobOutlet<StatusTarget>, Announcer {
  private readonly once: webApi.WebClient;

  constructor(
    private readonly client: webApi.WebClient,
    private readonly services: BotServices,
    private readonly replies: ReplySender,
    private readonly options: SlackOutletOptions,
  ) {
    this.once =
      options.once ??
      new webApi.WebClient(client.token, {
        slackApiUrl: client.slackApiUrl,
        retryConfig: { retries: 0 },
        logger: sinkLogger(options.log),
      });
  }

  /** A job whose status message the bot posts now (or gives up on); nothing needs announcing before. */
  opening(jobId: string): PendingStatus {
    return {
      open: async (input) => {
        try {
          const target = await this.post(jobId, input.channelId, layoutBlocks(input.model), input.reply);
          this.options.handles.bind(jobId, target);
          return target;
        } catch (err) {
          // The relay shows nothing until then; it may open one itself for a later status (not in the
          // channel: the bot cancels the job first).
          this.options.handles.unbound(jobId);
          throw err;
        }
      },
      abandon: () => this.options.handles.unbound(jobId),
    };
  }

  recorded(job: Job): StatusTarget | undefined {
    const recorded = latestPosted(this.services.deliveries, job.id, "status");
    if (!recorded) return undefined;
    const target: StatusTarget = {
      channelId: recorded.channelId,
      ts: recorded.messageId,
      deliveryId: recorded.id,
    };
    if (recorded.replyToken) {
      target.reply = {
        channelId: recorded.channelId,
        userId: job.request.requester.userId,
        responseUrl: recorded.replyToken,
        issuedAt: (recorded.replyExpiresAt ?? 0) - RESPONSE_URL_TTL_MS,
      };
    }
    return target;
  }

  /** A status message for a job that has none (its post died with the last process). */
  async open(job: Job, model: MessageModel): Promise<StatusTarget> {
    return this.post(job.id, job.request.requester.channelId, layoutBlocks(model), undefined);
  }

  async status(_job: Job, target: StatusTarget, model: MessageModel): Promise<undefined> {
    await this.update(target, layoutBlocks(model));
    return undefined;
  }

  async result(
    job: Job,
    handle: StatusTarget | undefined,
    model: MessageModel,
    files: OutgoingFile[],
  ): Promise<void> {
    const card = layoutBlocks(model);
    const target =
      handle ??
      this.recorded(job) ??
      (await this.post(job.id, job.request.requester.channelId, card, undefined));
    if (files.length > 0 && !this.uploaded(job.id)) await this.upload(job, target, model, files);
    await this.update(target, card);
  }

  async failure(job: Job, handle: StatusTarget | undefined, model: MessageModel): Promise<void> {
    const message = layoutBlocks(model);
    let target = handle ?? this.recorded(job);
    if (target) await this.update(target, message);
    else target = await this.post(job.id, job.request.requester.channelId, message, undefined);
    if (this.services.deliveries.deliveriesForJob(job.id, "failure").length > 0) return;
    // An edit does not notify: tell the requester, quietly, as well.
    await this.replies
      .ephemeral(target.reply ?? { channelId: target.channelId, userId: job.request.requester.userId }, {
        text: message.text,
      })
      .catch((err: unknown) => {
        this.options.log(
          `easel: could not tell the requester of job ${job.id} that it failed: ${describe(err)}`,
        );
      });
    this.services.deliveries.recordDelivery({
      jobId: job.id,
      platform: "slack",
      kind: "failure",
      channelId: target.channelId,
    });
  }

  /**
   * A DM from the bot (chat.postMessage to the member's id): it needs no membership of the channel the
   * result could not reach. Told once; a lost answer may show it twice, which no one can mistake for a post.
   */
  async undeliverable(job: Job, model: MessageModel): Promise<void> {
    const deliveries = this.services.deliveries;
    if (latestPosted(deliveries, job.id, "notice")) return;
    const message = layoutBlocks(model);
    const userId = job.request.requester.userId;
    let posted: { ts?: string; channel?: string };
    try {
      posted = await this.once.chat.postMessage({
        channel: userId,
        text: message.text,
        blocks: message.blocks,
        unfurl_links: false,
        unfurl_media: false,
      });
    } catch (err) {
      throw classify(err);
    }
    deliveries.recordDelivery({
      jobId: job.id,
      platform: "slack",
      kind: "notice",
      channelId: posted.channel ?? userId,
      messageId: posted.ts ?? `notice:${job.id}`,
    });
  }

  /**
   * A contest's or match's closing message in its channel, once: the winning image uploaded with the
   * announcement as its comment, or the announcement alone (recorded as the job's announcement).
   */
  async announce(
    ballot: Ballot,
    model: MessageModel,
    files: OutgoingFile[],
    recordAs: string,
  ): Promise<void> {
    const deliveries = this.services.deliveries;
    if (latestPosted(deliveries, recordAs, "announcement")) return;
    const card = layoutBlocks(model);
    let messageId: string | undefined;
    if (files.length > 0) {
      const answer = (await this.client.files.uploadV2({
        channel_id: ballot.channelId,
        initial_comment: card.text,
        file_uploads: files.map((f) => ({
          file: Buffer.from(f.bytes),
          filename: f.filename,
          title: f.filename,
        })),
      })) as { files?: { files?: { id?: string }[] }[] };
      messageId = answer.files?.[0]?.files?.[0]?.id;
    } else {
      const posted = await this.client.chat.postMessage({
        channel: ballot.channelId,
        text: card.text,
        blocks: card.blocks,
        unfurl_links: false,
      });
      messageId = posted.ts;
    }
    deliveries.recordDelivery({
      jobId: recordAs,
      platform: "slack",
      kind: "announcement",
      channelId: ballot.channelId,
      messageId: messageId ?? `announcement:${ballot.id}`,
    });
  }

  /**
   * Posts a status message once per delivery key: the key row first (durably), the key in the message's
   * metadata, and after an error, or for a row an earlier attempt left without an id, a look at the channel.
   */
  private async post(
    jobId: string,
    channelId: string,
    message: SlackMessage,
    reply: ReplyTarget | undefined,
  ): Promise<StatusTarget> {
    const deliveries = this.services.deliveries;
    let row = deliveries
      .deliveriesForJob(jobId, "status")
      .find((d) => d.messageId === undefined && d.channelId === channelId);
    let ts: string | undefined;
    if (row) ts = await this.findPosted(row);
    else {
      row = deliveries.recordDelivery({
        jobId,
        platform: "slack",
        kind: "status",
        channelId,
        ...(reply?.responseUrl
          ? {
              replyToken: reply.responseUrl,
              replyExpiresAt: (reply.issuedAt ?? Date.now()) + RESPONSE_URL_TTL_MS,
            }
          : {}),
      });
    }
    let shown: string | undefined;
    if (ts === undefined) {
      try {
        const posted = await this.once.chat.postMessage({
          channel: channelId,
          text: message.text,
          blocks: message.blocks,
          unfurl_links: false,
          unfurl_media: false,
          metadata: { event_type: DELIVERY_EVENT_TYPE, event_payload: { key: deliveryKey(row) } },
        });
        if (!posted.ts) throw new Error("Slack did not say which message it posted");
        ts = posted.ts;
        shown = JSON.stringify(message);
      } catch (err) {
        const refused = classify(err);
        if (!refused.permanent) ts = await this.findPosted(row);
        if (ts === undefined) throw refused;
      }
    }
    const delivery = deliveries.updateDelivery(row.id, { messageId: ts });
    return {
      channelId,
      ts,
      deliveryId: delivery.id,
      ...(reply ? { reply } : {}),
      // A message found rather than posted may show an older state: the next update is not skipped.
      ...(shown === undefined ? {} : { shown }),
    };
  }

  /** The ts of the channel message carrying this row's key, if Slack has it. */
  private async findPosted(row: Delivery): Promise<string | undefined> {
    const key = deliveryKey(row);
    try {
      const answer = await this.client.conversations.history({
        channel: row.channelId,
        oldest: ((row.createdAt - LOOKUP_MARGIN_MS) / 1000).toFixed(6),
        limit: 200,
        include_all_metadata: true,
      });
      return answer.messages?.find((m) => metadataKey(m) === key)?.ts;
    } catch (err) {
      this.options.log(
        `easel: could not look for job ${row.jobId}'s message before posting it again (${describe(err)}); it may show twice`,
      );
      return undefined;
    }
  }

  private async update(target: StatusTarget, message: SlackMessage): Promise<void> {
    const shown = JSON.stringify(message);
    if (target.shown === shown) return;
    try {
      await this.client.chat.update({
        channel: target.channelId,
        ts: target.ts,
        text: message.text,
        blocks: message.blocks,
      });
    } catch (err) {
      throw classify(err);
    }
    target.shown = shown;
  }

  private uploaded(jobId: string): boolean {
    return latestPosted(this.services.deliveries, jobId, "result") !== undefined;
  }

  /**
   * Uploads the result's images into the status message's thread, once per delivery key: the key is in the
   * files' names (their titles, which Slack shows, stay as they were), and after an error, or for a row an
   * earlier attempt left without a file id, the thread is read for it before anything is uploaded again.
   */
  private async upload(
    job: Job,
    target: StatusTarget,
    model: MessageModel,
    files: OutgoingFile[],
  ): Promise<void> {
    const deliveries = this.services.deliveries;
    let row = deliveries.deliveriesForJob(job.id, "result").find((d) => d.messageId === undefined);
    let fileId: string | undefined;
    if (row) fileId = await this.findUpload(row);
    else {
      row = deliveries.recordDelivery({
        jobId: job.id,
        platform: "slack",
        kind: "result",
        channelId: target.channelId,
        threadId: target.ts,
      });
    }
    if (fileId === undefined) {
      const key = deliveryKey(row);
      const comment = layoutBlocks({ ...model, title: "", fields: [], buttons: [] }).text;
      try {
        const answer = (await this.once.files.uploadV2({
          channel_id: row.channelId,
          thread_ts: row.threadId ?? target.ts,
          initial_comment: comment,
          file_uploads: files.map((f) => ({
            file: Buffer.from(f.bytes),
            filename: keyedName(f.filename, key),
            title: f.filename,
          })),
        })) as { files?: { files?: { id?: string }[] }[] };
        fileId = answer.files?.[0]?.files?.[0]?.id ?? `upload:${job.id}`;
      } catch (err) {
        const refused = classify(err);
        if (!refused.permanent) fileId = await this.findUpload(row);
        if (fileId === undefined) throw refused;
      }
    }
    deliveries.updateDelivery(row.id, { messageId: fileId });
  }

  /** The id of the first file of the thread message whose files carry this row's key, if Slack has it. */
  private async findUpload(row: Delivery): Promise<string | undefined> {
    const key = deliveryKey(row);
    if (!row.threadId) return undefined;
    try {
      const answer = await this.client.conversations.replies({
        channel: row.channelId,
        ts: row.threadId,
        limit: 200,
      });
      const message = answer.messages?.find((m) => m.files?.some((f) => f.name?.includes(key)));
      return message?.files?.[0]?.id;
    } catch (err) {
      this.options.log(
        `easel: could not look for job ${row.jobId}'s upload before uploading it again (${describe(err)}); it may show twice`,
      );
      return undefined;
    }
  }
}

/** `easel-k3x9a2b0cd-grid.png` with key K → `easel-k3x9a2b0cd-grid.K.png`. */
function keyedName(filename: string, key: string): string {
  const dot = filename.lastIndexOf(".");
  return dot > 0 ? `${filename.slice(0, dot)}.${key}${filename.slice(dot)}` : `${filename}.${key}`;
}

/** The delivery key in a message's metadata, if easel put one there. */
function metadataKey(message: { metadata?: unknown }): unknown {
  const metadata = message.metadata as
    | { event_type?: unknown; event_payload?: { key?: unknown } }
    | undefined;
  return metadata?.event_type === DELIVERY_EVENT_TYPE ? metadata.event_payload?.key : undefined;
}

/** The Web API's own warnings and errors into easel's log sink. */
function sinkLogger(log: (line: string) => void): webApi.Logger {
  const line =
    (tag: string) =>
    (...msg: unknown[]) =>
      log(
        `easel: Slack web-api ${tag}: ${msg.map((m) => (m instanceof Error ? m.message : String(m))).join(" ")}`,
      );
  return {
    debug: () => {},
    info: () => {},
    warn: line("warning"),
    error: line("error"),
    setLevel: () => {},
    getLevel: () => webApi.LogLevel.WARN,
    setName: () => {},
  };
}

function describe(err: unknown): string {
  const code = slackErrorCode(err);
  if (code) return code;
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
