import {
  type Client,
  DiscordAPIError,
  type Message,
  type MessageCreateOptions,
  type MessageEditOptions,
  type SendableChannels,
  SnowflakeUtil,
  WebhookClient,
} from "discord.js";
import type { Announcer } from "../../core/ballots.ts";
import type { BotServices, ImagingPort } from "../../core/bot-services.ts";
import { encodeButtonId } from "../../core/buttons.ts";
import { type Delivery, type DeliveryKind, latestPosted } from "../../core/delivery.ts";
import { DeliveryError } from "../../core/delivery-error.ts";
import type { Job } from "../../core/job.ts";
import { deliverOnce } from "../../core/keyed-delivery.ts";
import { BOT_MESSAGES, CARD_TEXT } from "../../core/messages.ts";
import type { MessageModel } from "../../core/presenter.ts";
import type { JobOutlet, OutgoingFile } from "../../core/relay.ts";
import type { Ballot } from "../../core/voting.ts";
import { type DiscordFile, type DiscordPayload, layoutMessage } from "./layout.ts";

/**
 * Where a Discord job's messages go. While the interaction token lives (15 minutes, less a margin) the status
 * message is the interaction's reply, edited through its webhook; after that (or on 401 / 50027) easel posts
 * a normal channel message that mentions the requester and edits that instead, and never retries a dead
 * token. The relay owns each job's handle on its status message (a StatusTarget): the adapter binds the one
 * `replyStatus` or `followUpStatus` made once Discord answered (core/pending-status.ts), and a job taken over
 * at start-up finds it in the deliveries log.
 *
 * Edits are idempotent; a new message is not. Every new message (a channel message, a follow-up, a DM) takes
 * core's keyed path (core/keyed-delivery.ts): a channel message carries its delivery key as its nonce with
 * enforce_nonce, so Discord itself answers a repeat within a few minutes with the message already made, and is
 * looked for among the channel's recent messages. Follow-ups have no nonce: they go through a webhook client
 * that never retries on its own, and are looked up by their interaction.
 */

/** Interaction tokens live 15 minutes; stop using one a little before, so an edit never races its death. */
export const TOKEN_LIFETIME_MS = 15 * 60_000;
const TOKEN_MARGIN_MS = 60_000;
/** Discord's default upload limit, when the interaction did not say (attachment_size_limit). */
export const DEFAULT_ATTACHMENT_LIMIT = 10 * 1024 * 1024;
/** Discord error codes for a dead interaction token. */
const DEAD_TOKEN_CODES = new Set([50027, 10015]);
/** Unknown Message: the reply was never made (a crash before the defer reached Discord) or was deleted. */
const UNKNOWN_MESSAGE = 10008;
/** The webhook's name for an interaction's reply, before (or without) its id. */
const ORIGINAL = "@original";
/** How far before a delivery key was recorded its message may be (clocks differ). */
const LOOKUP_MARGIN_MS = 60_000;
/** How many recent channel messages a lookup reads (one page). */
const LOOKUP_LIMIT = 50;

/** A job's status message: the relay's handle on it (its fields are this outlet's to change). */
export interface StatusTarget {
  channelId: string;
  messageId: string;
  /** The interaction token and when it dies (absent: a channel message). */
  token?: string;
  expiresAt?: number;
  attachmentLimit: number;
  deliveryId: number;
}

/** What an interaction handler knows of the reply that is a job's status message. */
export interface ReplyInput {
  channelId: string;
  /** The reply's message id; before Discord has answered the defer, "@original" (the webhook's name for it). */
  messageId?: string;
  token: string;
  createdAt: number;
  attachmentLimit: number;
}

/** The interaction a follow-up status message belongs to. */
export interface FollowUpInput {
  interactionId: string;
  channelId: string;
  token: string;
  createdAt: number;
  attachmentLimit: number;
}

export interface DiscordOutletOptions {
  applicationId: () => string;
  apiBase?: string;
  log: (line: string) => void;
  now?: () => number;
}

