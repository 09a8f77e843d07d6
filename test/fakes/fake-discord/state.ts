import { randomBytes } from "node:crypto";
import {
  type FakeAttachment,
  type FakeChannel,
  type FakeGuild,
  type FakeMessage,
  type FakeUser,
  isoTimestamp,
  MessageFlag,
  numberComponents,
  pngSize,
  type SnowflakeFactory,
  sniffContentType,
} from "./payloads.ts";
import type { FieldError } from "./spec-validator.ts";

/**
 * What the fake Discord remembers: messages by channel (with their attachments' bytes), interactions and what
 * the bot did with each, registered commands, and every REST request. The REST routes and the gateway both
 * work on this; tests read it through FakeDiscord.
 */

/** A file part of a multipart request. */
export interface RecordedFile {
  /** The form field name, e.g. "files[0]". */
  name: string;
  filename: string;
  contentType: string;
  bytes: Uint8Array;
}

/** One REST request the fake received. */
export interface RecordedRequest {
  method: string;
  /** The spec's path template ("/channels/{channel_id}/messages"), or null for an unknown route. */
  route: string | null;
  /** The path below the versioned base, e.g. "/channels/1200000000000000002/messages". */
  path: string;
  params: Record<string, string>;
  query: Record<string, string>;
  /** The JSON body, or the parsed `payload_json` of a multipart body; undefined when there was none. */
  body: unknown;
  files: RecordedFile[];
  /** Whether the request carried the right `Authorization: Bot <token>` header. */
  authorized: boolean;
  /** performance.now() when the request arrived. */
  receivedAt: number;
  /** The status the fake answered (0 while it is being handled, or when a scripted drop cut it off). */
  status: number;
  /** The request took effect but its answer was lost (loseAnswerNext): a 500, or a dropped connection. */
  lostAnswer?: boolean;
  /** Held without an answer (holdNext): before it took effect (it never does), or after. */
  held?: "before" | "after";
  /** The JSON the fake answered with, if any. */
  response?: unknown;
}

/** A request Discord would have refused as malformed (400 Invalid Form Body or Cannot send an empty message). */
export interface Violation {
  method: string;
  route: string;
  path: string;
  code: number;
  /** Flat, readable descriptions ("data.components: Must be 5 or fewer in length. (BASE_TYPE_MAX_LENGTH)"). */
  errors: string[];
  body: unknown;
}

/** One attempt at an interaction callback, accepted or not. */
export interface RecordedCallback {
  type: number;
  body: unknown;
  files: RecordedFile[];
  withResponse: boolean;
  /** performance.now() when it arrived. */
  receivedAt: number;
  /** receivedAt minus the moment the INTERACTION_CREATE frame was sent. */
  latencyMs: number;
  status: number;
}

/** An interaction the fake dispatched and what the bot did with it. */
export interface RecordedInteraction {
  id: string;
  token: string;
  /** 2 application command, 3 message component, 4 autocomplete, 5 modal submit. */
  type: number;
  payload: Record<string, unknown>;
  /** The injected clock's time at dispatch: the origin of the 3-second and 15-minute windows. */
  createdAt: number;
  /** performance.now() right before the frame was sent (or queued for a disconnected session). */
  sentAt: number;
  seq: number;
  guildId: string;
  channelId: string;
  user: FakeUser;
  /** For a component interaction, the message the component is on. */
  sourceMessageId?: string;
  /** The callback the fake accepted. */
  callback?: RecordedCallback;
  /** Every callback attempt, including refused ones (late, duplicate, invalid). */
  callbackAttempts: RecordedCallback[];
  /** The message @original refers to, once there is one. */
  originalMessageId?: string;
  followUpIds: string[];
}

/** A registered application command as Discord returns it. */
export type StoredCommand = Record<string, unknown> & { id: string; name: string; type: number };

/** A message and the bytes behind its attachments. */
export interface StoredMessage {
  message: FakeMessage;
  guildId: string | null;
  bytes: Map<string, Uint8Array>;
  deleted: boolean;
}

/** A scripted 429. */
export interface RateLimitRule {
  matches: (req: RecordedRequest) => boolean;
  retryAfterS: number;
  global: boolean;
  scope: "user" | "global" | "shared";
  remaining: number;
}

/**
 * A scripted lost answer: Discord did what the request asked (the message exists), then the answer never
 * reached the client: a 500, or the connection dropped without one.
 */
export interface LostAnswerRule {
  matches: (req: RecordedRequest) => boolean;
  how: "500" | "drop";
  remaining: number;
}

