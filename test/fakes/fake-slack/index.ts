import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { blockKitErrors } from "./block-kit.ts";
import { decodeBody, readBody, sendJson } from "./http-body.ts";
import { IdMint, urlToken } from "./ids.ts";
import {
  type BlockActionOptions,
  blockActionPayload,
  type MessageShortcutOptions,
  messageShortcutPayload,
  type PayloadContext,
  type SlashCommandOptions,
  slashCommandPayload,
} from "./payloads.ts";
import { type FakeSlackResponseUrl, ResponseUrls } from "./response-url.ts";
import {
  type EnvelopeType,
  type FakeSlackAck,
  type FakeSlackEnvelope,
  SocketModeServer,
} from "./socket-mode.ts";
import { checkRequest } from "./spec-validator.ts";
import {
  type FakeSlackChannelOptions,
  type FakeSlackFile,
  type FakeSlackMessage,
  type FakeSlackUserOptions,
  sniffFileType,
  type WorkspaceConfig,
  WorkspaceState,
} from "./state.ts";
import {
  APP_TOKEN_METHODS,
  DEFAULT_SCOPES,
  MAX_TEXT_CHARS,
  METHOD_SCOPES,
  METHODS,
  type MethodContext,
  SlackApiError,
} from "./web-api.ts";

/**
 * A local Slack for tests: unmodified @slack/bolt, @slack/web-api and @slack/socket-mode talk to it over
 * 127.0.0.1 as they would to Slack.
 *
 * It speaks:
 * - the Web API under {@link FakeSlack.apiUrl} (`http://127.0.0.1:PORT/api/`; @slack/web-api appends the
 *   method name to `slackApiUrl`): auth.test, chat.postMessage/update/postEphemeral/delete,
 *   conversations.info, users.info, files.getUploadURLExternal + the upload URL it hands out +
 *   files.completeUploadExternal (the files.uploadV2 flow), files.info and apps.connections.open. Bodies may be
 *   form-encoded, JSON or multipart; tokens come as `Authorization: Bearer` (or a `token` form field). Every
 *   request is checked against Slack's OpenAPI spec or, for methods newer than it, a hand-written contract
 *   (spec-validator.ts), and messages against Block Kit's limits (block-kit.ts); what breaks them is answered
 *   as Slack would and recorded in {@link FakeSlack.violations}. Errors are Slack's: invalid_auth,
 *   not_allowed_token_type, not_in_channel, channel_not_found, message_not_found, invalid_blocks,
 *   msg_too_long, missing_scope, and HTTP 429 + Retry-After when a test scripts {@link FakeSlack.rateLimitNext}.
 * - Socket Mode (socket-mode.ts): hello on connect, envelopes for slash commands, block actions and message
 *   shortcuts, acks timed with performance.now(), dropped connections for reconnect tests.
 * - response URLs (response-url.ts) with Slack's 5-use / 30-minute limits on an injectable clock.
 * - HTTP delivery for bolt's HTTPReceiver: see {@link signedPost} in http-mode.ts.
 *
 * State (messages per channel with their edit history, uploaded files and their bytes, every call) is public
 * for assertions. To point bolt at it:
 *
 * ```ts
 * const app = new App({
 *   token: fake.botToken, appToken: fake.appToken, socketMode: true,
 *   // Also reaches the SocketModeClient's own WebClient (apps.connections.open): bolt passes clientOptions
 *   // through installerOptions.clientOptions to it.
 *   clientOptions: { slackApiUrl: fake.apiUrl },
 * });
 * ```
 * Stop every App before {@link FakeSlack.close}: a Socket Mode client that loses the fake reconnects forever.
 */

export { blockKitErrors, MAX_MESSAGE_BLOCKS } from "./block-kit.ts";
export {
  deliveryBody,
  type SignedPostOptions,
  type SignedPostResult,
  signedPost,
  slackSignature,
} from "./http-mode.ts";
export type { BlockActionOptions, MessageShortcutOptions, SlashCommandOptions } from "./payloads.ts";
export type { FakeSlackResponsePost, FakeSlackResponseUrl } from "./response-url.ts";
export { RESPONSE_URL_MAX_USES, RESPONSE_URL_TTL_MS } from "./response-url.ts";
export type { FakeSlackAck, FakeSlackEnvelope } from "./socket-mode.ts";
export { ACK_DEADLINE_MS } from "./socket-mode.ts";
export { checkRequest, checkResponse, slackSpec } from "./spec-validator.ts";
export type {
  FakeSlackChannelOptions,
  FakeSlackFile,
  FakeSlackMessage,
  FakeSlackMessageVersion,
  FakeSlackUserOptions,
} from "./state.ts";
export { DEFAULT_SCOPES, MAX_TEXT_CHARS } from "./web-api.ts";