export class DiscordOutlet implements JobOutlet<StatusTarget>, Announcer {
  /** Webhook clients by interaction token: edits (idempotent, retried by discord.js). */
  private readonly webhooks = new Map<string, WebhookClient>();
  /** Webhook clients that never retry: for follow-ups, which a retry after a lost answer would post twice. */
  private readonly senders = new Map<string, WebhookClient>();
  /** The jobs whose status messages use each token (an arena's two sides share one): clients close after the last. */
  private readonly tokenJobs = new Map<string, Set<string>>();

  constructor(
    private readonly client: Client,
    private readonly services: BotServices,
    private readonly options: DiscordOutletOptions,
  ) {}

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  /**
   * Records the interaction's reply as the job's status message, and answers the relay's handle on it. Called
   * before the reply is deferred: a crash between the defer and its answer still leaves the reply on record, so
   * the next start edits it ("@original") instead of leaving the member's "thinking…" unresolved; a reply that
   * never reached Discord answers 10008 to that edit, and the job goes on in a channel message.
   */
  replyStatus(jobId: string, input: ReplyInput): StatusTarget {
    const messageId = input.messageId ?? ORIGINAL;
    const delivery = this.services.deliveries.recordDelivery({
      jobId,
      platform: "discord",
      kind: "status",
      channelId: input.channelId,
      ...(input.messageId ? { messageId: input.messageId } : {}),
      replyToken: input.token,
      replyExpiresAt: input.createdAt + TOKEN_LIFETIME_MS,
    });
    this.useToken(input.token, jobId);
    return {
      channelId: input.channelId,
      messageId,
      token: input.token,
      expiresAt: input.createdAt + TOKEN_LIFETIME_MS,
      attachmentLimit: input.attachmentLimit,
      deliveryId: delivery.id,
    };
  }

  /** The reply's own id, once Discord named it in the defer's answer. */
  replyPosted(target: StatusTarget, messageId: string): void {
    target.messageId = messageId;
    this.services.deliveries.updateDelivery(target.deliveryId, { messageId });
  }

  /**
   * Posts a job's status message as a follow-up of `interaction` (upscales, the arena's B side), once by its
   * delivery key: a follow-up has no nonce, so after an error the channel is searched for the interaction's
   * follow-up before anything is posted again.
   */
  async followUpStatus(jobId: string, interaction: FollowUpInput, content: string): Promise<StatusTarget> {
    const { row } = await deliverOnce(
      this.services.deliveries,
      { jobId, platform: "discord", kind: "status", channelId: interaction.channelId },
      {
        make: async () =>
          (await this.sender(interaction.token).send({ content, allowedMentions: { users: [] } })).id,
        find: async (_key, row) => (await this.findFollowUp(interaction, content, row))?.id,
        classify,
      },
      { resume: false, log: this.options.log },
    );
    return this.replyStatus(jobId, { ...interaction, messageId: row.messageId });
  }

  recorded(job: Job): StatusTarget | undefined {
    const recorded = latestPosted(this.services.deliveries, job.id, "status") ?? this.unansweredReply(job.id);
    if (!recorded) return undefined;
    if (recorded.replyToken) this.useToken(recorded.replyToken, job.id);
    return {
      channelId: recorded.channelId,
      messageId: recorded.messageId,
      ...(recorded.replyToken ? { token: recorded.replyToken } : {}),
      ...(recorded.replyExpiresAt ? { expiresAt: recorded.replyExpiresAt } : {}),
      attachmentLimit: DEFAULT_ATTACHMENT_LIMIT,
      deliveryId: recorded.id,
    };
  }

  /** A reply recorded before its defer whose answer never came (the process died): edited as "@original". */
  private unansweredReply(jobId: string): (Delivery & { messageId: string }) | undefined {
    const reply = this.services.deliveries
      .deliveriesForJob(jobId, "status")
      .filter((d) => d.messageId === undefined && d.replyToken !== undefined)
      .at(-1);
    return reply ? { ...reply, messageId: ORIGINAL } : undefined;
  }

  async status(job: Job, target: StatusTarget, model: MessageModel): Promise<StatusTarget | undefined> {
    const files: DiscordFile[] = [];
    if (model.preview)
      files.push({ name: "preview.png", bytes: await this.services.imaging.png(model.preview) });
    return this.edit(job, target, layoutMessage(model, files));
  }

