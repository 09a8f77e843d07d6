import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import {
  Gateway,
  type GatewayConnectionRecord,
  type HeartbeatRecord,
  type IdentifyRecord,
  type ResumeRecord,
} from "./gateway.ts";
import {
  ALL_PERMISSIONS,
  applicationObject,
  botToken,
  DEFAULT_APPLICATION_ID,
  DEFAULT_ATTACHMENT_SIZE_LIMIT,
  DEFAULT_OWNER_ID,
  DEFAULT_USER_ID,
  defaultGuilds,
  type FakeChannel,
  type FakeGuild,
  type FakeGuildOptions,
  type FakeMessage,
  type FakeUser,
  guildCreate,
  interactionBase,
  interactionToken,
  MEMBER_PERMISSIONS,
  MessageFlag,
  normalizeGuild,
  Permission,
  pngSize,
  readyPayload,
  SnowflakeFactory,
  sniffContentType,
  userObject,
} from "./payloads.ts";
import { RestApi } from "./rest.ts";
import {
  DiscordState,
  type RateLimitRule,
  type RecordedCallback,
  type RecordedInteraction,
  type RecordedRequest,
  type StoredCommand,
  type Violation,
} from "./state.ts";

/**
 * A local Discord for tests: the real discord.js (14.28, unmodified) logs in to it and talks to it over HTTP
 * and WebSocket on 127.0.0.1. It speaks REST v10 (gateway info, commands, interaction callbacks, the
 * interaction webhook's @original and follow-ups, channel messages, guilds) with JSON and multipart
 * (`payload_json` + `files[n]`) bodies, and the gateway (HELLO, IDENTIFY → READY + GUILD_CREATE, heartbeats,
 * RESUME with replay). Tests dispatch interactions (slash commands, button presses, message context menus)
 * and read back what the bot did: each interaction's callback, @original message and follow-ups, messages
 * by channel with their attachments' bytes, and every request.
 *
 * Platform rules are enforced as Discord enforces them: request bodies are validated against Discord's
 * OpenAPI document plus the rules it leaves out (400 Invalid Form Body, recorded in `violations`); a callback
 * after 3 s is 404 Unknown interaction, a second one 400 already acknowledged; interaction tokens expire
 * after 15 minutes (401 Invalid Webhook Token); uploads over the limit are 413; `rateLimitNext` scripts 429s.
 * Both time windows run on an injectable clock (`now`).
 *
 * Point discord.js at it with
 * `new Client({ intents, rest: { api: fake.apiBase } })` and `client.login(fake.token)`.
 */

export type { GatewayConnectionRecord, HeartbeatRecord, IdentifyRecord, ResumeRecord } from "./gateway.ts";
export { PRIVILEGED_INTENTS } from "./gateway.ts";
export {
  ALL_PERMISSIONS,
  DEFAULT_APPLICATION_ID,
  DEFAULT_ATTACHMENT_SIZE_LIMIT,
  DEFAULT_CHANNEL_ID,
  DEFAULT_GUILD_ID,
  DEFAULT_NSFW_CHANNEL_ID,
  DEFAULT_OWNER_ID,
  DEFAULT_USER_ID,
  type FakeAttachment,
  type FakeChannel,
  type FakeChannelOptions,
  type FakeGuild,
  type FakeGuildOptions,
  type FakeMessage,
  type FakeUser,
  MEMBER_PERMISSIONS,
  MessageFlag,
  Permission,
} from "./payloads.ts";
export { validateResponseSchema } from "./spec-validator.ts";
export type {
  RecordedCallback,
  RecordedFile,
  RecordedInteraction,
  RecordedRequest,
  StoredCommand,
  Violation,
} from "./state.ts";