/**
 * A scripted hold: the request is kept without an answer until the client goes away, either before it takes
 * effect (it never does) or after (Discord did the work; the answer never comes). `onHeld` tells the test, at
 * the moment of the hold, so that it can act there (kill the client: "posted, not recorded").
 */
export interface HoldRule {
  matches: (req: RecordedRequest) => boolean;
  when: "before" | "after";
  remaining: number;
  onHeld: (req: RecordedRequest) => void;
}

/** How long Discord keeps a nonce for enforce_nonce ("the past few minutes"). */
export const NONCE_WINDOW_MS = 5 * 60_000;

/** Thrown by a route to answer with a Discord error. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
    readonly errors?: Record<string, unknown>,
    /** The flat errors, when this is a body Discord would refuse: it is then also recorded as a violation. */
    readonly violation?: FieldError[],
  ) {
    super(message);
  }
}

/** The canned errors Discord answers with. */
export const Errors = {
  unknownChannel: () => new ApiError(404, 10003, "Unknown Channel"),
  unknownGuild: () => new ApiError(404, 10004, "Unknown Guild"),
  unknownMember: () => new ApiError(404, 10007, "Unknown Member"),
  unknownMessage: () => new ApiError(404, 10008, "Unknown Message"),
  unknownUser: () => new ApiError(404, 10013, "Unknown User"),
  unknownWebhook: () => new ApiError(404, 10015, "Unknown Webhook"),
  unknownCommand: () => new ApiError(404, 10063, "Unknown application command"),
  unknownInteraction: () => new ApiError(404, 10062, "Unknown interaction"),
  invalidWebhookToken: () => new ApiError(401, 50027, "Invalid Webhook Token"),
  alreadyAcknowledged: () => new ApiError(400, 40060, "Interaction has already been acknowledged."),
  tooLarge: () => new ApiError(413, 40005, "Request entity too large"),
  notAuthor: () => new ApiError(403, 50005, "Cannot edit a message authored by another user"),
  nonTextChannel: () => new ApiError(400, 50008, "Cannot send messages in a non-text channel"),
  emptyMessage: (path: (string | number)[] = []) =>
    new ApiError(400, 50006, "Cannot send an empty message", undefined, [
      { path, code: "EMPTY_MESSAGE", message: "Cannot send an empty message" },
    ]),
};

/** The fields a message body may set, as the routes pass them on after validation. */
export interface MessageBody {
  content?: unknown;
  embeds?: unknown;
  components?: unknown;
  attachments?: unknown;
  flags?: unknown;
  tts?: unknown;
  nonce?: unknown;
  message_reference?: unknown;
  [key: string]: unknown;
}

/** How a new message comes to be. */
export interface NewMessage {
  channel: FakeChannel;
  author: Record<string, unknown>;
  body: MessageBody;
  files: RecordedFile[];
  type: number;
  /** Flags Discord sets itself (LOADING, EPHEMERAL for a deferred ephemeral reply). */
  extraFlags?: number;
  /** Posted through the application's webhook (interaction responses and follow-ups). */
  applicationId?: string;
  interactionMetadata?: Record<string, unknown>;
  interaction?: Record<string, unknown>;
  messageReference?: Record<string, unknown>;
}

/** Flags a sender may set on a message; Discord ignores the rest. */
const SETTABLE_FLAGS =
  MessageFlag.SuppressEmbeds |
  MessageFlag.Ephemeral |
  MessageFlag.SuppressNotifications |
  MessageFlag.IsComponentsV2;

/** The in-memory world of the fake. */
export class DiscordState {
  readonly requests: RecordedRequest[] = [];
  readonly violations: Violation[] = [];
  readonly interactions = new Map<string, RecordedInteraction>();
  readonly interactionsByToken = new Map<string, RecordedInteraction>();
  readonly globalCommands: StoredCommand[] = [];
  readonly guildCommands = new Map<string, StoredCommand[]>();
  readonly rateLimits: RateLimitRule[] = [];
  readonly lostAnswers: LostAnswerRule[] = [];
  readonly holds: HoldRule[] = [];
  /** DM channels the bot opened (POST /users/@me/channels), by recipient user id. */
  readonly dmChannels = new Map<string, FakeChannel>();
  /** Users who do not take DMs from the bot (50007 Cannot send messages to this user). */
  readonly closedDms = new Set<string>();
  /** Users the fake has seen (the bot, interaction users, message authors), for GET /users/{id}. */
  readonly users = new Map<string, FakeUser>();
  /** Files users attached to slash command options (served under /ephemeral-attachments). */
  readonly uploads = new Map<string, Uint8Array>();
  private readonly stored = new Map<string, StoredMessage>();
  private readonly byChannel = new Map<string, string[]>();
  private readonly waiters = new Map<() => void, (reason: Error) => void>();
  /** Told about every message created, edited or deleted (the gateway turns them into MESSAGE_* events). */
  onMessageEvent: (t: "MESSAGE_CREATE" | "MESSAGE_UPDATE" | "MESSAGE_DELETE", stored: StoredMessage) => void =
    () => {};

