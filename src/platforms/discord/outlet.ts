import {
  type Client,
  DiscordAPIError,
  type MessageEditOptions,
  type SendableChannels,
  WebhookClient,
} from "discord.js";
import type { Announcer } from "../../core/ballots.ts";
import type { BotServices } from "../../core/bot-services.ts";
import { latestPosted } from "../../core/delivery.ts";
import type { Job } from "../../core/job.ts";
import { BOT_MESSAGES } from "../../core/messages.ts";
import type { MessageModel } from "../../core/presenter.ts";
import type { JobOutlet, OutgoingFile } from "../../core/relay.ts";
import type { Ballot } from "../../core/voting.ts";
import { type DiscordFile, type DiscordPayload, layoutMessage } from "./layout.ts";

/**
 * Where a Discord job's messages go. While the interaction token lives (15 minutes, less a margin) the status
 * message is the interaction's reply, edited through its webhook; after that (or on 401 / 50027) easel posts
 * a normal channel message that mentions the requester and edits that instead, and never retries a dead
 * token. Every message is recorded in the deliveries log first, so a restart finds it, and a result already
 * recorded is never posted again; a result posted as a channel message carries a nonce Discord deduplicates.
 */

/** Interaction tokens live 15 minutes; stop using one a little before, so an edit never races its death. */
export const TOKEN_LIFETIME_MS = 15 * 60_000;
const TOKEN_MARGIN_MS = 60_000;
/** Discord's default upload limit, when the interaction did not say (attachment_size_limit). */
export const DEFAULT_ATTACHMENT_LIMIT = 10 * 1024 * 1024;
/** How long status edits wait for a job's reply to exist before going on without it. */
const BIND_TIMEOUT_MS = 10_000;
/** Discord error codes for a dead interaction token. */
const DEAD_TOKEN_CODES = new Set([50027, 10015]);

/** A job's status message. */
export interface StatusTarget {
  channelId: string;
  messageId: string;
  /** The interaction token and when it dies (absent: a channel message). */
  token?: string;
  expiresAt?: number;
  attachmentLimit: number;
  deliveryId: number;
}

/** What an interaction handler knows when it binds a job to its reply. */
export interface BindInput {
  channelId: string;
  messageId: string;
  token: string;
  createdAt: number;
  attachmentLimit: number;
}

export class DiscordOutlet implements JobOutlet, Announcer {
  /** Jobs whose reply is being made: status edits wait for it. */
  private readonly pending = new Map<string, Promise<StatusTarget | undefined>>();
  private readonly targets = new Map<string, StatusTarget>();
  private readonly binders = new Map<string, (input: BindInput | undefined) => void>();
  private readonly webhooks = new Map<string, WebhookClient>();

  constructor(
    private readonly client: Client,
    private readonly services: BotServices,
    private readonly options: { applicationId: () => string; apiBase?: string; now?: () => number },
  ) {}

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  /**
   * Marks a job whose reply is on its way (call right after the job was queued, before any await, so that the
   * relay's first edit waits for the reply instead of finding nothing), and returns the function that completes
   * it once the reply exists (or with undefined when it failed). Asking again returns the same function.
   */
  expect(jobId: string): (input: BindInput | undefined) => void {
    const existing = this.binders.get(jobId);
    if (existing) return existing;
    let settle: (t: StatusTarget | undefined) => void = () => {};
    this.pending.set(
      jobId,
      new Promise((resolve) => {
        settle = resolve;
      }),
    );
    const bind = (input: BindInput | undefined) => {
      this.binders.delete(jobId);
      if (!input) {
        this.pending.delete(jobId);
        settle(undefined);
        return;
      }
      const delivery = this.services.deliveries.recordDelivery({
        jobId,
        platform: "discord",
        kind: "status",
        channelId: input.channelId,
        messageId: input.messageId,
        replyToken: input.token,
        replyExpiresAt: input.createdAt + TOKEN_LIFETIME_MS,
      });
      const target: StatusTarget = {
        channelId: input.channelId,
        messageId: input.messageId,
        token: input.token,
        expiresAt: input.createdAt + TOKEN_LIFETIME_MS,
        attachmentLimit: input.attachmentLimit,
        deliveryId: delivery.id,
      };
      this.targets.set(jobId, target);
      this.pending.delete(jobId);
      settle(target);
    };
    this.binders.set(jobId, bind);
    // A reply that never comes (the interaction failed) must not hold the job's messages forever.
    setTimeout(() => {
      if (this.binders.get(jobId) === bind) bind(undefined);
    }, BIND_TIMEOUT_MS).unref();
    return bind;
  }