  async result(
    job: Job,
    target: StatusTarget | undefined,
    model: MessageModel,
    files: OutgoingFile[],
  ): Promise<void> {
    if (this.alreadyPosted(job.id, "result")) return;
    const limit = target?.attachmentLimit ?? DEFAULT_ATTACHMENT_LIMIT;
    const { fitted, shrunk } = await fitToLimit(this.services.imaging, files, limit);
    const shown: MessageModel = shrunk
      ? {
          ...model,
          fields: [
            ...model.fields,
            { name: CARD_TEXT.fields.note, value: BOT_MESSAGES.attachmentScaled(limit), inline: false },
          ],
        }
      : model;
    await this.post(job, "result", target, layoutMessage(shown, fitted));
  }

  async failure(job: Job, target: StatusTarget | undefined, model: MessageModel): Promise<void> {
    if (this.alreadyPosted(job.id, "failure")) return;
    await this.post(job, "failure", target, layoutMessage(model));
  }

  /** A DM to the requester (Discord has no ephemeral message outside an interaction). */
  async undeliverable(job: Job, model: MessageModel): Promise<void> {
    if (this.alreadyPosted(job.id, "notice")) return;
    let dm: SendableChannels;
    try {
      dm = await this.client.users.createDM(job.request.requester.userId);
    } catch (err) {
      throw classify(err);
    }
    await this.sendOnce(job.id, "notice", dm, { ...layoutMessage(model), allowedMentions: { users: [] } });
  }

  /**
   * A job's last message: the status message edited into it while the token lives, else a new channel
   * message that mentions the requester (an edit would not notify them), sent once by its delivery key.
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
        if (!isGoneReply(err)) throw classify(err);
        // The relay's handle says so from now on: no later call tries this token again.
        target.expiresAt = 0;
      }
    }
    const channelId = target?.channelId ?? job.request.requester.channelId;
    const channel = await this.channel(channelId);
    await this.sendOnce(job.id, kind, channel, {
      ...payload,
      content: `${payload.content}\n${BOT_MESSAGES.deliveredInChannel}`.slice(0, 2000),
      allowedMentions: { users: [job.request.requester.userId] },
    });
    // A status message posted in the channel (after the token died) has done its work.
    if (target && !target.token) await channel.messages.delete(target.messageId).catch(() => undefined);
  }

  /**
   * Sends a new message once per delivery key (core/keyed-delivery.ts): the key as the nonce with
   * enforce_nonce, looked for among the channel's recent messages. Answers the message's id.
   */
  private async sendOnce(
    jobId: string,
    kind: DeliveryKind,
    channel: SendableChannels,
    payload: MessageCreateOptions,
  ): Promise<string> {
    const { row } = await deliverOnce(
      this.services.deliveries,
      { jobId, platform: "discord", kind, channelId: channel.id },
      {
        make: async (key) => (await channel.send({ ...payload, nonce: key, enforceNonce: true })).id,
        find: async (key, row) => (await this.findByKey(channel, row, key))?.id,
        classify,
      },
      // An interaction's reply recorded before its defer (it has the token) is not a keyed post to take over.
      { resume: true, resumable: (d) => d.replyToken === undefined, log: this.options.log },
    );
    return row.messageId;
  }

  /**
   * The message a delivery key stands for, among the channel's recent messages by this bot: its nonce (Discord
   * echoes it where it keeps it), or for a result the job's own delete button, which only its result carries.
   */
  private async findByKey(
    channel: SendableChannels,
    row: Delivery,
    key: string,
  ): Promise<Message | undefined> {
    const after = SnowflakeUtil.generate({
      timestamp: Math.max(0, row.createdAt - LOOKUP_MARGIN_MS),
    }).toString();
    let recent: Iterable<Message>;
    try {
      recent = (await channel.messages.fetch({ limit: LOOKUP_LIMIT, after })).values();
    } catch (err) {
      throw classify(err);
    }
    const me = this.client.user?.id;
    const deleteButton = encodeButtonId({ action: "delete", jobId: row.jobId });
    for (const message of recent) {
      if (message.author.id !== me) continue;
      if (message.nonce === key) return message;
      if (row.kind === "result" && carriesButton(message, deleteButton)) return message;
    }
    return undefined;
  }