  constructor(
    readonly ids: SnowflakeFactory,
    readonly clock: () => number,
    readonly guilds: FakeGuild[],
    readonly botUser: FakeUser,
    /** http://127.0.0.1:PORT, where attachment URLs point. */
    readonly origin: string,
  ) {}

  channel(id: string): FakeChannel | undefined {
    for (const guild of this.guilds) {
      const found = guild.channels.find((c) => c.id === id);
      if (found) return found;
    }
    for (const dm of this.dmChannels.values()) if (dm.id === id) return dm;
    return undefined;
  }

  /** The bot's DM channel with a user, opened on first use. */
  dmChannel(userId: string): FakeChannel {
    let dm = this.dmChannels.get(userId);
    if (!dm) {
      dm = {
        id: this.ids.next(),
        guildId: "",
        name: "",
        type: 1,
        nsfw: false,
        topic: null,
        position: 0,
        attachmentSizeLimit: 10 * 1024 * 1024,
      };
      this.dmChannels.set(userId, dm);
    }
    return dm;
  }

  /** The message a bot sent with this nonce in this channel within Discord's nonce window (enforce_nonce). */
  messageByNonce(channelId: string, authorId: string, nonce: unknown): FakeMessage | undefined {
    const since = this.clock() - NONCE_WINDOW_MS;
    return this.channelMessages(channelId).find(
      (m) =>
        m.nonce === nonce &&
        (m.author as { id?: string }).id === authorId &&
        Date.parse(m.timestamp) >= since,
    );
  }

  guild(id: string): FakeGuild | undefined {
    return this.guilds.find((g) => g.id === id);
  }

  findMessage(id: string): StoredMessage | undefined {
    const s = this.stored.get(id);
    return s && !s.deleted ? s : undefined;
  }

  /** Messages of a channel, oldest first, deleted ones left out. */
  channelMessages(channelId: string): FakeMessage[] {
    return (this.byChannel.get(channelId) ?? []).flatMap((id) => {
      const s = this.findMessage(id);
      return s ? [s.message] : [];
    });
  }

  /** Bytes of an attachment, by attachment id, for the local CDN. */
  attachmentBytes(attachmentId: string): Uint8Array | undefined {
    const upload = this.uploads.get(attachmentId);
    if (upload) return upload;
    for (const s of this.stored.values()) {
      const bytes = s.bytes.get(attachmentId);
      if (bytes) return bytes;
    }
    return undefined;
  }

  // ---- Messages -------------------------------------------------------------------------------------------

  /** Creates and stores a message. */
  createMessage(init: NewMessage): FakeMessage {
    const id = this.ids.next();
    const flags = (Number(init.body.flags ?? 0) & SETTABLE_FLAGS) | (init.extraFlags ?? 0);
    const ephemeral = (flags & MessageFlag.Ephemeral) !== 0;
    const bytes = new Map<string, Uint8Array>();
    const attachments = this.buildAttachments(
      init.channel.id,
      init.body.attachments,
      init.files,
      [],
      bytes,
      ephemeral,
    );
    const message: FakeMessage = {
      type: init.type,
      content: typeof init.body.content === "string" ? init.body.content : "",
      mentions: [],
      mention_roles: [],
      attachments,
      embeds: this.resolveEmbeds(init.body.embeds, attachments),
      timestamp: isoTimestamp(this.clock()),
      edited_timestamp: null,
      flags,
      components: Array.isArray(init.body.components) ? numberComponents(init.body.components) : [],
      id,
      channel_id: init.channel.id,
      author: init.author,
      pinned: false,
      mention_everyone: false,
      tts: init.body.tts === true,
      ...(typeof init.body.nonce === "string" || typeof init.body.nonce === "number"
        ? { nonce: init.body.nonce }
        : {}),
      ...(init.applicationId ? { webhook_id: init.applicationId, application_id: init.applicationId } : {}),
      ...(init.interactionMetadata ? { interaction_metadata: init.interactionMetadata } : {}),
      ...(init.interaction ? { interaction: init.interaction } : {}),
      ...(init.messageReference ? { message_reference: init.messageReference } : {}),
    };
    const stored: StoredMessage = { message, guildId: init.channel.guildId, bytes, deleted: false };
    this.stored.set(id, stored);
    const list = this.byChannel.get(init.channel.id) ?? [];
    list.push(id);
    this.byChannel.set(init.channel.id, list);
    this.onMessageEvent("MESSAGE_CREATE", stored);
    return message;
  }

