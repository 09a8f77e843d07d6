import type { webApi } from "@slack/bolt";
import type { Announcer } from "../../core/ballots.ts";
import type { BotServices } from "../../core/bot-services.ts";
import { latestPosted } from "../../core/delivery.ts";
import { isFinalState, type Job } from "../../core/job.ts";
import { BOT_MESSAGES } from "../../core/messages.ts";
import type { MessageModel } from "../../core/presenter.ts";
import type { JobOutlet, OutgoingFile } from "../../core/relay.ts";
import type { Ballot } from "../../core/voting.ts";
import { layoutBlocks, type SlackMessage } from "./blocks.ts";
import { RESPONSE_URL_TTL_MS, type ReplySender, type ReplyTarget } from "./replies.ts";

/**
 * Where a Slack job's messages go. Each job has one status message in its channel, posted with the bot token
 * right after the ack and edited with chat.update as the job waits and renders (the relay keeps edits to one
 * per 2 s). The result is uploaded with files.uploadV2 into that message's thread (the reply mentions the
 * requester, which notifies them), then the status message itself becomes the result card: settings, the
 * prompt to rerun, and the buttons. A failure turns the card into the failure, and the requester is told
 * ephemerally (response_url while it lasts, else the bot token).
 *
 * Every message is recorded in the deliveries log, so that a restart finds the status message and a result
 * is uploaded once: the upload is recorded (without an id) before files.uploadV2 and completed with the file
 * id after; a completed record means "uploaded", and a retry or a restart only edits the card again (an edit
 * is harmless twice). A record left without an id means the process died during the upload, which Slack
 * cannot be asked about without more scopes: easel uploads again rather than leave the job without its image,
 * and logs it.
 */

/** A job's status message. */
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
  const data = (err as { data?: { error?: unknown } } | undefined)?.data;
  return typeof data?.error === "string" ? data.error : undefined;
}

/** The bot cannot post in the channel: it is not a member (a private channel it is not in is invisible). */
export function isNotInChannel(err: unknown): boolean {
  const code = slackErrorCode(err);
  return code === "not_in_channel" || code === "channel_not_found" || code === "is_archived";
}

/** What the bot knows when it opens a job's status message. */
export interface OpenInput {
  channelId: string;
  /** The status model to show first. */
  model: MessageModel;
  reply?: ReplyTarget;
}

/** A job whose status message is being posted: post it, or give up on it. */
export interface PendingStatus {
  /** Posts the status message; throws what chat.postMessage threw (the bot tells the member). */
  open(input: OpenInput): Promise<StatusTarget>;
  /** The message will not be posted (the job was refused or cancelled): nothing more is shown. */
  abandon(): void;
}

export class SlackOutlet implements JobOutlet, Announcer {
  private readonly pending = new Map<string, Promise<StatusTarget | undefined>>();
  private readonly targets = new Map<string, StatusTarget>();
  /** Jobs whose status message could not be posted: their later events show nothing. */
  private readonly abandoned = new Set<string>();
  private readonly toldNotInChannel = new Set<string>();

  constructor(
    private readonly client: webApi.WebClient,
    private readonly services: BotServices,
    private readonly replies: ReplySender,
    private readonly options: { log: (line: string) => void },
  ) {}

  /**
   * Marks a job whose status message is on its way (call it right after the job was queued, before any await,
   * so that the relay's first edit waits for the message instead of racing it).
   */
  expect(jobId: string): PendingStatus {
    let settle: (t: StatusTarget | undefined) => void = () => {};
    this.pending.set(
      jobId,
      new Promise((resolve) => {
        settle = resolve;
      }),
    );
    const done = (target: StatusTarget | undefined, abandon: boolean) => {
      this.pending.delete(jobId);
      if (target) this.targets.set(jobId, target);
      if (abandon) this.abandoned.add(jobId);
      settle(target);
    };
    return {
      open: async (input) => {
        try {
          const target = await this.post(jobId, input.channelId, layoutBlocks(input.model), input.reply);
          done(target, false);
          return target;
        } catch (err) {
          // Not in the channel: the bot cancels the job. Any other failure: the next status posts anew.
          done(undefined, isNotInChannel(err));
          throw err;
        }
      },
      abandon: () => done(undefined, true),
    };
  }

  /** The job's last message went out: forget what was kept for it (the deliveries log still has it). */
  release(jobId: string): void {
    this.targets.delete(jobId);
    this.abandoned.delete(jobId);
    this.toldNotInChannel.delete(jobId);
  }

  async status(job: Job, model: MessageModel): Promise<void> {
    const target = await this.target(job.id);
    if (this.abandoned.has(job.id)) return;
    const message = layoutBlocks(model);
    if (!target) {
      // A job without a status message (its post died with the last process): give it one now, unless it
      // is already over.
      const state = this.services.jobs.get(job.id)?.state ?? job.state;
      if (isFinalState(state)) return;
      this.targets.set(job.id, await this.post(job.id, job.request.requester.channelId, message, undefined));
      return;
    }
    await this.update(target, message);
  }