/** Discord's window for the first response to an interaction. */
export const CALLBACK_WINDOW_MS = 3_000;
/** How long an interaction token works for follow-ups and edits. */
export const TOKEN_LIFETIME_MS = 15 * 60 * 1000;
/** Discord's default heartbeat interval. */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 41_250;
/** The GUILD_MESSAGES intent: with it the fake also sends MESSAGE_CREATE/UPDATE/DELETE. */
const GUILD_MESSAGES_INTENT = 1 << 9;
/** The user a message context menu targets unless the test names an author. */
const DEFAULT_AUTHOR_ID = "1200000000000000012";

/** Options of {@link FakeDiscord.start}; every one has a default. */
export interface FakeDiscordOptions {
  /** The bot token the fake accepts (default: a random one in Discord's format). */
  token?: string;
  /** The application id (default DEFAULT_APPLICATION_ID); the bot user has the same id, as on Discord. */
  applicationId?: string;
  /** The bot user (default "Easel", id = application id). */
  botUser?: Partial<FakeUser>;
  /** Guilds the bot is in (default: one guild, channels "general" and NSFW "after-dark"). */
  guilds?: FakeGuildOptions[];
  /** HELLO's heartbeat_interval (default 41250 ms, Discord's). */
  heartbeatIntervalMs?: number;
  /** Interactions' attachment_size_limit in bytes (default 10 MiB). */
  attachmentSizeLimit?: number;
  /** Upload limit of channel messages, for channels that do not set their own (default 10 MiB). */
  channelAttachmentSizeLimit?: number;
  /** The clock behind the 3-second and 15-minute windows and message timestamps (default Date.now). */
  now?: () => number;
  /** Intents IDENTIFY may not ask for (closes 4014); default none, e.g. PRIVILEGED_INTENTS to be strict. */
  disallowedIntents?: number;
}

/** Who triggers an interaction, and where. */
export interface InteractionActorOptions {
  /** The member (default DEFAULT_USER_ID, "alice"). */
  userId?: string;
  userName?: string;
  /** A bot account (user.bot = true). */
  bot?: boolean;
  /** The channel (default: the guild's first channel); its guild wins over `guildId`. */
  channelId?: string;
  /** The guild (default: the first). */
  guildId?: string;
  /** Holds the Admin role: permissions include ADMINISTRATOR (and so every other bit). */
  admin?: boolean;
  /** Holds the Manager role: permissions include MANAGE_GUILD. */
  manager?: boolean;
  /** Exact permissions, overriding admin/manager. */
  permissions?: bigint | string;
  /** The user's client locale (default en-US). */
  locale?: string;
  /** This interaction's attachment_size_limit (default: the fake's). */
  attachmentSizeLimit?: number;
}

/** A file a user attaches to a slash command option of type ATTACHMENT (11). */
export interface FakeUpload {
  filename: string;
  bytes: Uint8Array;
  contentType?: string;
}

/** A slash command option as the user filled it in; `type` is inferred from `value` when left out. */
export interface SlashOption {
  name: string;
  /** 1 subcommand, 2 group, 3 string, 4 integer, 5 boolean, 10 number, 11 attachment… */
  type?: number;
  value?: string | number | boolean | FakeUpload;
  /** A subcommand's (or group's) own options. */
  options?: SlashOption[];
  focused?: boolean;
}

/** What {@link FakeDiscord.slashCommand} sends. */
export interface SlashCommandOptions extends InteractionActorOptions {
  name: string;
  options?: SlashOption[];
}

/** What {@link FakeDiscord.pressButton} sends. */
export interface ButtonPressOptions extends InteractionActorOptions {
  /** The message the button is on (it must be in the fake's store). */
  messageId: string;
  customId: string;
  /** 2 button (default), 3 string select… */
  componentType?: number;
  /** Selected values, for select menus. */
  values?: string[];
}

/** What {@link FakeDiscord.messageContextMenu} sends. */
export interface MessageContextMenuOptions extends InteractionActorOptions {
  name: string;
  /** An existing message by id, or a user message the fake posts first. */
  targetMessage: {
    id?: string;
    content?: string;
    authorId?: string;
    authorName?: string;
    authorBot?: boolean;
  };
}