/** Which token a request carried. */
export type FakeSlackTokenKind = "bot" | "app" | "none" | "invalid";

/** One request the fake received: a Web API call, an upload URL post ("upload") or a response URL post ("response_url"). */
export interface FakeSlackCall {
  method: string;
  /** The decoded parameters, as sent (form values are strings; the token is left out). */
  params: Record<string, unknown>;
  tokenKind: FakeSlackTokenKind;
  contentType: string;
  /** performance.now() when the request arrived. */
  receivedAt: number;
  /** HTTP status of the answer (0 while it is being answered). */
  status: number;
  ok: boolean;
  /** Slack's error code, when it failed. */
  error?: string | undefined;
  /** The JSON answer. */
  response?: unknown;
  /** Parameters the method's contract does not know (Slack ignores them; often a misspelling). */
  unknownParams: string[];
  /** The call took effect but its answer was lost (loseAnswerNext). */
  lostAnswer?: boolean;
  /** Held without an answer (holdNext): before it took effect (it never does), or after. */
  held?: "before" | "after";
}

/** A scripted hold (holdNext). */
interface Hold {
  method: string;
  when: "before" | "after";
  where: (call: FakeSlackCall) => boolean;
  remaining: number;
  onHeld: (call: FakeSlackCall) => void;
}

/** A request the real Slack would refuse for breaking its contract (or a Block Kit limit). */
export interface FakeSlackViolation {
  method: string;
  /** spec: Slack's OpenAPI spec; contract: a hand-written one; block-kit; upload (bytes ≠ declared length); socket. */
  kind: "spec" | "contract" | "block-kit" | "upload" | "socket";
  messages: string[];
  params: Record<string, unknown>;
}

/** Options of {@link FakeSlack.start}; every one has a realistic default. */
export interface FakeSlackOptions {
  /** `T…` */
  teamId?: string;
  teamDomain?: string;
  teamName?: string;
  /** The bot's user id (`U…`). */
  botUserId?: string;
  botUserName?: string;
  /** `B…` */
  botId?: string;
  /** `A…` */
  appId?: string;
  /** `xoxb-…` */
  botToken?: string;
  /** `xapp-…` */
  appToken?: string;
  signingSecret?: string;
  /** Default: #general (C0123456789, bot is a member) and #random (C0987654321, bot is not). */
  channels?: FakeSlackChannelOptions[];
  /** Default: alice (U0A11CE0001) and an admin, root (U0AD0000001). The first is the default actor. */
  users?: FakeSlackUserOptions[];
  /** The bot token's scopes (default {@link DEFAULT_SCOPES}). */
  scopes?: readonly string[];
  /** The workspace clock in ms (ts values, response URL expiry). Default Date.now. */
  now?: () => number;
}

/** Defaults of {@link FakeSlackOptions}. */
export const DEFAULT_FAKE_SLACK_OPTIONS = {
  teamId: "T0123456789",
  teamDomain: "easel-test",
  teamName: "Easel Test",
  botUserId: "U0B0T000001",
  botUserName: "easel",
  botId: "B0123456789",
  appId: "A0123456789",
  botToken: "xoxb-0123456789-0123456789012-fakebottoken0000000000",
  appToken: "xapp-1-A0123456789-0123456789012-fakeapptoken00000000000000000000000000000000000000000000",
  signingSecret: "fakesigningsecret0123456789abcdef",
  channels: [
    { id: "C0123456789", name: "general", isMember: true },
    { id: "C0987654321", name: "random", isMember: false },
  ],
  users: [
    { id: "U0A11CE0001", name: "alice", realName: "Alice Example" },
    { id: "U0AD0000001", name: "root", realName: "Root Admin", isAdmin: true },
  ],
} as const satisfies FakeSlackOptions;

interface RateLimit {
  retryAfterS: number;
  remaining: number;
}