  async result(job: Job, model: MessageModel, files: OutgoingFile[]): Promise<void> {
    const card = layoutBlocks(model);
    let target = await this.target(job.id);
    if (!target) {
      target = await this.post(job.id, job.request.requester.channelId, card, undefined);
      this.targets.set(job.id, target);
    }
    if (files.length > 0 && !this.uploaded(job.id)) await this.upload(job, target, model, files);
    await this.update(target, card);
  }

  async failure(job: Job, model: MessageModel): Promise<void> {
    const message = layoutBlocks(model);
    let target = await this.target(job.id);
    if (target) await this.update(target, message);
    else {
      target = await this.post(job.id, job.request.requester.channelId, message, undefined);
      this.targets.set(job.id, target);
    }
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

  /** The job's status message, if it has one (waits while it is being posted). */
  async target(jobId: string): Promise<StatusTarget | undefined> {
    const known = this.targets.get(jobId);
    if (known) return known;
    const pending = this.pending.get(jobId);
    if (pending) return pending;
    const recorded = latestPosted(this.services.deliveries, jobId, "status");
    if (!recorded) return undefined;
    const target: StatusTarget = {
      channelId: recorded.channelId,
      ts: recorded.messageId,
      deliveryId: recorded.id,
    };
    const job = this.services.jobs.get(jobId);
    if (recorded.replyToken && job) {
      target.reply = {
        channelId: recorded.channelId,
        userId: job.request.requester.userId,
        responseUrl: recorded.replyToken,
        issuedAt: (recorded.replyExpiresAt ?? 0) - RESPONSE_URL_TTL_MS,
      };
    }
    this.targets.set(jobId, target);
    return target;
  }

  /** Posts a status message and records it. */
  private async post(
    jobId: string,
    channelId: string,
    message: SlackMessage,
    reply: ReplyTarget | undefined,
  ): Promise<StatusTarget> {
    const posted = await this.client.chat.postMessage({
      channel: channelId,
      text: message.text,
      blocks: message.blocks,
      unfurl_links: false,
      unfurl_media: false,
    });
    const ts = posted.ts;
    if (!ts) throw new Error("Slack did not say which message it posted");
    const channel = posted.channel ?? channelId;
    const delivery = this.services.deliveries.recordDelivery({
      jobId,
      platform: "slack",
      kind: "status",
      channelId: channel,
      messageId: ts,
      ...(reply?.responseUrl
        ? {
            replyToken: reply.responseUrl,
            replyExpiresAt: (reply.issuedAt ?? Date.now()) + RESPONSE_URL_TTL_MS,
          }
        : {}),
    });
    return {
      channelId: channel,
      ts,
      deliveryId: delivery.id,
      ...(reply ? { reply } : {}),
      shown: JSON.stringify(message),
    };
  }

  private async update(target: StatusTarget, message: SlackMessage): Promise<void> {
    const shown = JSON.stringify(message);
    if (target.shown === shown) return;
    await this.client.chat.update({
      channel: target.channelId,
      ts: target.ts,
      text: message.text,
      blocks: message.blocks,
    });
    target.shown = shown;
  }

  private uploaded(jobId: string): boolean {
    return latestPosted(this.services.deliveries, jobId, "result") !== undefined;
  }

  /** Uploads the result's images into the status message's thread, recorded before and after. */
  private async upload(
    job: Job,
    target: StatusTarget,
    model: MessageModel,
    files: OutgoingFile[],
  ): Promise<void> {
    const deliveries = this.services.deliveries;
    const started = deliveries.deliveriesForJob(job.id, "result").find((d) => d.messageId === undefined);
    if (started) {
      this.options.log(
        `easel: the upload of job ${job.id}'s result was interrupted before; uploading it again (it may show twice)`,
      );
    }
    const record =
      started ??
      deliveries.recordDelivery({
        jobId: job.id,
        platform: "slack",
        kind: "result",
        channelId: target.channelId,
        threadId: target.ts,
      });
    const comment = layoutBlocks({ ...model, title: "", fields: [], buttons: [] }).text;
    try {
      const answer = (await this.client.files.uploadV2({
        channel_id: target.channelId,
        thread_ts: target.ts,
        initial_comment: comment,
        file_uploads: files.map((f) => ({
          file: Buffer.from(f.bytes),
          filename: f.filename,
          title: f.filename,
        })),
      })) as { files?: { files?: { id?: string }[] }[] };
      const fileId = answer.files?.[0]?.files?.[0]?.id ?? `upload:${job.id}`;
      deliveries.updateDelivery(record.id, { messageId: fileId });
    } catch (err) {
      // Removed from the channel while the job rendered: say so once (the response_url needs no membership);
      // the job stays rendered and is posted when easel next starts, after it has been invited back.
      if (isNotInChannel(err) && target.reply && !this.toldNotInChannel.has(job.id)) {
        this.toldNotInChannel.add(job.id);
        await this.replies
          .ephemeral(target.reply, { text: BOT_MESSAGES.notInChannel })
          .catch(() => undefined);
      }
      throw err;
    }
  }
}

function describe(err: unknown): string {
  const code = slackErrorCode(err);
  if (code) return code;
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