  async status(job: Job, model: MessageModel): Promise<void> {
    const target = await this.target(job.id);
    if (!target) return;
    const files: DiscordFile[] = [];
    if (model.preview)
      files.push({ name: "preview.png", bytes: await this.services.imaging.png(model.preview) });
    await this.edit(job, target, layoutMessage(model, files));
  }

  async result(job: Job, model: MessageModel, files: OutgoingFile[]): Promise<void> {
    if (this.alreadyPosted(job.id, "result")) return;
    const target = await this.target(job.id);
    const limit = target?.attachmentLimit ?? DEFAULT_ATTACHMENT_LIMIT;
    let shrunk = false;
    const fitted: DiscordFile[] = [];
    for (const file of files) {
      let bytes = file.bytes;
      if (bytes.length > limit) {
        bytes = await this.services.imaging.fit(bytes, limit);
        shrunk = true;
      }
      fitted.push({ name: file.filename, bytes });
    }
    const shown: MessageModel = shrunk
      ? {
          ...model,
          fields: [
            ...model.fields,
            { name: "Note", value: BOT_MESSAGES.attachmentScaled(limit), inline: false },
          ],
        }
      : model;
    await this.post(job, "result", target, layoutMessage(shown, fitted));
  }

  async failure(job: Job, model: MessageModel): Promise<void> {
    if (this.alreadyPosted(job.id, "failure")) return;
    await this.post(job, "failure", await this.target(job.id), layoutMessage(model));
  }

  /**
   * A job's last message: the status message edited into it while the token lives, else a new channel
   * message that mentions the requester (an edit would not notify them), with a nonce Discord deduplicates.
   */
  private async post(
    job: Job,
    kind: "result" | "failure",
    target: StatusTarget | undefined,
    payload: DiscordPayload,
  ): Promise<void> {
    if (target && this.tokenAlive(target)) {
      try {
        const message = await this.webhook(target.token as string).editMessage(target.messageId, {
          ...payload,
          attachments: [],
        });
        this.record(job.id, kind, target.channelId, message.id);
        return;
      } catch (err) {
        if (!isDeadToken(err)) throw err;
        this.forgetToken(job.id, target);
      }
    }
    const channelId = target?.channelId ?? job.request.requester.channelId;
    const channel = await this.channel(channelId);
    const message = await channel.send({
      ...payload,
      content: `${payload.content}\n${BOT_MESSAGES.deliveredInChannel}`.slice(0, 2000),
      nonce: `${kind === "result" ? "r" : "f"}${job.id}`.slice(0, 25),
      enforceNonce: true,
      allowedMentions: { users: [job.request.requester.userId] },
    });
    this.record(job.id, kind, channelId, message.id);
    // A status message posted in the channel (after the token died) has done its work.
    if (target && !target.token) await channel.messages.delete(target.messageId).catch(() => undefined);
  }

  /** A contest's or match's closing message, in its channel, once (recorded as the job's announcement). */
  async announce(
    ballot: Ballot,
    model: MessageModel,
    files: OutgoingFile[],
    recordAs: string,
  ): Promise<void> {
    if (latestPosted(this.services.deliveries, recordAs, "announcement")) return;
    const channel = await this.channel(ballot.channelId);
    const message = await channel.send({
      ...layoutMessage(
        model,
        files.map((f) => ({ name: f.filename, bytes: f.bytes })),
      ),
      nonce: `n${ballot.id}`.slice(0, 25),
      enforceNonce: true,
      allowedMentions: { users: ballot.ownerId ? [ballot.ownerId] : [] },
    });
    this.services.deliveries.recordDelivery({
      jobId: recordAs,
      platform: "discord",
      kind: "announcement",
      channelId: ballot.channelId,
      messageId: message.id,
    });
  }

