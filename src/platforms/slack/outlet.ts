import type { webApi } from "@slack/bolt";
import type { Announcer } from "../../core/ballots.ts";
import type { BotServices } from "../../core/bot-services.ts";
import { latestPosted } from "../../core/delivery.ts";
import type { StoredImage } from "../../core/engine.ts";
import type { Explanation } from "../../core/explain.ts";
import { fullSizeFile } from "../../core/image-files.ts";
import type { Job } from "../../core/job.ts";
import type { PendingStatus } from "../../core/pending-status.ts";
import { classified } from "../../core/platform-errors.ts";
import { type MessageModel, presentFullSize } from "../../core/presenter.ts";
import type { JobOutlet, OutgoingFile } from "../../core/relay.ts";
import type { TallyLabels } from "../../core/vote-tally.ts";
import type { Ballot } from "../../core/voting.ts";
import { layoutBlocks, relabelBlocks, type SlackMessage, toMrkdwn } from "./blocks.ts";
import { classify, describeSlackError } from "./errors.ts";
import { KeyedPosts, noRetryClient, type UploadFile } from "./keyed-posts.ts";
import { RESPONSE_URL_TTL_MS, type ReplySender, type ReplyTarget } from "./replies.ts";

/**
 * Where a Slack job's messages go. Each job has one status message in its channel, posted with the bot token
 * right after the ack and edited with chat.update (the relay owns the handle: a StatusTarget). The result is
 * uploaded into that message's thread (mentioning the requester, which notifies them), then the status message
 * becomes the result card. A failure turns the card into the failure and is told to the requester ephemerally;
 * a result that can never be posted is told in a DM. New messages and uploads take the keyed path
 * (keyed-posts.ts); an ephemeral cannot be looked up, so the failure's is recorded first and shown at most once.
 */

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

/** A message a button was pressed on: where it is, and the thread its answers go into. */
export interface PressedMessage {
  channelId: string;
  ts: string;
  threadTs: string;
}

/** What the bot knows when it opens a job's status message. */
export interface OpenInput {
  channelId: string;
  /** The status model to show first. */
  model: MessageModel;
  reply?: ReplyTarget;
}

export interface SlackOutletOptions {
  log: (line: string) => void;
  /** The client for non-idempotent calls; it must not retry on its own (default: one made from `client`). */
  once?: webApi.WebClient;
}

export class SlackOutlet implements JobOutlet<StatusTarget>, Announcer {
  /** New messages and uploads, each once by its delivery key (also for the bot's button answers). */
  readonly posts: KeyedPosts;

  constructor(
    private readonly client: webApi.WebClient,
    private readonly services: BotServices,
    private readonly replies: ReplySender,
    private readonly options: SlackOutletOptions,
  ) {
    const once = options.once ?? noRetryClient(client, options.log);
    this.posts = new KeyedPosts(client, once, services.deliveries, options.log);
  }

  /** Posts a new job's status message and binds it; throws what Slack answered (the bot tells the member). */
  openStatus(pending: PendingStatus<StatusTarget>, input: OpenInput): Promise<StatusTarget> {
    return pending.post(() =>
      this.post(pending.jobId, input.channelId, layoutBlocks(input.model), input.reply),
    );
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
    if (files.length > 0 && !latestPosted(this.services.deliveries, job.id, "result")) {
      // The images go into the status message's thread, with the card's content line (the mention) only.
      const comment = layoutBlocks({ ...model, title: "", fields: [], buttons: [] }).text;
      const input = {
        jobId: job.id,
        kind: "result",
        channelId: target.channelId,
        threadId: target.ts,
      } as const;
      await this.posts.upload(input, files, comment, { resume: true });
    }
    await this.update(target, card);
  }

  async failure(job: Job, handle: StatusTarget | undefined, model: MessageModel): Promise<void> {
    const message = layoutBlocks(model);
    let target = handle ?? this.recorded(job);
    if (target) await this.update(target, message);
    else {
      target = await this.post(job.id, job.request.requester.channelId, message, undefined);
      // A card found rather than posted (the last process died before its answer) shows an older state.
      if (target.shown === undefined) await this.update(target, message);
    }
    const deliveries = this.services.deliveries;
    if (deliveries.deliveriesForJob(job.id, "failure").length > 0) return;
    // An edit does not notify: tell the requester, quietly, as well. Recorded first, and shown at most once.
    deliveries.recordDelivery({
      jobId: job.id,
      platform: "slack",
      kind: "failure",
      channelId: target.channelId,
    });
    await this.replies
      .ephemeral(
        target.reply ?? { channelId: target.channelId, userId: job.request.requester.userId },
        { text: message.text },
        { atMostOnce: true },
      )
      .catch((err: unknown) => {
        this.options.log(
          `easel: could not tell the requester of job ${job.id} that it failed: ${describeSlackError(err)}`,
        );
      });
  }