  /** Applies an edit (PATCH semantics: absent fields stay, null clears) and returns the message. */
  editMessage(
    stored: StoredMessage,
    body: MessageBody,
    files: RecordedFile[],
    clearLoading = false,
  ): FakeMessage {
    const m = stored.message;
    const wasLoading = (m.flags & MessageFlag.Loading) !== 0;
    if ("content" in body) m.content = typeof body.content === "string" ? body.content : "";
    if ("components" in body) {
      m.components = Array.isArray(body.components) ? numberComponents(body.components) : [];
    }
    if ("attachments" in body || files.length > 0) {
      m.attachments = this.buildAttachments(
        m.channel_id,
        body.attachments,
        files,
        m.attachments,
        stored.bytes,
        (m.flags & MessageFlag.Ephemeral) !== 0,
      );
    }
    if ("embeds" in body) m.embeds = this.resolveEmbeds(body.embeds, m.attachments);
    if ("flags" in body && typeof body.flags === "number") {
      // Only SUPPRESS_EMBEDS and IS_COMPONENTS_V2 can change on an edit; ephemerality cannot.
      const editable = MessageFlag.SuppressEmbeds | MessageFlag.IsComponentsV2;
      m.flags = (m.flags & ~editable) | (body.flags & editable);
    }
    if (clearLoading && wasLoading) {
      // The deferred "thinking…" message becomes the reply: Discord does not mark that as an edit.
      m.flags &= ~MessageFlag.Loading;
    } else {
      m.edited_timestamp = isoTimestamp(this.clock());
    }
    this.onMessageEvent("MESSAGE_UPDATE", stored);
    return m;
  }

  deleteMessage(stored: StoredMessage): void {
    stored.deleted = true;
    this.onMessageEvent("MESSAGE_DELETE", stored);
  }

  /**
   * The attachments of a message after a create or an edit. `entries` is the body's `attachments`: entries
   * naming an existing attachment keep it; entries whose id is a file index describe the upload `files[id]`.
   * Without `entries`, existing attachments stay and every upload is added.
   */
  private buildAttachments(
    channelId: string,
    entries: unknown,
    files: RecordedFile[],
    existing: FakeAttachment[],
    bytes: Map<string, Uint8Array>,
    ephemeral: boolean,
  ): FakeAttachment[] {
    const byIndex = new Map<string, RecordedFile>();
    files.forEach((f, i) => {
      byIndex.set(fileIndex(f, i), f);
    });
    const out: FakeAttachment[] = [];
    const used = new Set<RecordedFile>();
    if (Array.isArray(entries) || entries === null) {
      for (const raw of entries ?? []) {
        const entry = (typeof raw === "object" && raw !== null ? raw : {}) as Record<string, unknown>;
        const id = String(entry.id ?? "");
        const kept = existing.find((a) => a.id === id);
        if (kept) {
          out.push(kept);
          continue;
        }
        const file = byIndex.get(id);
        if (!file) continue;
        used.add(file);
        out.push(this.newAttachment(channelId, file, entry, bytes, ephemeral));
      }
    } else {
      out.push(...existing);
    }
    for (const file of files) {
      if (!used.has(file)) out.push(this.newAttachment(channelId, file, {}, bytes, ephemeral));
    }
    // Attachments dropped by an edit take their bytes with them.
    const live = new Set(out.map((a) => a.id));
    for (const id of [...bytes.keys()]) if (!live.has(id)) bytes.delete(id);
    return out;
  }

