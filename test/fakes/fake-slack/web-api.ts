import { blockKitErrors } from "./block-kit.ts";
import { sniffFileType, type WorkspaceState } from "./state.ts";

/**
 * The Web API methods the fake implements, as functions of the workspace state and the decoded parameters.
 * Authentication, rate limits and the contract check happen before these run (see index.ts); a method answers
 * a success body or throws {@link SlackApiError}, which becomes `{ok:false, error, …}` with HTTP 200, as Slack
 * answers every failure but rate limiting.
 */

type Json = Record<string, unknown>;

/** A Slack error answer (`{ok:false, error}` plus any extra fields such as `errors` or `needed`). */
export class SlackApiError extends Error {
  constructor(
    readonly error: string,
    readonly extra: Json = {},
  ) {
    super(error);
  }
}

/** What a method needs besides the state. */
export interface MethodContext {
  state: WorkspaceState;
  /** Issues an upload URL for a new file id. */
  uploadUrl(fileId: string): string;
  /** Issues a one-time Socket Mode WebSocket URL. */
  socketUrl(): string;
  /** Records a request the real Slack would refuse for breaking its contract. */
  violation(kind: "block-kit" | "upload", messages: string[]): void;
}

/** Slack's message text limit: longer text is refused with msg_too_long. */
export const MAX_TEXT_CHARS = 40_000;
/** The most legacy attachments one message may carry. */
export const MAX_ATTACHMENTS = 100;

/** The OAuth scope each method needs (sent back in `x-accepted-oauth-scopes`, checked against the bot's). */
export const METHOD_SCOPES: Record<string, string | undefined> = {
  "auth.test": undefined,
  "chat.postMessage": "chat:write",
  "chat.update": "chat:write",
  "chat.postEphemeral": "chat:write",
  "chat.delete": "chat:write",
  "conversations.info": "channels:read",
  "conversations.history": "channels:history",
  "conversations.replies": "channels:history",
  "users.info": "users:read",
  "files.getUploadURLExternal": "files:write",
  "files.completeUploadExternal": "files:write",
  "files.info": "files:read",
  "apps.connections.open": "connections:write",
};

/** Scopes a bot of the fake has unless a test says otherwise (no chat:write.public, so not_in_channel works). */
export const DEFAULT_SCOPES = [
  "chat:write",
  "commands",
  "files:write",
  "files:read",
  "channels:read",
  "groups:read",
  "channels:history",
  "groups:history",
  "users:read",
] as const;

/** Methods that take the app-level token (`xapp-…`) rather than the bot token. */
export const APP_TOKEN_METHODS = new Set(["apps.connections.open"]);

const str = (params: Json, name: string): string | undefined => {
  const v = params[name];
  return v === undefined || v === null || v === "" ? undefined : String(v);
};

/** A field that form bodies carry as JSON text and JSON bodies as a value. */
function jsonField(params: Json, name: string, formatError: string): unknown {
  const v = params[name];
  if (typeof v !== "string") return v;
  if (v === "") return undefined;
  try {
    return JSON.parse(v);
  } catch {
    throw new SlackApiError(formatError);
  }
}

/** The content of a message (text, blocks, attachments), checked as chat.postMessage checks it. */
export interface MessageContent {
  text: string;
  blocks?: unknown[] | undefined;
  attachments?: unknown[] | undefined;
}

/**
 * Reads and checks message content: blocks must parse (`invalid_blocks_format`) and keep Block Kit's limits
 * (`invalid_blocks`, with Slack's per-block errors), at most 100 attachments, text at most 40,000 characters
 * (`msg_too_long`), and something to show (`no_text`) unless `allowEmpty`.
 */