interface Waiter {
  predicate: (call: FakeSlackCall) => boolean;
  resolve: (call: FakeSlackCall) => void;
  timer: NodeJS.Timeout;
}

/** The fake Slack: a Web API, Socket Mode link and response URLs on one local port. */
export class FakeSlack {
  /** Every request, in arrival order. */
  readonly calls: FakeSlackCall[] = [];
  /** Requests the real Slack would refuse as malformed; a test of good behaviour expects none. */
  readonly violations: FakeSlackViolation[] = [];
  /** Web API base URL for `slackApiUrl` (ends with `/`). */
  readonly apiUrl: string;
  /** The workspace's ids, tokens and clock. */
  readonly config: WorkspaceConfig;

  private readonly state: WorkspaceState;
  private readonly responseUrls: ResponseUrls;
  private readonly socket: SocketModeServer;
  private readonly uploadTickets = new Map<string, string>();
  private readonly rateLimits = new Map<string, RateLimit[]>();
  private readonly lostAnswers = new Map<string, { how: "500" | "drop"; remaining: number }[]>();
  private readonly holds: Hold[] = [];
  private readonly waiters = new Set<Waiter>();
  private readonly payloadContext: PayloadContext;

  private constructor(
    private readonly server: Server,
    /** `http://127.0.0.1:PORT` */
    readonly baseUrl: string,
    options: FakeSlackOptions,
  ) {
    const d = DEFAULT_FAKE_SLACK_OPTIONS;
    this.apiUrl = `${baseUrl}/api/`;
    this.config = {
      teamId: options.teamId ?? d.teamId,
      teamDomain: options.teamDomain ?? d.teamDomain,
      teamName: options.teamName ?? d.teamName,
      botUserId: options.botUserId ?? d.botUserId,
      botUserName: options.botUserName ?? d.botUserName,
      botId: options.botId ?? d.botId,
      appId: options.appId ?? d.appId,
      botToken: options.botToken ?? d.botToken,
      appToken: options.appToken ?? d.appToken,
      signingSecret: options.signingSecret ?? d.signingSecret,
      verificationToken: urlToken().slice(0, 24),
      scopes: options.scopes ?? DEFAULT_SCOPES,
      now: options.now ?? Date.now,
    };
    this.state = new WorkspaceState(
      this.config,
      new IdMint(this.config.now),
      options.channels ?? d.channels,
      options.users ?? d.users,
    );
    this.responseUrls = new ResponseUrls(this.state, baseUrl, (errors) =>
      this.violation("response_url", "block-kit", errors, {}),
    );
    this.socket = new SocketModeServer(baseUrl.replace(/^http/, "ws"), this.config.appId, {
      onAck: (envelope, ack) => this.applyAck(envelope, ack),
      onStray: (message) => this.violation("socket", "socket", [message], {}),
    });
    this.payloadContext = { state: this.state, responseUrls: this.responseUrls };
  }

