import {
  type APIMessage,
  type Client,
  type Collection,
  DiscordAPIError,
  type Message,
  type MessageCreateOptions,
  type MessageEditOptions,
  type SendableChannels,
  SnowflakeUtil,
  WebhookClient,
} from "discord.js";
import type { Announcer } from "../../core/ballots.ts";
import type { BotServices } from "../../core/bot-services.ts";
import { encodeButtonId } from "../../core/buttons.ts";
import { type Delivery, type DeliveryKind, latestPosted, recordedStatus } from "../../core/delivery.ts";
import { DeliveryError } from "../../core/delivery-error.ts";
import { fitResult } from "../../core/image-files.ts";
import type { Job } from "../../core/job.ts";
import { deliverOnce, lookupFrom } from "../../core/keyed-delivery.ts";
import { BOT_MESSAGES } from "../../core/messages.ts";
import { classified, deliveryErrorOf } from "../../core/platform-errors.ts";
import type { MessageModel } from "../../core/presenter.ts";
import type { JobOutlet, OutgoingFile } from "../../core/relay.ts";
import { SharedClients } from "../../core/shared-clients.ts";
import type { Ballot } from "../../core/voting.ts";
import { type DiscordFile, type DiscordPayload, layoutMessage } from "./layout.ts";

/**
 * Where a Discord job's messages go. While the interaction token lives (15 minutes, less a margin) the status
 * message is the interaction's reply, edited through its webhook; after that (or on 401 / 50027) it goes on in
 * a channel message that mentions the requester, and a dead token is never tried again. The relay owns each
 * job's handle (a StatusTarget, bound once Discord answered: core/pending-status.ts); a job taken over at
 * start-up finds it in the deliveries log.
 *
 * Every new message takes core's keyed path (core/keyed-delivery.ts): a channel message carries its delivery
 * key as its nonce with enforce_nonce (Discord itself answers a repeat within a few minutes with the message
 * already made) and is looked for among the channel's recent messages; a follow-up has no nonce, goes through
 * a webhook client that never retries on its own, and is looked up by its interaction.
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

/** The interaction whose reply, or follow-up, is a job's status message. */
export interface InteractionReply {
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
  /**
   * Webhook clients by interaction token: "edits" (idempotent, retried by discord.js), and "sends", which never
   * retries: for follow-ups, which a retry after a lost answer would post twice.
   */
  private readonly tokens = new SharedClients<WebhookClient, "edits" | "sends">(
    (token, use) => {
      const api = this.options.apiBase ? { api: this.options.apiBase } : {};
      const rest = use === "sends" ? { ...api, retries: 0 } : api;
      return new WebhookClient({ id: this.options.applicationId(), token }, { rest });
    },
    (webhook) => webhook.destroy(),
  );

  constructor(
    private readonly client: Client,
    private readonly services: BotServices,
    private readonly options: DiscordOutletOptions,
  ) {}

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  /**
   * Records the interaction's reply as the job's status message; answers the relay's handle on it. Called before
   * the defer: after a crash between the two the next start edits the reply ("@original") instead of leaving
   * "thinking…" unresolved; a reply that never reached Discord answers 10008, and the job goes on in the channel.
   */
  replyStatus(jobId: string, input: InteractionReply, messageId?: string): StatusTarget {
    const expiresAt = input.createdAt + TOKEN_LIFETIME_MS;
    const delivery = this.services.deliveries.recordDelivery({
      jobId,
      platform: "discord",
      kind: "status",
      channelId: input.channelId,
      ...(messageId ? { messageId } : {}),
      replyToken: input.token,
      replyExpiresAt: expiresAt,
    });
    this.tokens.use(input.token, jobId);
    return {
      channelId: input.channelId,
      // Before Discord has answered the defer, the reply is "@original" (the webhook's name for it).
      messageId: messageId ?? ORIGINAL,
      token: input.token,
      expiresAt,
      attachmentLimit: input.attachmentLimit,
      deliveryId: delivery.id,
    };
  }

  /** The reply's own id, once Discord named it in the defer's answer. */
  replyPosted(target: StatusTarget, messageId: string): void {
    target.messageId = messageId;
    this.services.deliveries.updateDelivery(target.deliveryId, { messageId });
  }

  /** A job's status message as a follow-up of `interaction` (upscales, the arena's B side), once by its key. */
  async followUpStatus(jobId: string, interaction: InteractionReply, content: string): Promise<StatusTarget> {
    const { row } = await deliverOnce(
      this.services.deliveries,
      { jobId, platform: "discord", kind: "status", channelId: interaction.channelId },
      {
        make: async () =>
          (
            await this.tokens
              .get(interaction.token, "sends")
              .send({ content, allowedMentions: { users: [] } })
          ).id,
        find: async (_key, row) => {
          const recent = await this.recent(await this.channel(interaction.channelId), row);
          return recent.find(
            (m) => m.interactionMetadata?.id === interaction.interactionId && m.content === content,
          )?.id;
        },
        classify,
      },
      { resume: false, log: this.options.log },
    );
    return this.replyStatus(jobId, interaction, row.messageId);
  }