  /** The follow-up an interaction made with this content, among the channel's recent messages. */
  private async findFollowUp(
    interaction: FollowUpInput,
    content: string,
    row: Delivery,
  ): Promise<Message | undefined> {
    const channel = await this.channel(interaction.channelId);
    const after = SnowflakeUtil.generate({
      timestamp: Math.max(0, row.createdAt - LOOKUP_MARGIN_MS),
    }).toString();
    const recent = await channel.messages.fetch({ limit: LOOKUP_LIMIT, after });
    return recent.find(
      (m) => m.interactionMetadata?.id === interaction.interactionId && m.content === content,
    );
  }

  /** A contest's or match's closing message in its channel, by its delivery key (recorded as the job's announcement). */
  async announce(
    ballot: Ballot,
    model: MessageModel,
    files: OutgoingFile[],
    recordAs: string,
  ): Promise<void> {
    const channel = await this.channel(ballot.channelId);
    await this.sendOnce(recordAs, "announcement", channel, {
      ...layoutMessage(
        model,
        files.map((f) => ({ name: f.filename, bytes: f.bytes })),
      ),
      allowedMentions: { users: ballot.ownerId ? [ballot.ownerId] : [] },
    });
  }

  release(jobId: string, target: StatusTarget | undefined): void {
    const token = target?.token;
    if (!token) return;
    const jobs = this.tokenJobs.get(token);
    jobs?.delete(jobId);
    if (jobs && jobs.size > 0) return;
    this.tokenJobs.delete(token);
    this.webhooks.get(token)?.destroy();
    this.webhooks.delete(token);
    this.senders.get(token)?.destroy();
    this.senders.delete(token);
  }

  /** Closes the webhook clients. */
  destroy(): void {
    for (const webhook of [...this.webhooks.values(), ...this.senders.values()]) webhook.destroy();
    this.webhooks.clear();
    this.senders.clear();
    this.tokenJobs.clear();
  }

  private useToken(token: string, jobId: string): void {
    const jobs = this.tokenJobs.get(token) ?? new Set<string>();
    jobs.add(jobId);
    this.tokenJobs.set(token, jobs);
  }

  private alreadyPosted(jobId: string, kind: DeliveryKind): boolean {
    return latestPosted(this.services.deliveries, jobId, kind) !== undefined;
  }

  private record(jobId: string, kind: "result" | "failure", channelId: string, messageId: string): void {
    this.services.deliveries.recordDelivery({ jobId, platform: "discord", kind, channelId, messageId });
  }

  private tokenAlive(target: StatusTarget): boolean {
    return target.token !== undefined && (target.expiresAt ?? 0) - TOKEN_MARGIN_MS > this.now();
  }

  /** Edits the status message; moves it to a channel message once the token is dead (the new handle). */
  private async edit(
    job: Job,
    target: StatusTarget,
    payload: DiscordPayload,
  ): Promise<StatusTarget | undefined> {
    const edit: MessageEditOptions = { ...payload, attachments: [] };
    if (this.tokenAlive(target)) {
      try {
        await this.webhook(target.token as string).editMessage(target.messageId, edit);
        return undefined;
      } catch (err) {
        if (!isGoneReply(err)) throw classify(err);
        target.expiresAt = 0;
      }
    }
    if (target.token) {
      // The reply can no longer be edited: carry on in a channel message that mentions the requester.
      const channel = await this.channel(target.channelId);
      const messageId = await this.sendOnce(job.id, "status", channel, {
        ...payload,
        allowedMentions: { users: [job.request.requester.userId] },
      });
      const delivery = latestPosted(this.services.deliveries, job.id, "status");
      return {
        channelId: target.channelId,
        messageId,
        attachmentLimit: target.attachmentLimit,
        deliveryId: delivery?.id ?? target.deliveryId,
      };
    }
    const channel = await this.channel(target.channelId);
    try {
      await channel.messages.edit(target.messageId, edit);
    } catch (err) {
      throw classify(err);
    }
    return undefined;
  }