export function messageContent(
  params: Json,
  onBlockKitErrors: (errors: string[]) => void,
  allowEmpty = false,
): MessageContent {
  const blocks = jsonField(params, "blocks", "invalid_blocks_format");
  if (blocks !== undefined && !Array.isArray(blocks)) throw new SlackApiError("invalid_blocks_format");
  if (blocks) {
    const errors = blockKitErrors(blocks);
    if (errors.length > 0) {
      onBlockKitErrors(errors);
      throw new SlackApiError("invalid_blocks", {
        errors,
        response_metadata: { messages: errors.map((e) => `[ERROR] ${e}`) },
      });
    }
  }
  const attachments = jsonField(params, "attachments", "invalid_attachments");
  if (attachments !== undefined && !Array.isArray(attachments))
    throw new SlackApiError("invalid_attachments");
  if (attachments && attachments.length > MAX_ATTACHMENTS) throw new SlackApiError("too_many_attachments");
  const text = str(params, "text");
  if (text !== undefined && text.length > MAX_TEXT_CHARS) throw new SlackApiError("msg_too_long");
  if (!allowEmpty && text === undefined && !blocks?.length && !attachments?.length)
    throw new SlackApiError("no_text");
  return { text: text ?? "", blocks, attachments };
}

type Channel = NonNullable<ReturnType<WorkspaceState["channel"]>>;

/** The channel a method names, as the bot sees it; a user id names the DM with that user. */
function requireChannel(ctx: MethodContext, idOrName: string | undefined): Channel {
  if (idOrName === undefined) throw new SlackApiError("channel_not_found");
  const { state } = ctx;
  if (/^[UW][A-Z0-9]+$/.test(idOrName)) {
    if (!state.users.has(idOrName)) throw new SlackApiError("channel_not_found");
    const dmId = `D${idOrName.slice(1)}`;
    if (!state.channels.has(dmId)) state.addChannel({ id: dmId, name: "directmessage", isPrivate: true });
    return state.channels.get(dmId) as Channel;
  }
  const channel = state.visibleChannel(idOrName);
  if (!channel) throw new SlackApiError("channel_not_found");
  return channel;
}

/** Slack lets a bot post where it is a member, in its DMs, or in any public channel with chat:write.public. */
function requirePostable(ctx: MethodContext, channel: Channel): void {
  const publicWrite = !channel.isPrivate && ctx.state.config.scopes.includes("chat:write.public");
  if (!channel.isMember && !publicWrite && !channel.id.startsWith("D"))
    throw new SlackApiError("not_in_channel");
}

type Method = (ctx: MethodContext, params: Json) => Json;

type StoredMessage = WorkspaceState["messages"][number];

/** Messages between `oldest` and `latest` (exclusive, Slack's default), the newest `limit` (default 100). */
function pick(all: StoredMessage[], params: Json): { messages: StoredMessage[]; more: boolean } {
  const oldest = Number(str(params, "oldest") ?? 0);
  const latest = Number(str(params, "latest") ?? Number.POSITIVE_INFINITY);
  const limit = Math.min(1000, Math.max(1, Number(str(params, "limit") ?? 100)));
  const inRange = all.filter((m) => Number(m.ts) > oldest && Number(m.ts) < latest);
  return { messages: inRange.slice(-limit), more: inRange.length > limit };
}

const blockKitViolation = (ctx: MethodContext) => (errors: string[]) => ctx.violation("block-kit", errors);