/** What a dispatch helper returns: enough to find the interaction again. */
export interface InteractionHandle {
  id: string;
  token: string;
  /** performance.now() right before the INTERACTION_CREATE frame was sent. */
  sentAt: number;
  /** The interaction object as sent. */
  payload: Record<string, unknown>;
}

/** Which requests a scripted fault applies to: "POST /channels/{channel_id}/messages", a template, a path, a
 * RegExp over "METHOD /path", or a predicate. */
export type RequestMatcher = string | RegExp | ((request: RecordedRequest) => boolean);

/** A scripted rate limit. */
export interface RateLimitOptions {
  /** Retry-After and retry_after, in seconds (fractions allowed, unlike Discord, to keep tests fast). */
  retryAfterS: number;
  /** A global limit (X-RateLimit-Global, scope "global"). */
  global?: boolean;
  /** How many matching requests get a 429 (default 1). */
  count?: number;
  /** X-RateLimit-Scope (default "user", or "global" when global). */
  scope?: "user" | "global" | "shared";
}

type Handle = InteractionHandle | { id: string } | string;

/** A sub-command option (`/settings set key:… value:…`) with its own options, from name → value. */
export function subcommand(
  name: string,
  values: Record<string, string | number | boolean> = {},
): SlashOption {
  return { name, type: 1, options: Object.entries(values).map(([n, value]) => ({ name: n, value })) };
}

/** The fake Discord. */
export class FakeDiscord {
  /** REST base for discord.js' `rest.api` option: `http://127.0.0.1:PORT/api` (discord.js appends /v10). */
  readonly apiBase: string;
  /** Where attachment URLs point: `http://127.0.0.1:PORT`. */
  readonly origin: string;
  /** The gateway URL GET /gateway/bot hands out: `ws://127.0.0.1:PORT/gateway`. */
  readonly gatewayUrl: string;
  readonly token: string;
  readonly applicationId: string;
  readonly botUser: FakeUser;
  readonly guilds: FakeGuild[];
  /** Interactions' attachment_size_limit for new interactions. */
  attachmentSizeLimit: number;
  private readonly state: DiscordState;
  private readonly gateway: Gateway;
  private readonly clock: () => number;

