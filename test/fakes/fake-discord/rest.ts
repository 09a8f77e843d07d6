import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { decodeBody, decodeSegment, drain, INVALID_JSON } from "./http-body.ts";
import {
  channelObject,
  type FakeChannel,
  type FakeMessage,
  guildObject,
  MessageFlag,
  memberObject,
  userObject,
} from "./payloads.ts";
import {
  attachmentRules,
  commandRules,
  dedupeErrors,
  describeError,
  type FieldError,
  messageRules,
  nestErrors,
  validateAgainstSpec,
} from "./spec-validator.ts";
import {
  ApiError,
  type DiscordState,
  Errors,
  emptyAfterEdit,
  emptyCreate,
  type MessageBody,
  type RecordedCallback,
  type RecordedFile,
  type RecordedInteraction,
  type RecordedRequest,
  type StoredCommand,
  type StoredMessage,
} from "./state.ts";

/**
 * The fake's HTTP API (v10) as discord.js calls it: `${apiBase}/v10/...` with `Authorization: Bot <token>` on
 * bot routes and no Authorization on interaction callbacks and webhook-token routes. JSON bodies, and
 * multipart bodies as discord.js builds them (`payload_json` plus `files[n]` parts). Every answer carries
 * X-RateLimit-* headers; scripted 429s carry the full set Discord sends. Also serves the attachments'
 * bytes at the URLs it hands out (a stand-in for cdn.discordapp.com).
 */

/** A route's answer. */
interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

interface RequestContext {
  record: RecordedRequest;
  params: Record<string, string>;
}

interface Route {
  method: string;
  /** The spec's path template. */
  template: string;
  /** Needs the bot token (interaction callbacks and webhook-token routes do not). */
  bot: boolean;
  pattern: RegExp;
  keys: string[];
  handle: (ctx: RequestContext) => Reply | Promise<Reply>;
}

/** What the REST side needs from the rest of the fake. */
export interface RestHost {
  token: string;
  applicationId: string;
  gatewayUrl: string;
  /** Interactions must be answered within this window (3 s)… */
  callbackWindowMs: number;
  /** …and their tokens work for this long (15 min). */
  tokenLifetimeMs: number;
  application(): Record<string, unknown>;
}

const API_PREFIX = /^\/api\/v10(?=\/)/;

/** The fake's REST API. */
export class RestApi {
  private readonly routes: Route[] = [];

  constructor(
    private readonly state: DiscordState,
    private readonly host: RestHost,
  ) {
    this.defineRoutes();
  }