  recorded(job: Job): StatusTarget | undefined {
    const recorded = recordedStatus(this.services.deliveries, job.id, ORIGINAL);
    if (!recorded) return undefined;
    if (recorded.replyToken) this.tokens.use(recorded.replyToken, job.id);
    return {
      channelId: recorded.channelId,
      messageId: recorded.messageId,
      ...(recorded.replyToken ? { token: recorded.replyToken } : {}),
      ...(recorded.replyExpiresAt ? { expiresAt: recorded.replyExpiresAt } : {}),
      attachmentLimit: DEFAULT_ATTACHMENT_LIMIT,
      deliveryId: recorded.id,
    };
  }

  async status(job: Job, target: StatusTarget, model: MessageModel): Promise<StatusTarget | undefined> {
    const files: DiscordFile[] = [];
    if (model.preview)
      files.push({ filename: "preview.png", bytes: await this.services.imaging.png(model.preview) });
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
    const fitted = await fitResult(this.services.imaging, model, files, limit);
    await this.post(job, "result", target, layoutMessage(fitted.model, fitted.files));
  }

  async failure(job: Job, target: StatusTarget | undefined, model: MessageModel): Promise<void> {
    if (this.alreadyPosted(job.id, "failure")) return;
    await this.post(job, "failure", target, layoutMessage(model));
  }

  /** A DM to the requester (Discord has no ephemeral message outside an interaction). */
  async undeliverable(job: Job, model: MessageModel): Promise<void> {
    if (this.alreadyPosted(job.id, "notice")) return;
    const dm = await classified(classify, () => this.client.users.createDM(job.request.requester.userId));
    await this.sendOnce(job.id, "notice", dm, { ...layoutMessage(model), allowedMentions: { users: [] } });
  }

  /**
   * A job's last message: the reply edited into it while the token lives, else a channel message that
   * mentions the requester (an edit would not notify them).
   */
  private async post(
    job: Job,
    kind: "result" | "failure",
    target: StatusTarget | undefined,
    payload: DiscordPayload,
  ): Promise<void> {
    const edited = target && (await this.editReply(target, { ...payload, attachments: [] }));
    if (target && edited) {
      this.services.deliveries.recordDelivery({
        jobId: job.id,
        platform: "discord",
        kind,
        channelId: target.channelId,
        messageId: edited.id,
      });
      return;
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

  /** Sends a new message once per delivery key (its nonce); answers the message's id. */
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
        find: async (key, row) => {
          // Its nonce (Discord echoes it where it keeps it), or for a result the job's own delete button.
          const me = this.client.user?.id;
          const deleteButton = encodeButtonId({ action: "delete", jobId: row.jobId });
          const mine = (await this.recent(channel, row)).filter((m) => m.author.id === me);
          return mine.find(
            (m) => m.nonce === key || (row.kind === "result" && carriesButton(m, deleteButton)),
          )?.id;
        },
        classify,
      },
      // An interaction's reply recorded before its defer (it has the token) is not a keyed post to take over.
      { resume: true, resumable: (d) => d.replyToken === undefined, log: this.options.log },
    );
    return row.messageId;
  }

  /** The channel's messages since a little before `row` was recorded (one page), to look a post up in. */
  private async recent(channel: SendableChannels, row: Delivery): Promise<Collection<string, Message>> {
    const after = SnowflakeUtil.generate({ timestamp: lookupFrom(row) }).toString();
    return classified(classify, () => channel.messages.fetch({ limit: LOOKUP_LIMIT, after }));
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
      ...layoutMessage(model, files),
      allowedMentions: { users: ballot.ownerId ? [ballot.ownerId] : [] },
    });
  }

  release(jobId: string, target: StatusTarget | undefined): void {
    if (target?.token) this.tokens.release(target.token, jobId);
  }

  /** Closes the webhook clients. */
  destroy(): void {
    this.tokens.closeAll();
  }

  private alreadyPosted(jobId: string, kind: DeliveryKind): boolean {
    return latestPosted(this.services.deliveries, jobId, kind) !== undefined;
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
    if (await this.editReply(target, edit)) return undefined;
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
    await classified(classify, () => channel.messages.edit(target.messageId, edit));
    return undefined;
  }

  /** Edits the interaction's reply while its token lives; undefined once it cannot (the token is dead). */
  private async editReply(target: StatusTarget, edit: MessageEditOptions): Promise<APIMessage | undefined> {
    if (!this.tokenAlive(target)) return undefined;
    try {
      return await this.tokens.get(target.token as string, "edits").editMessage(target.messageId, edit);
    } catch (err) {
      if (!isGoneReply(err)) throw classify(err);
      // The relay's handle says so from now on: no later call tries this token again.
      target.expiresAt = 0;
      return undefined;
    }
  }

  private async channel(channelId: string): Promise<SendableChannels> {
    const channel = await classified(classify, () => this.client.channels.fetch(channelId));
    if (!channel?.isSendable())
      throw new DeliveryError(BOT_MESSAGES.deliveryChannelGone, { permanent: true });
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
  return deliveryErrorOf({ service: "Discord", codeOf: discordCode, permanent: PERMANENT_CODES }, err);
}

function discordCode(err: unknown): number | undefined {
  return err instanceof DiscordAPIError && typeof err.code === "number" ? err.code : undefined;
}

/** Whether a message has a button with this custom id. */
function carriesButton(message: Message, customId: string): boolean {
  return message.components.some((row) =>
    "components" in row
      ? (row.components as { customId?: string | null }[]).some((c) => c.customId === customId)
      : false,
  );
}