  private constructor(
    private readonly server: Server,
    port: number,
    options: FakeDiscordOptions,
  ) {
    this.origin = `http://127.0.0.1:${port}`;
    this.apiBase = `${this.origin}/api`;
    this.gatewayUrl = `ws://127.0.0.1:${port}/gateway`;
    this.clock = options.now ?? Date.now;
    this.applicationId = options.applicationId ?? DEFAULT_APPLICATION_ID;
    this.botUser = {
      id: this.applicationId,
      username: "Easel",
      bot: true,
      globalName: null,
      ...options.botUser,
    };
    this.token = options.token ?? botToken(this.botUser.id);
    this.attachmentSizeLimit = options.attachmentSizeLimit ?? DEFAULT_ATTACHMENT_SIZE_LIMIT;
    const ids = new SnowflakeFactory(this.clock);
    const channelLimit = options.channelAttachmentSizeLimit ?? DEFAULT_ATTACHMENT_SIZE_LIMIT;
    const joinedAt = this.clock() - 30 * 24 * 3600 * 1000;
    this.guilds = (options.guilds ?? defaultGuilds()).map((g) =>
      normalizeGuild(g, ids, channelLimit, joinedAt),
    );
    this.state = new DiscordState(ids, this.clock, this.guilds, this.botUser, this.origin);
    this.state.users.set(this.botUser.id, this.botUser);

    const verifyKey = randomBytes(32).toString("hex");
    const ownerId = this.guilds[0]?.ownerId ?? DEFAULT_OWNER_ID;
    const application = () =>
      applicationObject(this.applicationId, this.botUser, ownerId, this.guilds.length, verifyKey);
    this.gateway = new Gateway(
      {
        token: this.token,
        heartbeatIntervalMs: options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS,
        disallowedIntents: options.disallowedIntents ?? 0,
        ready: (sessionId, resumeGatewayUrl, shard) =>
          readyPayload(this.botUser, this.guilds, {
            applicationId: this.applicationId,
            sessionId,
            resumeGatewayUrl,
            shard,
          }),
        guildCreates: () => this.guilds.map((g) => guildCreate(g, this.botUser)),
      },
      this.gatewayUrl,
      `ws://127.0.0.1:${port}/gateway/resume`,
    );
    this.gateway.onChange = () => this.state.notify();
    this.state.onMessageEvent = (t, stored) => {
      if (!this.gateway.hasSession || (this.gateway.intents & GUILD_MESSAGES_INTENT) === 0) return;
      if ((stored.message.flags & MessageFlag.Ephemeral) !== 0) return;
      const guildId = stored.guildId;
      if (t === "MESSAGE_DELETE") {
        this.gateway.dispatch(t, {
          id: stored.message.id,
          channel_id: stored.message.channel_id,
          guild_id: guildId,
        });
        return;
      }
      // A copy: a dispatch kept for a resume must not change with later edits.
      this.gateway.dispatch(t, {
        ...structuredClone(stored.message),
        ...(guildId ? { guild_id: guildId } : {}),
      });
    };
    const rest = new RestApi(this.state, {
      token: this.token,
      applicationId: this.applicationId,
      gatewayUrl: this.gatewayUrl,
      callbackWindowMs: CALLBACK_WINDOW_MS,
      tokenLifetimeMs: TOKEN_LIFETIME_MS,
      application,
    });
    server.on("request", (req, res) => {
      rest.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ message: `fake Discord bug: ${String(err)}`, code: 0 }));
      });
    });
    server.on("upgrade", (req, socket, head) => {
      const path = new URL(req.url ?? "/", "http://fake").pathname;
      if (
        path === "/gateway" ||
        path === "/gateway/" ||
        path === "/gateway/resume" ||
        path === "/gateway/resume/"
      ) {
        this.gateway.handleUpgrade(req, socket, head);
      } else {
        socket.destroy();
      }
    });
  }

  /** Starts a fake on a free port of 127.0.0.1. */
  static async start(options: FakeDiscordOptions = {}): Promise<FakeDiscord> {
    const server = createServer();
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    return new FakeDiscord(server, (server.address() as AddressInfo).port, options);
  }

  /** Stops everything now: gateway connections, HTTP connections, the listener, pending waits. */
  async close(): Promise<void> {
    this.gateway.close();
    this.state.cancelWaits(new Error("fake Discord closed"));
    this.server.closeAllConnections();
    await new Promise<void>((done) => this.server.close(() => done()));
  }

  // ---- What happened ----------------------------------------------------------------------------------------

  /** Every REST request, in arrival order. */
  get requests(): readonly RecordedRequest[] {
    return this.state.requests;
  }

  /** Requests Discord would have refused as malformed; a well-behaved bot leaves this empty. */
  get violations(): readonly Violation[] {
    return this.state.violations;
  }

  /** Every interaction dispatched, in order. */
  get interactions(): RecordedInteraction[] {
    return [...this.state.interactions.values()];
  }

  /** Every IDENTIFY the gateway received (token validity, intents, shard, compress). */
  get identifies(): readonly IdentifyRecord[] {
    return this.gateway.identifies;
  }

  /** Every RESUME the gateway received, and whether it resumed and how many events it replayed. */
  get resumes(): readonly ResumeRecord[] {
    return this.gateway.resumes;
  }

  /** Every HEARTBEAT the gateway received (each was acknowledged). */
  get heartbeats(): readonly HeartbeatRecord[] {
    return this.gateway.heartbeats;
  }

  /** Every WebSocket connection: URL and query, compression, open/close times, close code. */
  get gatewayConnections(): readonly GatewayConnectionRecord[] {
    return this.gateway.connections;
  }

  /** Whether a client is connected and identified (or resumed). */
  get gatewayConnected(): boolean {
    return this.gateway.connected;
  }

  /** Registered commands: global, or of one guild. */
  commands(guildId?: string): StoredCommand[] {
    return guildId === undefined ? this.state.globalCommands : (this.state.guildCommands.get(guildId) ?? []);
  }

  /** Messages of a channel, oldest first (interaction responses and ephemeral ones included). */
  messages(channelId: string): FakeMessage[] {
    return this.state.channelMessages(channelId);
  }

  /** A message by id (undefined once deleted). */
  message(id: string): FakeMessage | undefined {
    return this.state.findMessage(id)?.message;
  }

  /** The bytes of a message's `index`th attachment. */
  attachmentBytes(messageId: string, index = 0): Uint8Array {
    const stored = this.state.findMessage(messageId);
    const attachment = stored?.message.attachments[index];
    const bytes = attachment ? stored?.bytes.get(attachment.id) : undefined;
    if (!bytes) throw new Error(`fake Discord: message ${messageId} has no attachment ${index}`);
    return bytes;
  }

  /** The recorded interaction. */
  interaction(handle: Handle): RecordedInteraction {
    const id = typeof handle === "string" ? handle : handle.id;
    const found = this.state.interactions.get(id);
    if (!found) throw new Error(`fake Discord: no interaction ${id}`);
    return found;
  }

  /** The callback the fake accepted for an interaction, if any yet. */
  callback(handle: Handle): RecordedCallback | undefined {
    return this.interaction(handle).callback;
  }

  /** Resolves with the accepted callback of an interaction, now or when it comes. */
  waitForCallback(handle: Handle, timeoutMs = 5_000): Promise<RecordedCallback> {
    const interaction = this.interaction(handle);
    return this.state.waitUntil(
      () => interaction.callback,
      timeoutMs,
      `a callback to interaction ${interaction.id}`,
    );
  }

  /** The interaction's @original message (the response, or the component's message after type 6/7). */
  originalMessage(handle: Handle): FakeMessage | undefined {
    const id = this.interaction(handle).originalMessageId;
    return id ? this.message(id) : undefined;
  }

  /** Resolves with @original once it satisfies `ready` (default: no longer "thinking…"). */
  waitForOriginalMessage(
    handle: Handle,
    ready: (message: FakeMessage) => boolean = (m) => (m.flags & MessageFlag.Loading) === 0,
    timeoutMs = 5_000,
  ): Promise<FakeMessage> {
    return this.state.waitUntil(
      () => {
        const m = this.originalMessage(handle);
        return m && ready(m) ? m : undefined;
      },
      timeoutMs,
      "the original response",
    );
  }

  /** The interaction's follow-up messages, oldest first. */
  followUps(handle: Handle): FakeMessage[] {
    return this.interaction(handle).followUpIds.flatMap((id) => {
      const m = this.message(id);
      return m ? [m] : [];
    });
  }

  /** Resolves with the first finished request (past or future) matching `predicate`. */
  waitFor(predicate: (request: RecordedRequest) => boolean, timeoutMs = 5_000): Promise<RecordedRequest> {
    return this.state.waitUntil(
      () => this.state.requests.find((r) => r.status !== 0 && predicate(r)),
      timeoutMs,
      "a matching request",
    );
  }

  /**
   * Resolves once `probe` returns something other than undefined/false/null: checked on every fake event and
   * every 10 ms, so it may also watch the client's side.
   */
  until<T>(probe: () => T | undefined | false | null, timeoutMs = 5_000, what = "a condition"): Promise<T> {
    return this.state.waitUntil(
      () => {
        const v = probe();
        return v === false || v === null ? undefined : v;
      },
      timeoutMs,
      what,
      10,
    );
  }

  // ---- Faults -----------------------------------------------------------------------------------------------

  /** Answers the next matching request(s) with 429 and Discord's rate-limit headers. */
  rateLimitNext(matcher: RequestMatcher, options: RateLimitOptions): void {
    const rule: RateLimitRule = {
      matches: toPredicate(matcher),
      retryAfterS: options.retryAfterS,
      global: options.global ?? false,
      scope: options.scope ?? (options.global ? "global" : "user"),
      remaining: options.count ?? 1,
    };
    this.state.rateLimits.push(rule);
  }

  /**
   * Lets the next matching request(s) take effect (the message is made, the edit applied) and then loses the
   * answer: HTTP 500, or (`how: "drop"`) the connection closed without one. What the client does next (discord.js
   * retries a 500 on its own, unless told not to) is what a test of "answer lost after success" looks at.
   */
  loseAnswerNext(matcher: RequestMatcher, options: { count?: number; how?: "500" | "drop" } = {}): void {
    this.state.lostAnswers.push({
      matches: toPredicate(matcher),
      how: options.how ?? "500",
      remaining: options.count ?? 1,
    });
  }

  /**
   * Holds the next matching request(s) without ever answering: `when: "before"` it takes effect (it never does),
   * `"after"` (default) once it has (the message is made, the edit applied). Resolves with the request at the
   * moment it is held, so a test can act right then (SIGKILL the bot: "posted, not recorded"). The request
   * stays unanswered until the client goes away.
   */
  holdNext(
    matcher: RequestMatcher,
    options: { when?: "before" | "after"; count?: number } = {},
  ): Promise<RecordedRequest> {
    return new Promise((onHeld) => {
      this.state.holds.push({
        matches: toPredicate(matcher),
        when: options.when ?? "after",
        remaining: options.count ?? 1,
        onHeld,
      });
    });
  }

  /** Drops every hold rule not taken yet (a test that no longer wants them). */
  clearHolds(): void {
    this.state.holds.splice(0);
  }

  /** Deletes a channel: every later request naming it is 404 Unknown Channel (10003). */
  removeChannel(channelId: string): void {
    for (const guild of this.state.guilds) {
      const i = guild.channels.findIndex((c) => c.id === channelId);
      if (i >= 0) guild.channels.splice(i, 1);
    }
  }

  /** The bot's DM messages with a user (POST /users/@me/channels, then the DM channel), oldest first. */
  dmMessages(userId: string): FakeMessage[] {
    const dm = this.state.dmChannels.get(userId);
    return dm ? this.state.channelMessages(dm.id) : [];
  }

  /** The user does not take DMs from the bot: posting to the DM answers 50007. */
  closeDms(userId: string): void {
    this.state.closedDms.add(userId);
  }

  /** Closes the gateway connection(s): with `code` (4000 lets the client resume, 1000 makes it identify
   * again), or abruptly without a close frame when no code is given. Returns how many were closed. */
  dropGateway(code?: number): number {
    return this.gateway.drop(code);
  }

  /** Sends op 7 RECONNECT. */
  requestReconnect(): void {
    this.gateway.requestReconnect();
  }

  /** Sends op 9 INVALID_SESSION. */
  invalidateSession(resumable = false): void {
    this.gateway.invalidateSession(resumable);
  }

  /** Sends any dispatch event (op 0) to the connected client; returns its sequence number. */
  dispatch(event: string, data: unknown): number {
    return this.gateway.dispatch(event, data).seq;
  }

  // ---- Interactions -----------------------------------------------------------------------------------------

  /** Dispatches a CHAT_INPUT command (INTERACTION_CREATE type 2, data.type 1). */
  slashCommand(options: SlashCommandOptions): InteractionHandle {
    const actor = this.actor(options);
    const resolved: Record<string, Record<string, unknown>> = {};
    const command = this.findRegistered(options.name, 1, actor.guild.id);
    const data: Record<string, unknown> = {
      id: command?.id ?? this.state.ids.next(),
      name: options.name,
      type: 1,
      ...(command?.guild_id ? { guild_id: command.guild_id } : {}),
      ...(options.options ? { options: options.options.map((o) => this.optionPayload(o, resolved)) } : {}),
    };
    if (Object.keys(resolved).length > 0) data.resolved = resolved;
    return this.dispatchInteraction(2, actor, options, data, {});
  }

  /** Dispatches a button press (type 3, MESSAGE_COMPONENT) on a stored message. */
  pressButton(options: ButtonPressOptions): InteractionHandle {
    const stored = this.state.findMessage(options.messageId);
    if (!stored) throw new Error(`fake Discord: no message ${options.messageId} to press a button on`);
    const actor = this.actor({ ...options, channelId: stored.message.channel_id });
    const componentType = options.componentType ?? 2;
    const data = {
      custom_id: options.customId,
      component_type: componentType,
      ...(componentType === 2 ? {} : { values: options.values ?? [] }),
    };
    return this.dispatchInteraction(3, actor, options, data, {
      message: structuredClone(stored.message),
      sourceMessageId: stored.message.id,
    });
  }

  /** Dispatches a MESSAGE context menu command (type 2, data.type 3) on a message (posted first if new). */
  messageContextMenu(options: MessageContextMenuOptions): InteractionHandle {
    const actor = this.actor(options);
    const t = options.targetMessage;
    let target = t.id ? this.state.findMessage(t.id)?.message : undefined;
    if (!target) {
      const author: FakeUser = {
        id: t.authorId ?? DEFAULT_AUTHOR_ID,
        username: t.authorName ?? this.state.users.get(t.authorId ?? DEFAULT_AUTHOR_ID)?.username ?? "bob",
        ...(t.authorBot ? { bot: true } : {}),
      };
      this.state.users.set(author.id, author);
      target = this.state.createMessage({
        channel: actor.channel,
        author: userObject(author),
        body: { content: t.content ?? "" },
        files: [],
        type: 0,
      });
    }
    const command = this.findRegistered(options.name, 3, actor.guild.id);
    const data = {
      id: command?.id ?? this.state.ids.next(),
      name: options.name,
      type: 3,
      target_id: target.id,
      resolved: { messages: { [target.id]: structuredClone(target) } },
      ...(command?.guild_id ? { guild_id: command.guild_id } : {}),
    };
    return this.dispatchInteraction(2, actor, options, data, {});
  }

  private findRegistered(name: string, type: number, guildId: string): StoredCommand | undefined {
    const match = (c: StoredCommand) => c.name === name && c.type === type;
    return (this.state.guildCommands.get(guildId) ?? []).find(match) ?? this.state.globalCommands.find(match);
  }

  private optionPayload(option: SlashOption, resolved: Record<string, Record<string, unknown>>): unknown {
    const { value } = option;
    let type = option.type;
    if (type === undefined) {
      if (option.options) type = option.options.some((o) => o.options) ? 2 : 1;
      else if (typeof value === "string") type = 3;
      else if (typeof value === "boolean") type = 5;
      else if (typeof value === "number") type = Number.isInteger(value) ? 4 : 10;
      else type = 11;
    }
    if (type === 1 || type === 2) {
      return {
        name: option.name,
        type,
        options: (option.options ?? []).map((o) => this.optionPayload(o, resolved)),
      };
    }
    let wire: unknown = value;
    if (type === 11 && typeof value === "object") {
      const id = this.state.ids.next();
      this.state.uploads.set(id, value.bytes);
      const size = pngSize(value.bytes);
      const contentType = sniffContentType(value.bytes, value.contentType);
      const url = `${this.origin}/ephemeral-attachments/${this.applicationId}/${id}/${encodeURIComponent(value.filename)}`;
      resolved.attachments ??= {};
      resolved.attachments[id] = {
        id,
        filename: value.filename,
        size: value.bytes.length,
        url,
        proxy_url: url.replace(this.origin, `${this.origin}/media`),
        ...(contentType ? { content_type: contentType } : {}),
        ...(size ? { width: size.width, height: size.height } : {}),
        ephemeral: true,
      };
      wire = id;
    }
    return { name: option.name, type, value: wire, ...(option.focused ? { focused: true } : {}) };
  }

  private actor(options: InteractionActorOptions) {
    const channel = options.channelId
      ? this.findChannel(options.channelId)
      : this.guildFor(options.guildId).channels.find((c) => c.type === 0);
    if (!channel) throw new Error("fake Discord: the guild has no text channel");
    const guild = this.guildFor(channel.guildId);
    const known = this.state.users.get(options.userId ?? DEFAULT_USER_ID);
    const user: FakeUser = {
      id: options.userId ?? DEFAULT_USER_ID,
      username:
        options.userName ?? known?.username ?? (options.userId ? `user${options.userId.slice(-4)}` : "alice"),
      ...(options.bot ? { bot: true } : {}),
    };
    this.state.users.set(user.id, user);
    const roles = [
      ...(options.admin ? [guild.adminRoleId] : []),
      ...(options.manager ? [guild.managerRoleId] : []),
    ];
    let permissions = MEMBER_PERMISSIONS;
    if (options.manager) permissions |= Permission.ManageGuild;
    // Administrators and the owner hold every permission; Discord sends them all.
    if (options.admin || user.id === guild.ownerId) permissions = ALL_PERMISSIONS;
    if (options.permissions !== undefined) permissions = BigInt(options.permissions);
    return {
      guild,
      channel,
      user,
      roles,
      permissions: permissions.toString(),
      locale: options.locale ?? "en-US",
    };
  }

  private guildFor(id: string | undefined): FakeGuild {
    const guild = id === undefined ? this.guilds[0] : this.state.guild(id);
    if (!guild) throw new Error(`fake Discord: no guild ${id ?? "(none configured)"}`);
    return guild;
  }

  private findChannel(id: string): FakeChannel {
    const channel = this.state.channel(id);
    if (!channel) throw new Error(`fake Discord: no channel ${id}`);
    return channel;
  }

  private dispatchInteraction(
    type: number,
    actor: ReturnType<FakeDiscord["actor"]>,
    options: InteractionActorOptions,
    data: Record<string, unknown>,
    extra: { message?: FakeMessage; sourceMessageId?: string },
  ): InteractionHandle {
    const id = this.state.ids.next();
    const token = interactionToken();
    const payload: Record<string, unknown> = {
      ...interactionBase(actor, {
        id,
        token,
        applicationId: this.applicationId,
        type,
        attachmentSizeLimit: options.attachmentSizeLimit ?? this.attachmentSizeLimit,
        memberJoinedAt: actor.guild.joinedAt,
      }),
      data,
      ...(extra.message ? { message: extra.message } : {}),
    };
    const record: RecordedInteraction = {
      id,
      token,
      type,
      payload,
      createdAt: this.clock(),
      sentAt: 0,
      seq: 0,
      guildId: actor.guild.id,
      channelId: actor.channel.id,
      user: actor.user,
      ...(extra.sourceMessageId ? { sourceMessageId: extra.sourceMessageId } : {}),
      callbackAttempts: [],
      followUpIds: [],
    };
    // Registered before the frame goes out: a fast bot may answer before dispatch() returns control.
    this.state.interactions.set(id, record);
    this.state.interactionsByToken.set(token, record);
    const { seq, sentAt } = this.gateway.dispatch("INTERACTION_CREATE", payload);
    record.seq = seq;
    record.sentAt = sentAt;
    return { id, token, sentAt, payload };
  }
}

function toPredicate(matcher: RequestMatcher): (request: RecordedRequest) => boolean {
  if (typeof matcher === "function") return matcher;
  if (matcher instanceof RegExp) return (r) => matcher.test(`${r.method} ${r.path}`);
  return (r) =>
    matcher === `${r.method} ${r.route}` ||
    matcher === r.route ||
    matcher === `${r.method} ${r.path}` ||
    matcher === r.path;
}