/** The implemented methods, by name. */
export const METHODS: Record<string, Method> = {
  "auth.test": (ctx) => {
    const c = ctx.state.config;
    return {
      ok: true,
      url: `https://${c.teamDomain}.slack.com/`,
      team: c.teamName,
      user: c.botUserName,
      team_id: c.teamId,
      user_id: c.botUserId,
      bot_id: c.botId,
      is_enterprise_install: false,
    };
  },

  "chat.postMessage": (ctx, params) => {
    const channel = requireChannel(ctx, str(params, "channel"));
    requirePostable(ctx, channel);
    const content = messageContent(params, blockKitViolation(ctx));
    const metadata = jsonField(params, "metadata", "invalid_metadata_format") as
      | { event_type?: unknown; event_payload?: unknown }
      | undefined;
    if (
      metadata !== undefined &&
      (typeof metadata?.event_type !== "string" || typeof metadata.event_payload !== "object")
    )
      throw new SlackApiError("invalid_metadata_format");
    const message = ctx.state.addMessage({
      channel: channel.id,
      ...content,
      thread_ts: str(params, "thread_ts"),
      via: "chat.postMessage",
      ...(metadata ? { metadata: metadata as { event_type: string; event_payload: unknown } } : {}),
    });
    return { ok: true, channel: channel.id, ts: message.ts, message: ctx.state.messageObject(message) };
  },

  "chat.update": (ctx, params) => {
    const channel = requireChannel(ctx, str(params, "channel"));
    const message = ctx.state.message(channel.id, str(params, "ts") ?? "");
    if (!message || message.ephemeral) throw new SlackApiError("message_not_found");
    if (message.user !== ctx.state.config.botUserId) throw new SlackApiError("cant_update_message");
    const content = messageContent(params, blockKitViolation(ctx));
    ctx.state.updateMessage(message, content, "chat.update");
    return {
      ok: true,
      channel: channel.id,
      ts: message.ts,
      text: message.text,
      message: ctx.state.messageObject(message),
    };
  },

  "chat.postEphemeral": (ctx, params) => {
    const channel = requireChannel(ctx, str(params, "channel"));
    const user = str(params, "user") ?? "";
    if (!ctx.state.users.has(user) || (channel.members && !channel.members.includes(user)))
      throw new SlackApiError("user_not_in_channel");
    requirePostable(ctx, channel);
    const content = messageContent(params, blockKitViolation(ctx));
    const message = ctx.state.addMessage({
      channel: channel.id,
      ...content,
      thread_ts: str(params, "thread_ts"),
      ephemeral: true,
      ephemeralUser: user,
      via: "chat.postEphemeral",
    });
    return { ok: true, message_ts: message.ts };
  },

  "chat.delete": (ctx, params) => {
    const channel = requireChannel(ctx, str(params, "channel"));
    const message = ctx.state.message(channel.id, str(params, "ts") ?? "");
    if (!message || message.ephemeral) throw new SlackApiError("message_not_found");
    if (message.user !== ctx.state.config.botUserId) throw new SlackApiError("cant_delete_message");
    message.deleted = true;
    return { ok: true, channel: channel.id, ts: message.ts };
  },

  "conversations.info": (ctx, params) => {
    const channel = requireChannel(ctx, str(params, "channel"));
    return { ok: true, channel: ctx.state.conversationObject(channel.id) };
  },

  // Reads the bot's channel: top-level messages (a thread's replies stay in the thread), newest first.
  "conversations.history": (ctx, params) => {
    const channel = requireChannel(ctx, str(params, "channel"));
    if (!channel.isMember && !channel.id.startsWith("D")) throw new SlackApiError("not_in_channel");
    const { messages, more } = pick(
      ctx.state.messages.filter(
        (m) =>
          m.channel === channel.id && !m.deleted && !m.ephemeral && (!m.thread_ts || m.thread_ts === m.ts),
      ),
      params,
    );
    return {
      ok: true,
      messages: messages
        .reverse()
        .map((m) =>
          ctx.state.messageObject(
            m,
            params.include_all_metadata === "true" || params.include_all_metadata === true,
          ),
        ),
      has_more: more,
      pin_count: 0,
      response_metadata: { next_cursor: "" },
    };
  },

  // A thread: its parent first, then the replies, oldest first.
  "conversations.replies": (ctx, params) => {
    const channel = requireChannel(ctx, str(params, "channel"));
    if (!channel.isMember && !channel.id.startsWith("D")) throw new SlackApiError("not_in_channel");
    const ts = str(params, "ts") ?? "";
    const parent = ctx.state.message(channel.id, ts);
    if (!parent) throw new SlackApiError("thread_not_found");
    const { messages, more } = pick(
      ctx.state.messages.filter(
        (m) => m.channel === channel.id && !m.deleted && !m.ephemeral && (m.ts === ts || m.thread_ts === ts),
      ),
      params,
    );
    return {
      ok: true,
      messages: messages.map((m) =>
        ctx.state.messageObject(
          m,
          params.include_all_metadata === "true" || params.include_all_metadata === true,
        ),
      ),
      has_more: more,
      response_metadata: { next_cursor: "" },
    };
  },

  "users.info": (ctx, params) => {
    const id = str(params, "user") ?? "";
    const c = ctx.state.config;
    if (id === c.botUserId) {
      const bot = ctx.state.userObject({ id, name: c.botUserName });
      return {
        ok: true,
        user: { ...bot, is_bot: true, profile: { ...(bot.profile as Json), bot_id: c.botId } },
      };
    }
    const user = ctx.state.users.get(id);
    if (!user) throw new SlackApiError("user_not_found");
    return { ok: true, user: ctx.state.userObject(user) };
  },

  "files.getUploadURLExternal": (ctx, params) => {
    const name = str(params, "filename") ?? "";
    const length = Number(params.length);
    if (!Number.isInteger(length) || length <= 0) throw new SlackApiError("missing_argument");
    const altText = str(params, "alt_txt");
    if (altText !== undefined && altText.length > 1000) throw new SlackApiError("alt_txt_too_large");
    const id = ctx.state.mint.id("F");
    ctx.state.files.set(id, {
      id,
      name,
      title: name,
      declaredLength: length,
      altText,
      completed: false,
      ...sniffFileType(name, undefined),
      created: Math.floor(ctx.state.config.now() / 1000),
      user: ctx.state.config.botUserId,
      shares: [],
    });
    return { ok: true, upload_url: ctx.uploadUrl(id), file_id: id };
  },

  "files.completeUploadExternal": (ctx, params) => {
    const entries = jsonField(params, "files", "invalid_arguments") as { id: string; title?: string }[];
    const { state } = ctx;
    const files = entries.map((entry) => {
      const file = state.files.get(entry.id);
      // Slack cannot finish a file whose bytes never reached the upload URL.
      if (!file?.bytes) throw new SlackApiError("file_not_found");
      return { file, title: entry.title };
    });
    const channelId = str(params, "channel_id") ?? str(params, "channels")?.split(",")[0];
    const channel = channelId === undefined ? undefined : requireChannel(ctx, channelId);
    if (channel) requirePostable(ctx, channel);
    const initialComment = str(params, "initial_comment");
    // Slack ignores blocks when an initial comment is given.
    const content =
      initialComment === undefined
        ? messageContent(params, blockKitViolation(ctx), true)
        : { text: initialComment, blocks: undefined, attachments: undefined };
    if (content.text.length > MAX_TEXT_CHARS) throw new SlackApiError("msg_too_long");
    for (const { file, title } of files) {
      if (title !== undefined) file.title = title;
      file.completed = true;
    }
    if (channel) {
      const threadTs = str(params, "thread_ts");
      const message = state.addMessage({
        channel: channel.id,
        text: content.text,
        blocks: content.blocks,
        files: files.map(({ file }) => file.id),
        thread_ts: threadTs,
        via: "files.completeUploadExternal",
      });
      for (const { file } of files)
        file.shares.push({ channel: channel.id, ts: message.ts, thread_ts: threadTs });
    }
    // Slack shares files asynchronously: the answer lists them with empty shares even when a channel was given.
    return { ok: true, files: files.map(({ file }) => state.fileObject(file, false)) };
  },

  "files.info": (ctx, params) => {
    const file = ctx.state.files.get(str(params, "file") ?? "");
    if (!file?.completed) throw new SlackApiError("file_not_found");
    return {
      ok: true,
      file: ctx.state.fileObject(file, true),
      comments: [],
      response_metadata: { next_cursor: "" },
    };
  },

  "apps.connections.open": (ctx) => ({ ok: true, url: ctx.socketUrl() }),
};