  private webhook(token: string): WebhookClient {
    return this.webhookIn(this.webhooks, token, {});
  }

  private sender(token: string): WebhookClient {
    return this.webhookIn(this.senders, token, { retries: 0 });
  }

  private webhookIn(
    clients: Map<string, WebhookClient>,
    token: string,
    rest: { retries?: number },
  ): WebhookClient {
    let webhook = clients.get(token);
    if (!webhook) {
      const api = this.options.apiBase ? { api: this.options.apiBase } : {};
      webhook = new WebhookClient({ id: this.options.applicationId(), token }, { rest: { ...api, ...rest } });
      clients.set(token, webhook);
    }
    return webhook;
  }

  private async channel(channelId: string): Promise<SendableChannels> {
    let channel: Awaited<ReturnType<Client["channels"]["fetch"]>>;
    try {
      channel = await this.client.channels.fetch(channelId);
    } catch (err) {
      throw classify(err);
    }
    if (!channel?.isSendable()) {
      throw new DeliveryError(BOT_MESSAGES.deliveryChannelGone, { permanent: true });
    }
    return channel;
  }
}

/** Files within an upload limit: each one over it re-encoded smaller; `shrunk` says whether any was. */
export async function fitToLimit(
  imaging: Pick<ImagingPort, "fit">,
  files: readonly OutgoingFile[],
  limit: number,
): Promise<{ fitted: DiscordFile[]; shrunk: boolean }> {
  let shrunk = false;
  const fitted: DiscordFile[] = [];
  for (const file of files) {
    let bytes = file.bytes;
    if (bytes.length > limit) {
      bytes = await imaging.fit(bytes, limit);
      shrunk = true;
    }
    fitted.push({ name: file.filename, bytes });
  }
  return { fitted, shrunk };
}

/** 401 / 50027 (Invalid Webhook Token), 10015 (Unknown Webhook): the interaction token is dead. */
export function isDeadToken(err: unknown): boolean {
  return (
    err instanceof DiscordAPIError &&
    (err.status === 401 || (typeof err.code === "number" && DEAD_TOKEN_CODES.has(err.code)))
  );
}

/** The reply cannot be edited: its token is dead, or the reply does not exist (never made, or deleted). */
function isGoneReply(err: unknown): boolean {
  return isDeadToken(err) || (err instanceof DiscordAPIError && err.code === UNKNOWN_MESSAGE);
}

/** Discord's answers that no retry can change, with what the requester is told. */
const PERMANENT_CODES: ReadonlyMap<number, string> = new Map([
  [10003, BOT_MESSAGES.deliveryChannelGone], // Unknown Channel
  [10004, BOT_MESSAGES.deliveryBotRemoved], // Unknown Guild: the bot was removed from the server
  [10013, BOT_MESSAGES.deliveryChannelGone], // Unknown User (a DM to someone who left)
  [50001, BOT_MESSAGES.deliveryNoAccess], // Missing Access
  [50013, BOT_MESSAGES.deliveryNoAccess], // Missing Permissions
  [50007, BOT_MESSAGES.deliveryNoAccess], // Cannot send messages to this user (DMs closed)
  [50008, BOT_MESSAGES.deliveryChannelGone], // Cannot send messages in a non-text channel
]);

/** discord.js's error as the delivery machine's: permanent for the codes above, transient otherwise. */
export function classify(err: unknown): DeliveryError {
  if (err instanceof DeliveryError) return err;
  if (err instanceof DiscordAPIError && typeof err.code === "number") {
    const why = PERMANENT_CODES.get(err.code);
    if (why) return new DeliveryError(why, { permanent: true, cause: err });
  }
  const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return new DeliveryError(`Discord did not take the message (${what})`, { permanent: false, cause: err });
}

/** Whether a message has a button with this custom id. */
function carriesButton(message: Message, customId: string): boolean {
  return message.components.some((row) =>
    "components" in row
      ? (row.components as { customId?: string | null }[]).some((c) => c.customId === customId)
      : false,
  );
}