  private newAttachment(
    channelId: string,
    file: RecordedFile,
    entry: Record<string, unknown>,
    bytes: Map<string, Uint8Array>,
    ephemeral: boolean,
  ): FakeAttachment {
    const id = this.ids.next();
    const filename = typeof entry.filename === "string" ? entry.filename : file.filename;
    const contentType = sniffContentType(file.bytes, file.contentType);
    const size = pngSize(file.bytes);
    // Real CDN URLs are signed (ex: expiry, is: issued, hm: HMAC); a bot must keep the query string.
    const issued = Math.floor(this.clock() / 1000);
    const signature = `ex=${(issued + 86_400).toString(16)}&is=${issued.toString(16)}&hm=${randomBytes(32).toString("hex")}&`;
    const path = `/attachments/${channelId}/${id}/${encodeURIComponent(filename)}`;
    bytes.set(id, file.bytes);
    return {
      id,
      filename,
      size: file.bytes.length,
      url: `${this.origin}${path}?${signature}`,
      proxy_url: `${this.origin}/media${path}?${signature}`,
      ...(contentType ? { content_type: contentType } : {}),
      ...(size ? { width: size.width, height: size.height } : {}),
      ...(typeof entry.description === "string" ? { description: entry.description } : {}),
      ...(typeof entry.title === "string" ? { title: entry.title } : {}),
      ...(ephemeral ? { ephemeral: true } : {}),
    };
  }

  /** Embeds as Discord returns them: typed "rich", and `attachment://name` images pointing at the upload. */
  private resolveEmbeds(embeds: unknown, attachments: FakeAttachment[]): Record<string, unknown>[] {
    if (!Array.isArray(embeds)) return [];
    const media = (value: unknown) => {
      if (typeof value !== "object" || value === null) return value;
      const ref = value as Record<string, unknown>;
      const url = typeof ref.url === "string" ? ref.url : "";
      if (!url.startsWith("attachment://")) return { ...ref, proxy_url: url };
      const name = url.slice("attachment://".length);
      const a = attachments.find((x) => x.filename === name);
      if (!a) return ref;
      return {
        url: a.url,
        proxy_url: a.proxy_url,
        ...(a.width ? { width: a.width, height: a.height } : {}),
        ...(a.content_type ? { content_type: a.content_type } : {}),
        flags: 0,
      };
    };
    return embeds.map((raw) => {
      const e = { type: "rich", ...(raw as Record<string, unknown>), content_scan_version: 0 };
      if ("image" in e) e.image = media(e.image);
      if ("thumbnail" in e) e.thumbnail = media(e.thumbnail);
      return e;
    });
  }

  // ---- Waiting ----------------------------------------------------------------------------------------------

  /** Re-checks every pending wait; called after anything a test may be waiting for. */
  notify(): void {
    for (const check of [...this.waiters.keys()]) check();
  }

  /**
   * Resolves with the first non-undefined `probe()` result, now, after a later notify(), or at a poll every
   * `pollMs`; rejects on timeout.
   */
  waitUntil<T>(probe: () => T | undefined, timeoutMs: number, what: string, pollMs?: number): Promise<T> {
    const first = probe();
    if (first !== undefined) return Promise.resolve(first);
    return new Promise<T>((resolve, reject) => {
      const finish = () => {
        this.waiters.delete(check);
        clearTimeout(timer);
        if (poll) clearInterval(poll);
      };
      const check = () => {
        const value = probe();
        if (value === undefined) return;
        finish();
        resolve(value);
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`fake Discord: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      // Conditions on things outside the fake (a client's state) are polled as well.
      const poll = pollMs === undefined ? undefined : setInterval(check, pollMs);
      this.waiters.set(check, (reason) => {
        finish();
        reject(reason);
      });
    });
  }

  /** Rejects every pending wait (the fake is closing). */
  cancelWaits(reason: Error): void {
    for (const cancel of [...this.waiters.values()]) cancel(reason);
  }
}

/** The upload index of a file part: n for "files[n]", else its position. */
export function fileIndex(file: RecordedFile, position: number): string {
  return /^files\[(\d+)\]$/.exec(file.name)?.[1] ?? String(position);
}

const count = (v: unknown) => (Array.isArray(v) ? v.length : 0);

/** Whether a new message would show nothing (Discord: 50006 Cannot send an empty message). */
export function emptyCreate(body: MessageBody, files: RecordedFile[]): boolean {
  const content = typeof body.content === "string" ? body.content : "";
  const other = count(body.embeds) + count(body.components) + count(body.sticker_ids) + files.length;
  return content === "" && other === 0 && body.poll === undefined;
}

/** Whether a message would show nothing after this edit (PATCH semantics: absent fields stay). */
export function emptyAfterEdit(m: FakeMessage, body: MessageBody, files: RecordedFile[]): boolean {
  const content = "content" in body ? (typeof body.content === "string" ? body.content : "") : m.content;
  const embeds = "embeds" in body ? count(body.embeds) : m.embeds.length;
  const components = "components" in body ? count(body.components) : m.components.length;
  const attachments = files.length + ("attachments" in body ? count(body.attachments) : m.attachments.length);
  return content === "" && embeds + components + attachments === 0;
}