  release(jobId: string): void {
    const token = this.targets.get(jobId)?.token;
    this.targets.delete(jobId);
    if (!token || [...this.targets.values()].some((t) => t.token === token)) return;
    this.webhooks.get(token)?.destroy();
    this.webhooks.delete(token);
  }

  /** Closes the webhook clients. */
  destroy(): void {
    for (const webhook of this.webhooks.values()) webhook.destroy();
    this.webhooks.clear();
  }

  private alreadyPosted(jobId: string, kind: "result" | "failure"): boolean {
    return latestPosted(this.services.deliveries, jobId, kind) !== undefined;
  }

  private record(jobId: string, kind: "result" | "failure", channelId: string, messageId: string): void {
    this.services.deliveries.recordDelivery({ jobId, platform: "discord", kind, channelId, messageId });
  }

  /** The job's status message: bound in this process, being bound, or recorded before a restart. */
  private async target(jobId: string): Promise<StatusTarget | undefined> {
    const known = this.targets.get(jobId);
    if (known) return known;
    const pending = this.pending.get(jobId);
    if (pending) return pending;
    const recorded = latestPosted(this.services.deliveries, jobId, "status");
    if (!recorded) return undefined;
    const target: StatusTarget = {
      channelId: recorded.channelId,
      messageId: recorded.messageId,
      ...(recorded.replyToken ? { token: recorded.replyToken } : {}),
      ...(recorded.replyExpiresAt ? { expiresAt: recorded.replyExpiresAt } : {}),
      attachmentLimit: DEFAULT_ATTACHMENT_LIMIT,
      deliveryId: recorded.id,
    };
    this.targets.set(jobId, target);
    return target;
  }

  private tokenAlive(target: StatusTarget): boolean {
    return target.token !== undefined && (target.expiresAt ?? 0) - TOKEN_MARGIN_MS > this.now();
  }

  /** Edits the status message; moves it to a channel message once the token is dead. */
  private async edit(job: Job, target: StatusTarget, payload: DiscordPayload): Promise<void> {
    const edit: MessageEditOptions = { ...payload, attachments: [] };
    if (this.tokenAlive(target)) {
      try {
        await this.webhook(target.token as string).editMessage(target.messageId, edit);
        return;
      } catch (err) {
        if (!isDeadToken(err)) throw err;
      }
    }
    if (target.token) {
      // The reply can no longer be edited: carry on in a channel message that mentions the requester.
      const channel = await this.channel(target.channelId);
      const message = await channel.send({
        ...payload,
        nonce: `s${job.id}`.slice(0, 25),
        enforceNonce: true,
        allowedMentions: { users: [job.request.requester.userId] },
      });
      const delivery = this.services.deliveries.recordDelivery({
        jobId: job.id,
        platform: "discord",
        kind: "status",
        channelId: target.channelId,
        messageId: message.id,
      });
      this.targets.set(job.id, {
        channelId: target.channelId,
        messageId: message.id,
        attachmentLimit: target.attachmentLimit,
        deliveryId: delivery.id,
      });
      return;
    }
    const channel = await this.channel(target.channelId);
    await channel.messages.edit(target.messageId, edit);
  }

  private forgetToken(jobId: string, target: StatusTarget): void {
    this.targets.set(jobId, { ...target, expiresAt: 0 });
  }

  private webhook(token: string): WebhookClient {
    let webhook = this.webhooks.get(token);
    if (!webhook) {
      webhook = new WebhookClient(
        { id: this.options.applicationId(), token },
        this.options.apiBase ? { rest: { api: this.options.apiBase } } : {},
      );
      this.webhooks.set(token, webhook);
    }
    return webhook;
  }

  private async channel(channelId: string): Promise<SendableChannels> {
    const channel = await this.client.channels.fetch(channelId);
    if (!channel?.isSendable()) throw new Error(`Discord channel ${channelId} cannot take messages`);
    return channel;
  }
}

/** 401 / 50027 (Invalid Webhook Token), 10015 (Unknown Webhook): the interaction token is dead. */
export function isDeadToken(err: unknown): boolean {
  return (
    err instanceof DiscordAPIError &&
    (err.status === 401 || (typeof err.code === "number" && DEAD_TOKEN_CODES.has(err.code)))
  );
}