  /** Handles one HTTP request (REST under /api/v10, attachments under /attachments and /media). */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://fake");
    if (req.method === "GET" && /^\/(media\/)?(ephemeral-)?attachments\//.test(url.pathname)) {
      this.serveAttachment(url.pathname, res);
      return;
    }
    const record: RecordedRequest = {
      method: req.method ?? "GET",
      route: null,
      // Per segment, so that discord.js' "%40original" reads as "@original" and slashes stay separators.
      path: url.pathname.replace(API_PREFIX, "").split("/").map(decodeSegment).join("/"),
      params: {},
      query: Object.fromEntries(url.searchParams),
      body: undefined,
      files: [],
      authorized: req.headers.authorization === `Bot ${this.host.token}`,
      receivedAt: performance.now(),
      status: 0,
    };
    this.state.requests.push(record);
    let reply: Reply;
    try {
      reply = await this.route(req, url, record);
    } catch (err) {
      reply = this.errorReply(record, err);
    }
    // A scripted hold after the effect: the request took effect above; no answer is ever sent.
    if (reply.status < 300 && this.hold(record, "after")) return;
    // A scripted lost answer: the request took effect above; the client never hears of it.
    const lost =
      reply.status < 300
        ? this.state.lostAnswers.find((r) => r.remaining > 0 && r.matches(record))
        : undefined;
    if (lost) {
      lost.remaining -= 1;
      if (lost.remaining === 0) this.state.lostAnswers.splice(this.state.lostAnswers.indexOf(lost), 1);
      record.lostAnswer = true;
      if (lost.how === "drop") {
        record.status = 0;
        res.destroy();
        this.state.notify();
        return;
      }
      reply = { status: 500, body: { message: "500: Internal Server Error", code: 0 } };
    }
    record.status = reply.status;
    if (reply.body !== undefined) record.response = reply.body;
    if (!res.destroyed) {
      const text = reply.body === undefined ? undefined : JSON.stringify(reply.body);
      res.writeHead(reply.status, {
        ...(reply.headers ?? this.rateLimitHeaders(record)),
        ...(text === undefined ? {} : { "content-type": "application/json" }),
      });
      res.end(text);
    }
    this.state.notify();
  }

  private async route(req: IncomingMessage, url: URL, record: RecordedRequest): Promise<Reply> {
    if (!API_PREFIX.test(url.pathname)) {
      await drain(req);
      return { status: 404, body: { message: "404: Not Found", code: 0 } };
    }
    const decoded = await decodeBody(req);
    const invalidJson = decoded.body === INVALID_JSON;
    record.body = invalidJson ? undefined : decoded.body;
    record.files = decoded.files;

    const candidates = this.routes.filter((r) => r.pattern.test(record.path));
    const route = candidates.find((r) => r.method === record.method);
    if (!route) {
      if (candidates.length > 0)
        return { status: 405, body: { message: "405: Method Not Allowed", code: 0 } };
      return { status: 404, body: { message: "404: Not Found", code: 0 } };
    }
    record.route = route.template;
    const match = route.pattern.exec(record.path);
    route.keys.forEach((key, i) => {
      record.params[key] = match?.[i + 1] ?? "";
    });
    if (route.bot && !record.authorized) {
      return { status: 401, body: { message: "401: Unauthorized", code: 0 } };
    }
    const limited = this.takeRateLimit(record);
    if (limited) return limited;
    if (invalidJson) {
      throw new ApiError(400, 50109, "The request body contains invalid JSON.", undefined, [
        { path: [], code: "INVALID_JSON", message: "The request body contains invalid JSON." },
      ]);
    }
    // A scripted hold before the effect: the request never takes effect and is never answered.
    if (this.hold(record, "before")) return new Promise<Reply>(() => {});
    return route.handle({ record, params: record.params });
  }

  /** Takes a matching hold rule (holdNext), marks the request held and tells the test; false when none. */
  private hold(record: RecordedRequest, when: "before" | "after"): boolean {
    const rule = this.state.holds.find((r) => r.when === when && r.remaining > 0 && r.matches(record));
    if (!rule) return false;
    rule.remaining -= 1;
    if (rule.remaining === 0) this.state.holds.splice(this.state.holds.indexOf(rule), 1);
    record.held = when;
    rule.onHeld(record);
    this.state.notify();
    return true;
  }

  private errorReply(record: RecordedRequest, err: unknown): Reply {
    if (!(err instanceof ApiError)) {
      return { status: 500, body: { message: `fake Discord bug: ${String(err)}`, code: 0 } };
    }
    if (err.violation) {
      this.state.violations.push({
        method: record.method,
        route: record.route ?? record.path,
        path: record.path,
        code: err.code,
        errors: err.violation.map(describeError),
        body: record.body,
      });
    }
    return {
      status: err.status,
      body: { message: err.message, code: err.code, ...(err.errors ? { errors: err.errors } : {}) },
    };
  }

  // ---- Rate limits ----------------------------------------------------------------------------------------

  private bucketOf(record: RecordedRequest): string {
    return createHash("sha1")
      .update(`${record.method} ${record.route ?? record.path}`)
      .digest("hex")
      .slice(0, 32);
  }

  /** Plausible headers for an answer that was not limited: plenty left, resetting in a second. */
  private rateLimitHeaders(record: RecordedRequest): Record<string, string> {
    return {
      "x-ratelimit-limit": "5",
      "x-ratelimit-remaining": "4",
      "x-ratelimit-reset": ((Date.now() + 1000) / 1000).toFixed(3),
      "x-ratelimit-reset-after": "1.000",
      "x-ratelimit-bucket": this.bucketOf(record),
    };
  }

  private takeRateLimit(record: RecordedRequest): Reply | undefined {
    const rule = this.state.rateLimits.find((r) => r.remaining > 0 && r.matches(record));
    if (!rule) return undefined;
    rule.remaining -= 1;
    if (rule.remaining === 0) this.state.rateLimits.splice(this.state.rateLimits.indexOf(rule), 1);
    const after = rule.retryAfterS;
    // Discord sends Retry-After in whole seconds; the fake sends the exact value so tests can use 50 ms.
    const headers = {
      "retry-after": String(after),
      "x-ratelimit-limit": "5",
      "x-ratelimit-remaining": "0",
      "x-ratelimit-reset": ((Date.now() + after * 1000) / 1000).toFixed(3),
      "x-ratelimit-reset-after": after.toFixed(3),
      "x-ratelimit-bucket": this.bucketOf(record),
      "x-ratelimit-scope": rule.scope,
      ...(rule.global ? { "x-ratelimit-global": "true" } : {}),
    };
    return {
      status: 429,
      headers,
      body: { message: "You are being rate limited.", retry_after: after, global: rule.global, code: 0 },
    };
  }

  // ---- Routes ---------------------------------------------------------------------------------------------

  private on(method: string, template: string, bot: boolean, handle: Route["handle"]): void {
    const keys: string[] = [];
    const source = template
      .split("/")
      .map((segment) => {
        const key = /^\{(\w+)\}$/.exec(segment)?.[1];
        if (!key) return segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
        keys.push(key);
        return "([^/]+)";
      })
      .join("/");
    this.routes.push({ method, template, bot, pattern: new RegExp(`^${source}$`), keys, handle });
  }

  private defineRoutes(): void {
    const s = this.state;
    const h = this.host;

    this.on("GET", "/gateway", false, () => ({ status: 200, body: { url: h.gatewayUrl } }));
    this.on("GET", "/gateway/bot", true, () => ({
      status: 200,
      body: {
        url: h.gatewayUrl,
        shards: 1,
        session_start_limit: { total: 1000, remaining: 999, reset_after: 14_400_000, max_concurrency: 1 },
      },
    }));
    this.on("GET", "/users/@me", true, () => ({
      status: 200,
      body: { ...userObject(s.botUser), verified: true, mfa_enabled: true, locale: "en-US", email: null },
    }));
    this.on("POST", "/users/@me/channels", true, ({ record }) => {
      const recipient = String((record.body as { recipient_id?: unknown } | undefined)?.recipient_id ?? "");
      const user = s.users.get(recipient);
      if (!user) throw Errors.unknownUser();
      const dm = s.dmChannel(recipient);
      return {
        status: 200,
        body: { id: dm.id, type: 1, last_message_id: null, flags: 0, recipients: [userObject(user)] },
      };
    });
    this.on("GET", "/users/{user_id}", true, ({ params }) => {
      const user = s.users.get(params.user_id ?? "");
      if (!user) throw Errors.unknownUser();
      return { status: 200, body: userObject(user) };
    });
    this.on("GET", "/applications/@me", true, () => ({ status: 200, body: h.application() }));
    this.on("GET", "/oauth2/applications/@me", true, () => ({ status: 200, body: h.application() }));

    // Commands, global and per guild.
    for (const scope of ["", "/guilds/{guild_id}"]) {
      const base = `/applications/{application_id}${scope}/commands`;
      this.on("GET", base, true, ({ params }) => ({ status: 200, body: this.commandList(params) }));
      this.on("PUT", base, true, (ctx) => this.putCommands(ctx, base));
      this.on("POST", base, true, (ctx) => this.postCommand(ctx, base));
      this.on("GET", `${base}/{command_id}`, true, ({ params }) => ({
        status: 200,
        body: this.findCommand(params),
      }));
      this.on("DELETE", `${base}/{command_id}`, true, ({ params }) => {
        const list = this.commandList(params);
        const command = this.findCommand(params);
        list.splice(list.indexOf(command), 1);
        return { status: 204 };
      });
    }

    this.on("POST", "/interactions/{interaction_id}/{interaction_token}/callback", false, (ctx) =>
      this.callback(ctx),
    );

    const original = "/webhooks/{webhook_id}/{webhook_token}/messages/@original";
    const webhookMessage = "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}";
    this.on("GET", original, false, (ctx) => ({ status: 200, body: this.webhookTarget(ctx, true).message }));
    this.on("PATCH", original, false, (ctx) => this.editWebhookMessage(ctx, original, true));
    this.on("DELETE", original, false, (ctx) => {
      s.deleteMessage(this.webhookTarget(ctx, true));
      return { status: 204 };
    });
    this.on("GET", webhookMessage, false, (ctx) => ({
      status: 200,
      body: this.webhookTarget(ctx, false).message,
    }));
    this.on("PATCH", webhookMessage, false, (ctx) => this.editWebhookMessage(ctx, webhookMessage, false));
    this.on("DELETE", webhookMessage, false, (ctx) => {
      s.deleteMessage(this.webhookTarget(ctx, false));
      return { status: 204 };
    });
    this.on("POST", "/webhooks/{webhook_id}/{webhook_token}", false, (ctx) => this.followUp(ctx));

    this.on("GET", "/channels/{channel_id}", true, ({ params }) => ({
      status: 200,
      body: channelObject(this.channelOf(params)),
    }));
    this.on("POST", "/channels/{channel_id}/typing", true, ({ params }) => {
      this.channelOf(params);
      return { status: 204 };
    });
    this.on("GET", "/channels/{channel_id}/messages", true, ({ params, record }) =>
      this.listMessages(this.channelOf(params), record.query),
    );
    this.on("POST", "/channels/{channel_id}/messages", true, (ctx) => this.createChannelMessage(ctx));
    this.on("GET", "/channels/{channel_id}/messages/{message_id}", true, ({ params }) => ({
      status: 200,
      body: this.channelMessage(params).message,
    }));
    this.on("PATCH", "/channels/{channel_id}/messages/{message_id}", true, (ctx) =>
      this.editChannelMessage(ctx),
    );
    this.on("DELETE", "/channels/{channel_id}/messages/{message_id}", true, ({ params }) => {
      s.deleteMessage(this.channelMessage(params));
      return { status: 204 };
    });

    this.on("GET", "/guilds/{guild_id}", true, ({ params }) => {
      const guild = s.guild(params.guild_id ?? "");
      if (!guild) throw Errors.unknownGuild();
      return { status: 200, body: guildObject(guild, s.botUser) };
    });
    this.on("GET", "/guilds/{guild_id}/channels", true, ({ params }) => {
      const guild = s.guild(params.guild_id ?? "");
      if (!guild) throw Errors.unknownGuild();
      return { status: 200, body: guild.channels.map((c) => channelObject(c)) };
    });
    this.on("GET", "/guilds/{guild_id}/members/{user_id}", true, ({ params }) => {
      const guild = s.guild(params.guild_id ?? "");
      if (!guild) throw Errors.unknownGuild();
      const user = s.users.get(params.user_id ?? "");
      if (!user) throw Errors.unknownMember();
      const roles = user.id === s.botUser.id ? [guild.botRoleId] : [];
      return { status: 200, body: memberObject(user, roles, guild.joinedAt) };
    });
  }

  // ---- Validation -----------------------------------------------------------------------------------------

  /** Refuses the request with 400 Invalid Form Body (and records a violation) when there are errors. */
  private refuse(found: FieldError[]): void {
    if (found.length === 0) return;
    const errors = dedupeErrors(found);
    throw new ApiError(400, 50035, "Invalid Form Body", nestErrors(errors), errors);
  }

  /** Spec + message rules + upload bookkeeping for a message-carrying body. */
  private checkMessageBody(
    record: RecordedRequest,
    route: string,
    message: unknown,
    at: (string | number)[],
    existingAttachmentIds: readonly string[],
  ): void {
    const errors = [
      ...validateAgainstSpec(record.method, route, record.body),
      ...messageRules(message, at),
      ...attachmentRules(message, record.files, existingAttachmentIds, at),
    ];
    this.refuse(errors);
  }

  private checkUploadSizes(files: RecordedFile[], limit: number): void {
    if (files.some((f) => f.bytes.length > limit)) throw Errors.tooLarge();
  }

  // ---- Commands -------------------------------------------------------------------------------------------

  private commandList(params: Record<string, string>): StoredCommand[] {
    if (params.application_id !== this.host.applicationId) {
      throw new ApiError(403, 50001, "Missing Access");
    }
    if (params.guild_id === undefined) return this.state.globalCommands;
    if (!this.state.guild(params.guild_id)) throw new ApiError(403, 50001, "Missing Access");
    let list = this.state.guildCommands.get(params.guild_id);
    if (!list) {
      list = [];
      this.state.guildCommands.set(params.guild_id, list);
    }
    return list;
  }

  private findCommand(params: Record<string, string>): StoredCommand {
    const command = this.commandList(params).find((c) => c.id === params.command_id);
    if (!command) throw Errors.unknownCommand();
    return command;
  }

  private storeCommand(
    raw: Record<string, unknown>,
    guildId: string | undefined,
    existing: StoredCommand | undefined,
  ): StoredCommand {
    const type = Number(raw.type ?? 1);
    const permissions = raw.default_member_permissions;
    return {
      ...raw,
      id: existing?.id ?? this.state.ids.next(),
      application_id: this.host.applicationId,
      version: this.state.ids.next(),
      default_member_permissions:
        permissions === undefined || permissions === null ? null : String(permissions),
      type,
      name: String(raw.name),
      description: typeof raw.description === "string" ? raw.description : "",
      ...(guildId ? { guild_id: guildId } : { dm_permission: raw.dm_permission !== false }),
      contexts: raw.contexts ?? null,
      integration_types: raw.integration_types ?? [0],
      nsfw: raw.nsfw === true,
    };
  }

  private putCommands({ record, params }: RequestContext, route: string): Reply {
    const list = this.commandList(params);
    this.refuse([...validateAgainstSpec("PUT", route, record.body), ...commandRules(record.body ?? [])]);
    const incoming = (Array.isArray(record.body) ? record.body : []) as Record<string, unknown>[];
    const next = incoming.map((raw) =>
      this.storeCommand(
        raw,
        params.guild_id,
        list.find((c) => c.name === raw.name && c.type === Number(raw.type ?? 1)),
      ),
    );
    list.splice(0, list.length, ...next);
    return { status: 200, body: next };
  }

  private postCommand({ record, params }: RequestContext, route: string): Reply {
    const list = this.commandList(params);
    this.refuse([...validateAgainstSpec("POST", route, record.body), ...commandRules(record.body)]);
    const raw = record.body as Record<string, unknown>;
    const existing = list.find((c) => c.name === raw.name && c.type === Number(raw.type ?? 1));
    const command = this.storeCommand(raw, params.guild_id, existing);
    if (existing) list.splice(list.indexOf(existing), 1, command);
    else list.push(command);
    return { status: existing ? 200 : 201, body: command };
  }

  // ---- Interactions ---------------------------------------------------------------------------------------

  private callback({ record, params }: RequestContext): Reply {
    const s = this.state;
    const interaction = s.interactions.get(params.interaction_id ?? "");
    const body = (record.body ?? {}) as { type?: unknown; data?: MessageBody | null };
    const attempt: RecordedCallback = {
      type: Number(body.type),
      body: record.body,
      files: record.files,
      withResponse: record.query.with_response === "true",
      receivedAt: record.receivedAt,
      latencyMs: interaction ? record.receivedAt - interaction.sentAt : Number.NaN,
      status: 0,
    };
    interaction?.callbackAttempts.push(attempt);
    try {
      const reply = this.acceptCallback(interaction, params, record, body, attempt);
      attempt.status = reply.status;
      return reply;
    } catch (err) {
      attempt.status = err instanceof ApiError ? err.status : 500;
      throw err;
    }
  }

  private acceptCallback(
    interaction: RecordedInteraction | undefined,
    params: Record<string, string>,
    record: RecordedRequest,
    body: { type?: unknown; data?: MessageBody | null },
    attempt: RecordedCallback,
  ): Reply {
    const s = this.state;
    if (!interaction || interaction.token !== params.interaction_token) throw Errors.unknownInteraction();
    // The 3-second window is Discord's: after it the interaction is gone for good.
    if (s.clock() - interaction.createdAt > this.host.callbackWindowMs) throw Errors.unknownInteraction();
    this.checkUploadSizes(record.files, Number(interaction.payload.attachment_size_limit));
    const type = Number(body.type);
    const data = body.data ?? {};
    const source = interaction.sourceMessageId ? s.findMessage(interaction.sourceMessageId) : undefined;
    const carriesMessage = type === 4 || type === 7;
    this.checkMessageBody(
      record,
      "/interactions/{interaction_id}/{interaction_token}/callback",
      carriesMessage ? data : undefined,
      ["data"],
      type === 7 ? (source?.message.attachments.map((a) => a.id) ?? []) : [],
    );
    const allowed: Record<number, readonly number[]> = {
      1: [1],
      2: [4, 5, 9, 12],
      3: [4, 5, 6, 7, 9, 12],
      4: [8],
      5: [4, 5, 6, 7],
    };
    if (!(allowed[interaction.type] ?? []).includes(type)) {
      this.refuse([
        {
          path: ["type"],
          code: "INTERACTION_CALLBACK_TYPE_INVALID",
          message: `Callback type ${type} is not valid for an interaction of type ${interaction.type}.`,
        },
      ]);
    }
    if (interaction.callback) throw Errors.alreadyAcknowledged();

    const channel = s.channel(interaction.channelId);
    if (!channel) throw Errors.unknownChannel();
    let message: FakeMessage | undefined;
    if (type === 4 && emptyCreate(data, record.files)) throw Errors.emptyMessage(["data"]);
    if (type === 4 || type === 5) {
      const flags = Number(data.flags ?? 0);
      const reply = type === 4 ? data : { flags };
      message = this.createInteractionMessage(interaction, channel, reply, record.files, {
        original: true,
        extraFlags: type === 5 ? MessageFlag.Loading | (flags & MessageFlag.Ephemeral) : 0,
      });
      interaction.originalMessageId = message.id;
    } else if (type === 6 || type === 7) {
      if (!source) throw Errors.unknownMessage();
      interaction.originalMessageId = source.message.id;
      if (type === 7 && emptyAfterEdit(source.message, data, record.files)) {
        throw Errors.emptyMessage(["data"]);
      }
      message = type === 7 ? s.editMessage(source, data, record.files) : source.message;
    }
    interaction.callback = attempt;
    if (record.query.with_response !== "true") return { status: 204 };
    return {
      status: 200,
      body: {
        interaction: {
          id: interaction.id,
          type: interaction.type,
          activity_instance_id: null,
          ...(message
            ? {
                response_message_id: message.id,
                response_message_loading: (message.flags & MessageFlag.Loading) !== 0,
                response_message_ephemeral: (message.flags & MessageFlag.Ephemeral) !== 0,
              }
            : {}),
        },
        ...(message && type !== 6 ? { resource: { type, message } } : {}),
      },
    };
  }

  /** A message created for an interaction: the response (@original) or a follow-up. */
  private createInteractionMessage(
    interaction: RecordedInteraction,
    channel: FakeChannel,
    body: MessageBody,
    files: RecordedFile[],
    how: { original: boolean; extraFlags?: number },
  ): FakeMessage {
    const s = this.state;
    const data = (interaction.payload.data ?? {}) as Record<string, unknown>;
    const user = userObject(interaction.user);
    const fromCommand = interaction.type === 2;
    const metadata: Record<string, unknown> = {
      id: interaction.id,
      type: interaction.type,
      user,
      authorizing_integration_owners: { "0": interaction.guildId },
      ...(fromCommand ? { name: data.name, command_type: data.type } : {}),
      ...(fromCommand && data.target_id ? { target_message_id: data.target_id } : {}),
      ...(interaction.sourceMessageId ? { interacted_message_id: interaction.sourceMessageId } : {}),
      ...(!how.original && interaction.originalMessageId
        ? { original_response_message_id: interaction.originalMessageId }
        : {}),
    };
    // A reply to a component is a reply (type 19) to the message the component is on; a command's reply
    // is typed after the command (20 chat input, 23 context menu). Follow-ups are plain messages (0).
    let type = 0;
    if (how.original) type = fromCommand ? (data.type === 1 ? 20 : 23) : 19;
    const created = s.createMessage({
      channel,
      author: userObject(s.botUser),
      body,
      files,
      type,
      ...(how.extraFlags ? { extraFlags: how.extraFlags } : {}),
      applicationId: this.host.applicationId,
      interactionMetadata: metadata,
      ...(fromCommand
        ? { interaction: { id: interaction.id, type: interaction.type, name: data.name, user } }
        : {}),
      ...(type === 19 && interaction.sourceMessageId
        ? {
            messageReference: {
              type: 0,
              channel_id: channel.id,
              guild_id: channel.guildId,
              message_id: interaction.sourceMessageId,
            },
          }
        : {}),
    });
    return created;
  }

  /** The interaction behind a webhook-token route, after Discord's checks (application, token, expiry). */
  private webhookInteraction(params: Record<string, string>): RecordedInteraction {
    if (params.webhook_id !== this.host.applicationId) throw Errors.unknownWebhook();
    const interaction = this.state.interactionsByToken.get(params.webhook_token ?? "");
    if (!interaction) throw Errors.invalidWebhookToken();
    if (this.state.clock() - interaction.createdAt > this.host.tokenLifetimeMs) {
      throw Errors.invalidWebhookToken();
    }
    return interaction;
  }

  /** The message a webhook-token route points at: @original, or one of the interaction's follow-ups. */
  private webhookTarget({ params }: RequestContext, original: boolean): StoredMessage {
    const interaction = this.webhookInteraction(params);
    const id = original ? interaction.originalMessageId : params.message_id;
    const mine =
      id !== undefined && (id === interaction.originalMessageId || interaction.followUpIds.includes(id));
    const stored = mine && id ? this.state.findMessage(id) : undefined;
    if (!stored) throw Errors.unknownMessage();
    return stored;
  }

  private editWebhookMessage(ctx: RequestContext, route: string, original: boolean): Reply {
    const { record, params } = ctx;
    const interaction = this.webhookInteraction(params);
    this.checkUploadSizes(record.files, Number(interaction.payload.attachment_size_limit));
    const stored = this.webhookTarget(ctx, original);
    this.checkMessageBody(
      record,
      route,
      record.body,
      [],
      stored.message.attachments.map((a) => a.id),
    );
    const body = (record.body ?? {}) as MessageBody;
    if (emptyAfterEdit(stored.message, body, record.files)) throw Errors.emptyMessage();
    return { status: 200, body: this.state.editMessage(stored, body, record.files, true) };
  }

  private followUp({ record, params }: RequestContext): Reply {
    const interaction = this.webhookInteraction(params);
    this.checkUploadSizes(record.files, Number(interaction.payload.attachment_size_limit));
    this.checkMessageBody(record, "/webhooks/{webhook_id}/{webhook_token}", record.body, [], []);
    // Until the interaction is acknowledged there is no webhook to post through.
    if (!interaction.callback) throw Errors.unknownWebhook();
    if (emptyCreate((record.body ?? {}) as MessageBody, record.files)) throw Errors.emptyMessage();
    const channel = this.state.channel(interaction.channelId);
    if (!channel) throw Errors.unknownChannel();
    const message = this.createInteractionMessage(
      interaction,
      channel,
      (record.body ?? {}) as MessageBody,
      record.files,
      { original: false },
    );
    interaction.followUpIds.push(message.id);
    return record.query.wait === "true" ? { status: 200, body: message } : { status: 204 };
  }

  // ---- Channels -------------------------------------------------------------------------------------------

  private channelOf(params: Record<string, string>): FakeChannel {
    const channel = this.state.channel(params.channel_id ?? "");
    if (!channel) throw Errors.unknownChannel();
    return channel;
  }

  private channelMessage(params: Record<string, string>): StoredMessage {
    const channel = this.channelOf(params);
    const stored = this.state.findMessage(params.message_id ?? "");
    if (!stored || stored.message.channel_id !== channel.id) throw Errors.unknownMessage();
    return stored;
  }

  private listMessages(channel: FakeChannel, query: Record<string, string>): Reply {
    const all = this.state.channelMessages(channel.id);
    const limit = Math.min(100, Math.max(1, Number(query.limit ?? 50)));
    const id = (m: FakeMessage) => BigInt(m.id);
    let picked = all;
    if (query.before) picked = all.filter((m) => id(m) < BigInt(query.before as string));
    else if (query.after) picked = all.filter((m) => id(m) > BigInt(query.after as string));
    const newestFirst = [...picked].reverse();
    const page = query.after ? newestFirst.slice(-limit) : newestFirst.slice(0, limit);
    return { status: 200, body: page };
  }

  private createChannelMessage({ record, params }: RequestContext): Reply {
    const channel = this.channelOf(params);
    if (![0, 1, 5, 10, 11, 12].includes(channel.type)) throw Errors.nonTextChannel();
    if (
      channel.type === 1 &&
      [...this.state.dmChannels].some(([u, c]) => c === channel && this.state.closedDms.has(u))
    )
      throw new ApiError(403, 50007, "Cannot send messages to this user");
    this.checkUploadSizes(record.files, channel.attachmentSizeLimit);
    this.checkMessageBody(record, "/channels/{channel_id}/messages", record.body, [], []);
    const body = (record.body ?? {}) as MessageBody;
    if (emptyCreate(body, record.files)) throw Errors.emptyMessage();
    // enforce_nonce: the same nonce from the same author within a few minutes answers the message it made.
    if (body.enforce_nonce === true && body.nonce !== undefined) {
      const made = this.state.messageByNonce(channel.id, this.state.botUser.id, body.nonce);
      if (made) return { status: 200, body: made };
    }
    let messageReference: Record<string, unknown> | undefined;
    const ref = body.message_reference as Record<string, unknown> | undefined;
    if (ref?.message_id !== undefined) {
      const target = this.state.findMessage(String(ref.message_id));
      if (!target && ref.fail_if_not_exists !== false) {
        this.refuse([
          {
            path: ["message_reference"],
            code: "MESSAGE_REFERENCE_UNKNOWN_MESSAGE",
            message: "Unknown message",
          },
        ]);
      }
      if (target) {
        messageReference = {
          type: 0,
          channel_id: target.message.channel_id,
          guild_id: channel.guildId,
          message_id: target.message.id,
        };
      }
    }
    const message = this.state.createMessage({
      channel,
      author: userObject(this.state.botUser),
      body: { ...body, flags: Number(body.flags ?? 0) & ~MessageFlag.Ephemeral },
      files: record.files,
      type: messageReference ? 19 : 0,
      ...(messageReference ? { messageReference } : {}),
    });
    return { status: 200, body: message };
  }

  private editChannelMessage({ record, params }: RequestContext): Reply {
    const channel = this.channelOf(params);
    const stored = this.channelMessage(params);
    const author = stored.message.author as { id?: string };
    // Webhook messages (interaction responses included) can only be edited through their webhook.
    if (author.id !== this.state.botUser.id || stored.message.webhook_id !== undefined)
      throw Errors.notAuthor();
    this.checkUploadSizes(record.files, channel.attachmentSizeLimit);
    this.checkMessageBody(
      record,
      "/channels/{channel_id}/messages/{message_id}",
      record.body,
      [],
      stored.message.attachments.map((a) => a.id),
    );
    const body = (record.body ?? {}) as MessageBody;
    if (emptyAfterEdit(stored.message, body, record.files)) throw Errors.emptyMessage();
    return { status: 200, body: this.state.editMessage(stored, body, record.files) };
  }

  // ---- CDN ------------------------------------------------------------------------------------------------

  private serveAttachment(path: string, res: ServerResponse): void {
    const id = /attachments\/\d+\/(\d+)\//.exec(path)?.[1];
    const bytes = id ? this.state.attachmentBytes(id) : undefined;
    if (!bytes) {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("This content is no longer available.");
      return;
    }
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": bytes.length });
    res.end(bytes);
  }
}