  /** Starts a fake on a free port of 127.0.0.1. */
  static async start(options: FakeSlackOptions = {}): Promise<FakeSlack> {
    let fake: FakeSlack | undefined;
    const server = createServer((req, res) => {
      void fake?.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) sendJson(res, 500, { ok: false, error: "fatal_error", detail: String(err) });
      });
    });
    server.on("upgrade", (req, socket, head) => {
      if (!fake?.socket.handleUpgrade(req, socket, head)) socket.destroy();
    });
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    const { port } = server.address() as AddressInfo;
    fake = new FakeSlack(server, `http://127.0.0.1:${port}`, options);
    return fake;
  }

  /** The bot token (`xoxb-…`) the fake accepts. */
  get botToken(): string {
    return this.config.botToken;
  }

  /** The app-level token (`xapp-…`) apps.connections.open accepts. */
  get appToken(): string {
    return this.config.appToken;
  }

  /** The signing secret for HTTP delivery. */
  get signingSecret(): string {
    return this.config.signingSecret;
  }

  // ---- State for assertions ---------------------------------------------------------------------------------

  /** Messages of one channel in posting order: thread replies, ephemeral and deleted ones included. */
  messages(channelId: string): FakeSlackMessage[] {
    return this.state.messages.filter((m) => m.channel === channelId);
  }

  /** Every file the bot started uploading. */
  get files(): FakeSlackFile[] {
    return [...this.state.files.values()];
  }

  /** The bytes posted to a file's upload URL. */
  fileBytes(fileId: string): Uint8Array | undefined {
    return this.state.files.get(fileId)?.bytes;
  }

  /** Every ack received over Socket Mode. */
  get acks(): readonly FakeSlackAck[] {
    return this.socket.acks;
  }

  /** Every response URL handed out in a payload, with its posts. */
  get responseUrlRecords(): FakeSlackResponseUrl[] {
    return [...this.responseUrls.byId.values()];
  }

  /** Socket Mode connections accepted so far (a reconnect adds one). */
  get socketConnects(): number {
    return this.socket.connects;
  }

  /** Posts a message as a user (something for a shortcut or a thread to point at). */
  addUserMessage(
    channelId: string,
    message: { text: string; user?: string; thread_ts?: string; blocks?: unknown[] },
  ): FakeSlackMessage {
    return this.state.addMessage({
      channel: channelId,
      text: message.text,
      user: message.user ?? this.state.users.keys().next().value ?? "U0A11CE0001",
      thread_ts: message.thread_ts,
      blocks: message.blocks,
      via: "user",
    });
  }

  /** Adds the bot to a channel or removes it (not_in_channel follows). */
  setMember(channelId: string, isMember: boolean): void {
    const channel = this.state.channels.get(channelId);
    if (!channel) throw new Error(`FakeSlack: no channel ${channelId}`);
    channel.isMember = isMember;
  }

  // ---- Scripted faults and waiting ----------------------------------------------------------------------------

  /**
   * Answers the next `count` (default 1) calls of `method` with HTTP 429, `Retry-After: retryAfterS` and
   * `{ok:false, error:"ratelimited"}`. @slack/web-api parses Retry-After as whole seconds, pauses its queue
   * that long and retries under its retryConfig.
   */
  rateLimitNext(method: string, options: { retryAfterS: number; count?: number }): void {
    const queue = this.rateLimits.get(method) ?? [];
    queue.push({ retryAfterS: options.retryAfterS, remaining: options.count ?? 1 });
    this.rateLimits.set(method, queue);
  }

  /**
   * Lets the next `count` (default 1) successful calls of `method` take effect (the message is posted, the
   * files shared) and then loses the answer: HTTP 500, or (`how: "drop"`) the connection closed without one.
   * The call is recorded with `lostAnswer: true`.
   */
  loseAnswerNext(method: string, options: { count?: number; how?: "500" | "drop" } = {}): void {
    const queue = this.lostAnswers.get(method) ?? [];
    queue.push({ how: options.how ?? "500", remaining: options.count ?? 1 });
    this.lostAnswers.set(method, queue);
  }

  /**
   * Holds the next `count` (default 1) calls of `method` (a Web API method, or "response_url") that match
   * `where`, without ever answering: `when: "before"` they take effect (they never do), `"after"` (default)
   * once they have (the message is posted, the files shared). Resolves with the call at the moment it is held,
   * so a test can act right then (SIGKILL the bot: "posted, not recorded"). The request stays unanswered until
   * the client goes away.
   */
  holdNext(
    method: string,
    options: { when?: "before" | "after"; count?: number; where?: (call: FakeSlackCall) => boolean } = {},
  ): Promise<FakeSlackCall> {
    return new Promise((onHeld) => {
      this.holds.push({
        method,
        when: options.when ?? "after",
        where: options.where ?? (() => true),
        remaining: options.count ?? 1,
        onHeld,
      });
    });
  }

  /** Drops every hold not taken yet. */
  clearHolds(): void {
    this.holds.splice(0);
  }

  /** Takes a matching hold, marks the call held and tells the test; false when none. */
  private hold(call: FakeSlackCall, when: "before" | "after"): boolean {
    const hold = this.holds.find(
      (h) => h.method === call.method && h.when === when && h.remaining > 0 && h.where(call),
    );
    if (!hold) return false;
    if (--hold.remaining <= 0) this.holds.splice(this.holds.indexOf(hold), 1);
    call.held = when;
    hold.onHeld(call);
    return true;
  }

  /**
   * Resolves with the first call, already received or still to come, that matches `predicate`, once it has
   * been answered (so status and error are set); rejects after `timeoutMs`.
   */
  waitFor(predicate: (call: FakeSlackCall) => boolean, timeoutMs = 2000): Promise<FakeSlackCall> {
    const past = this.calls.find((c) => c.status !== 0 && predicate(c));
    if (past) return Promise.resolve(past);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        predicate,
        resolve,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          const seen = this.calls.map((c) => `${c.method}:${c.error ?? c.status}`).join(", ");
          reject(
            new Error(
              `FakeSlack.waitFor: no matching call within ${timeoutMs} ms (calls: ${seen || "none"})`,
            ),
          );
        }, timeoutMs),
      };
      this.waiters.add(waiter);
    });
  }

  // ---- Socket Mode ----------------------------------------------------------------------------------------------

  /** Resolves once a Socket Mode connection is open and greeted (at once if one is). */
  socketConnected(): Promise<void> {
    return this.socket.connected();
  }

  /** Cuts the Socket Mode connections (`graceful`: sends Slack's refresh_requested disconnect instead). */
  dropSocket(options: { graceful?: boolean } = {}): void {
    this.socket.drop(options.graceful ?? false);
  }

  /** A slash command payload, for HTTP delivery (see signedPost) or a custom envelope. */
  slashCommandPayload(options: SlashCommandOptions): Record<string, string> {
    return slashCommandPayload(this.payloadContext, options);
  }

  /** A block_actions payload (a button press); see {@link BlockActionOptions} for the defaults. */
  blockActionPayload(options: BlockActionOptions): Record<string, unknown> {
    return blockActionPayload(this.payloadContext, options);
  }

  /** A message_action payload (a message shortcut). */
  messageShortcutPayload(options: MessageShortcutOptions): Record<string, unknown> {
    return messageShortcutPayload(this.payloadContext, options);
  }

  /** Sends a slash command over Socket Mode (`slash_commands`, accepts_response_payload). */
  slashCommand(options: SlashCommandOptions): FakeSlackEnvelope {
    return this.socket.send("slash_commands", this.slashCommandPayload(options), true);
  }

  /** Sends a button press over Socket Mode (`interactive`). */
  blockAction(options: BlockActionOptions): FakeSlackEnvelope {
    return this.socket.send("interactive", this.blockActionPayload(options), false);
  }

  /** Sends a message shortcut over Socket Mode (`interactive`). */
  messageShortcut(options: MessageShortcutOptions): FakeSlackEnvelope {
    return this.socket.send("interactive", this.messageShortcutPayload(options), false);
  }

  /** Sends any envelope (e.g. `events_api`) over Socket Mode. */
  sendEnvelope(
    type: EnvelopeType,
    payload: Record<string, unknown>,
    acceptsResponsePayload = false,
  ): FakeSlackEnvelope {
    return this.socket.send(type, payload, acceptsResponsePayload);
  }

  /** Stops everything at once: WebSockets are cut, keep-alive connections closed, pending waitFor timers cleared. */
  async close(): Promise<void> {
    for (const waiter of this.waiters) clearTimeout(waiter.timer);
    this.waiters.clear();
    this.socket.close();
    this.server.closeAllConnections();
    await new Promise<void>((done) => this.server.close(() => done()));
  }

  // ---- HTTP ----------------------------------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.baseUrl);
    const path = url.pathname;
    if (path.startsWith("/api/")) return this.handleApi(req, res, decodeURIComponent(path.slice(5)), url);
    if (path.startsWith("/upload/v1/") && req.method === "POST")
      return this.handleUpload(req, res, path.slice(11));
    if (path.startsWith("/response/") && req.method === "POST")
      return this.handleResponseUrl(req, res, decodeURIComponent(path.slice(10)));
    sendJson(res, 404, { ok: false, error: "not_found" });
  }

  private startCall(
    method: string,
    params: Record<string, unknown>,
    tokenKind: FakeSlackTokenKind,
    contentType: string,
  ) {
    const call: FakeSlackCall = {
      method,
      params,
      tokenKind,
      contentType,
      receivedAt: performance.now(),
      status: 0,
      ok: false,
      unknownParams: [],
    };
    this.calls.push(call);
    return call;
  }

  private finishCall(call: FakeSlackCall, status: number, body: Record<string, unknown>): void {
    call.status = status;
    call.ok = status === 200 && body.ok === true;
    call.error = call.ok ? undefined : String(body.error ?? `http_${status}`);
    call.response = body;
    for (const waiter of [...this.waiters]) {
      if (!waiter.predicate(call)) continue;
      clearTimeout(waiter.timer);
      this.waiters.delete(waiter);
      waiter.resolve(call);
    }
  }

  private tokenKind(token: string | undefined): FakeSlackTokenKind {
    if (!token) return "none";
    if (token === this.config.botToken) return "bot";
    if (token === this.config.appToken) return "app";
    return "invalid";
  }

  private violation(
    method: string,
    kind: FakeSlackViolation["kind"],
    messages: string[],
    params: Record<string, unknown>,
  ): void {
    this.violations.push({ method, kind, messages, params });
  }

  private async handleApi(
    req: IncomingMessage,
    res: ServerResponse,
    method: string,
    url: URL,
  ): Promise<void> {
    const contentType = req.headers["content-type"] ?? "";
    const decoded = await decodeBody(contentType, await readBody(req));
    const params: Record<string, unknown> = { ...Object.fromEntries(url.searchParams), ...decoded.fields };
    const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "")?.[1];
    // Slack takes a token from the form body too, but never from a JSON body.
    const bodyToken = contentType.startsWith("application/json") ? undefined : params.token;
    delete params.token;
    const tokenKind = this.tokenKind(bearer ?? (typeof bodyToken === "string" ? bodyToken : undefined));
    const call = this.startCall(method, params, tokenKind, contentType);
    if (this.hold(call, "before")) return;
    const { status, body, headers } = this.answerApi(call, decoded.error);
    if (body.ok === true && this.hold(call, "after")) return;
    const lost = body.ok === true ? this.lostAnswers.get(method)?.[0] : undefined;
    if (lost) {
      // The method did its work above; the answer never reaches the client.
      if (--lost.remaining <= 0) this.lostAnswers.get(method)?.shift();
      call.lostAnswer = true;
      if (lost.how === "drop") res.destroy();
      else sendJson(res, 500, { ok: false, error: "internal_error" }, headers);
      this.finishCall(call, lost.how === "drop" ? 0 : 500, body);
      return;
    }
    sendJson(res, status, body, headers);
    this.finishCall(call, status, body);
  }

  private answerApi(
    call: FakeSlackCall,
    bodyError: string | undefined,
  ): { status: number; body: Record<string, unknown>; headers: Record<string, string> } {
    const { method, params, tokenKind } = call;
    const needed = METHOD_SCOPES[method];
    const headers: Record<string, string> = {
      "x-slack-req-id": urlToken().slice(0, 16),
      ...(tokenKind === "bot" ? { "x-oauth-scopes": this.config.scopes.join(",") } : {}),
      ...(needed ? { "x-accepted-oauth-scopes": needed } : {}),
    };
    const fail = (error: string, extra: Record<string, unknown> = {}) => ({
      status: 200,
      body: { ok: false, error, ...extra },
      headers,
    });
    const implementation = METHODS[method];
    if (!implementation) return fail("unknown_method");
    if (tokenKind === "none") return fail("not_authed");
    if (tokenKind === "invalid") return fail("invalid_auth");
    if ((tokenKind === "app") !== APP_TOKEN_METHODS.has(method)) return fail("not_allowed_token_type");
    const limit = this.rateLimits.get(method)?.[0];
    if (limit) {
      if (--limit.remaining <= 0) this.rateLimits.get(method)?.shift();
      return {
        status: 429,
        body: { ok: false, error: "ratelimited" },
        headers: { ...headers, "retry-after": String(limit.retryAfterS) },
      };
    }
    if (bodyError) return fail(bodyError);
    const check = checkRequest(method, params);
    call.unknownParams = check.unknownParams;
    if (check.badJson.includes("blocks")) {
      this.violation(method, check.contract === "hand" ? "contract" : "spec", check.errors, params);
      return fail("invalid_blocks_format");
    }
    if (check.errors.length > 0) {
      this.violation(method, check.contract === "hand" ? "contract" : "spec", check.errors, params);
      return fail("invalid_arguments", {
        response_metadata: { messages: check.errors.map((e) => `[ERROR] ${e}`) },
      });
    }
    if (tokenKind === "bot" && needed && !this.config.scopes.includes(needed))
      return fail("missing_scope", { needed, provided: this.config.scopes.join(",") });
    const context: MethodContext = {
      state: this.state,
      uploadUrl: (fileId) => {
        const ticket = urlToken();
        this.uploadTickets.set(ticket, fileId);
        return `${this.baseUrl}/upload/v1/${ticket}`;
      },
      socketUrl: () => this.socket.issueUrl(),
      violation: (kind, messages) => this.violation(method, kind, messages, params),
    };
    try {
      return { status: 200, body: implementation(context, params), headers };
    } catch (err) {
      if (err instanceof SlackApiError) return fail(err.error, err.extra);
      throw err;
    }
  }

  /** The upload URL: the bytes come raw or as the one file part of a multipart body (web-api names it `body`). */
  private async handleUpload(req: IncomingMessage, res: ServerResponse, ticket: string): Promise<void> {
    const contentType = req.headers["content-type"] ?? "";
    const raw = await readBody(req);
    const fileId = this.uploadTickets.get(ticket);
    const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "")?.[1];
    const call = this.startCall("upload", { file_id: fileId }, this.tokenKind(bearer), contentType);
    const file = fileId === undefined ? undefined : this.state.files.get(fileId);
    const reply = (status: number, text: string, body: Record<string, unknown>) => {
      if (!res.destroyed) {
        res.writeHead(status, { "content-type": "text/plain; charset=utf-8" });
        res.end(text);
      }
      this.finishCall(call, status, body);
    };
    if (!file || fileId === undefined)
      return reply(404, "Not Found", { ok: false, error: "invalid_upload_url" });
    this.uploadTickets.delete(ticket);
    let bytes: Uint8Array = new Uint8Array(raw);
    if (contentType.toLowerCase().startsWith("multipart/form-data")) {
      const decoded = await decodeBody(contentType, raw);
      const part = decoded.files[0];
      if (!part) return reply(400, "Bad Request", { ok: false, error: "no_file_data" });
      bytes = part.bytes;
      call.params = { ...call.params, part: part.field, filename: part.filename };
    }
    call.params = { ...call.params, length: bytes.length };
    file.bytes = bytes;
    Object.assign(file, sniffFileType(file.name, bytes));
    if (bytes.length !== file.declaredLength) {
      this.violation(
        "upload",
        "upload",
        [`declared length ${file.declaredLength} but received ${bytes.length} bytes`],
        {
          file_id: fileId,
        },
      );
    }
    reply(200, `OK - ${bytes.length}`, { ok: true });
  }

  private async handleResponseUrl(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    const contentType = req.headers["content-type"] ?? "";
    const decoded = await decodeBody(contentType, await readBody(req));
    const call = this.startCall("response_url", { ...decoded.fields }, "none", contentType);
    if (this.hold(call, "before")) return;
    const answer = decoded.error
      ? { status: 400, body: { ok: false, error: "invalid_payload" } }
      : this.responseUrls.post(id, decoded.fields);
    if (answer.status === 200 && this.hold(call, "after")) return;
    sendJson(res, answer.status, answer.body);
    this.finishCall(call, answer.status, answer.body);
  }

  /** A slash command's ack may carry the immediate response: Slack shows it (ephemeral unless in_channel). */
  private applyAck(
    envelope: { type: EnvelopeType; payload: Record<string, unknown> },
    ack: FakeSlackAck,
  ): void {
    const payload = ack.payload;
    if (envelope.type !== "slash_commands" || !payload) return;
    const text = typeof payload.text === "string" ? payload.text : "";
    const blocks = Array.isArray(payload.blocks) ? payload.blocks : undefined;
    if (!text && !blocks) return;
    const errors = [
      ...(blocks ? blockKitErrors(blocks) : []),
      ...(text.length > MAX_TEXT_CHARS ? [`text must be at most ${MAX_TEXT_CHARS} characters`] : []),
    ];
    if (errors.length > 0) {
      this.violation("ack", "block-kit", errors, payload);
      return;
    }
    const command = envelope.payload;
    const channel = String(command.channel_id);
    const user = String(command.user_id);
    const inChannel = payload.response_type === "in_channel";
    const message = this.state.addMessage({
      channel,
      text,
      blocks,
      ephemeral: !inChannel,
      ephemeralUser: inChannel ? undefined : user,
      via: "ack",
    });
    const responseUrl = this.responseUrlRecords.find((r) => r.url === command.response_url);
    responseUrl?.postedTs.push(message.ts);
  }
}