  /**
   * A DM from the bot (chat.postMessage to the member's id): it needs no membership of the channel the result
   * could not reach. Once by its delivery key (looking a DM up needs the im:history scope; without it a lost
   * answer may show it twice, which no one can mistake for a post).
   */
  async undeliverable(job: Job, model: MessageModel): Promise<void> {
    if (latestPosted(this.services.deliveries, job.id, "notice")) return;
    const input = { jobId: job.id, kind: "notice", channelId: job.request.requester.userId } as const;
    await this.posts.message(input, layoutBlocks(model), { resume: true });
  }

  /**
   * A contest's or match's closing message in its channel, by its delivery key: the winning image uploaded
   * with the announcement as its comment, or the announcement alone (recorded as the job's announcement).
   */
  async announce(
    ballot: Ballot,
    model: MessageModel,
    files: OutgoingFile[],
    recordAs: string,
  ): Promise<void> {
    const card = layoutBlocks(model);
    const input = { jobId: recordAs, kind: "announcement", channelId: ballot.channelId } as const;
    if (files.length > 0) await this.posts.upload(input, files, card.text, { resume: true });
    else await this.posts.message(input, card, { resume: true });
  }

  /** U: one image of `job` alone at full size, in the result's thread, mentioning the presser; once per press. */
  async postFullSize(job: Job, image: StoredImage, presserId: string, on: PressedMessage): Promise<void> {
    const file = await fullSizeFile(this.services.jobs, job, image);
    await this.postInThread(job, "image", on, file, presentFullSize(job, image, presserId).content);
  }

  /** "How it was made" with its animation, in the result's thread (a file cannot be ephemeral); once per press. */
  async postExplanation(job: Job, explanation: Required<Explanation>, on: PressedMessage): Promise<void> {
    await this.postInThread(job, "explanation", on, explanation.animation, explanation.text);
  }

  /** A press's file with `text`, in the pressed message's thread: a new post for every press. */
  private async postInThread(
    job: Job,
    kind: "image" | "explanation",
    on: PressedMessage,
    file: UploadFile,
    text: string,
  ): Promise<void> {
    const input = { jobId: job.id, kind, channelId: on.channelId, threadId: on.threadTs };
    await this.posts.upload(input, [file], toMrkdwn(text), { resume: false });
  }

  /** The message's vote buttons relabelled with new counts (an edit: idempotent). */
  async relabel(
    on: PressedMessage,
    message: { text?: unknown; blocks: unknown[] },
    labels: TallyLabels,
  ): Promise<void> {
    await this.client.chat.update({
      channel: on.channelId,
      ts: on.ts,
      text: typeof message.text === "string" ? message.text : "",
      blocks: relabelBlocks(message.blocks, labels),
    });
  }

  /** Deletes the message (🗑); what Slack answers is only logged, as there is no one to tell. */
  async remove(on: PressedMessage): Promise<void> {
    try {
      await this.client.chat.delete({ channel: on.channelId, ts: on.ts });
    } catch (err) {
      this.options.log(`easel: could not delete a Slack message: ${describeSlackError(err)}`);
    }
  }

  /** Posts a status message once by its delivery key; the row keeps the response_url for later answers. */
  private async post(
    jobId: string,
    channelId: string,
    message: SlackMessage,
    reply: ReplyTarget | undefined,
  ): Promise<StatusTarget> {
    const { row, found } = await this.posts.message(
      {
        jobId,
        kind: "status",
        channelId,
        ...(reply?.responseUrl
          ? {
              replyToken: reply.responseUrl,
              replyExpiresAt: (reply.issuedAt ?? Date.now()) + RESPONSE_URL_TTL_MS,
            }
          : {}),
      },
      message,
      { resume: true },
    );
    return {
      channelId,
      ts: row.messageId,
      deliveryId: row.id,
      ...(reply ? { reply } : {}),
      // A message found rather than posted may show an older state: the next update is not skipped.
      ...(found ? {} : { shown: JSON.stringify(message) }),
    };
  }

  private async update(target: StatusTarget, message: SlackMessage): Promise<void> {
    const shown = JSON.stringify(message);
    if (target.shown === shown) return;
    const update = { channel: target.channelId, ts: target.ts, text: message.text, blocks: message.blocks };
    await classified(classify, () => this.client.chat.update(update));
    target.shown = shown;
  }
}
