import { blockId, type IdMint } from "./ids.ts";

/**
 * The fake workspace: its configuration, channels, users, messages and files, plus the wire shapes Slack
 * renders them in (message objects, file objects, conversation objects). Handlers of the Web API, the
 * response URLs and Socket Mode acks all write here, and tests read it through FakeSlack.
 */

/** A channel of the fake workspace. */
export interface FakeSlackChannelOptions {
  /** `C…` (public or private channel), `G…` (legacy private) or `D…` (direct message). */
  id: string;
  name: string;
  /** Whether the bot is a member (default true). Posting where it is not answers `not_in_channel`. */
  isMember?: boolean;
  /** Private channels the bot is not in are invisible to it (`channel_not_found`), as in Slack. */
  isPrivate?: boolean;
  /** Members, when a test cares (chat.postEphemeral then answers `user_not_in_channel` for others). */
  members?: string[];
}

/** A user of the fake workspace. */
export interface FakeSlackUserOptions {
  id: string;
  name: string;
  realName?: string;
  isAdmin?: boolean;
  isOwner?: boolean;
}

/** One earlier version of an edited message. */
export interface FakeSlackMessageVersion {
  text: string;
  blocks?: unknown[] | undefined;
  /** The workspace clock (ms) when this version was replaced. */
  replacedAt: number;
  /** What replaced it: "chat.update", "response_url". */
  by: string;
}

/** A message as the fake stores it. */
export interface FakeSlackMessage {
  channel: string;
  ts: string;
  thread_ts?: string | undefined;
  text: string;
  blocks?: unknown[] | undefined;
  attachments?: unknown[] | undefined;
  /** Ids of files shared with the message (files.completeUploadExternal). */
  files?: string[] | undefined;
  /** Message metadata (chat.postMessage `metadata`), shown by history reads that ask for it. */
  metadata?: { event_type: string; event_payload: unknown } | undefined;
  /** Author: the bot user for the bot's messages. */
  user: string;
  bot_id?: string | undefined;
  /** Seen only by `ephemeralUser` (chat.postEphemeral, ephemeral responses); not a real channel message. */
  ephemeral: boolean;
  ephemeralUser?: string | undefined;
  deleted: boolean;
  /** Earlier versions, oldest first (chat.update, replace_original). */
  updates: FakeSlackMessageVersion[];
  /** How it got here: a Web API method, "response_url", "ack" (a slash command's ack payload) or "user". */
  via: string;
}

/** A file as the fake stores it. */
export interface FakeSlackFile {
  id: string;
  name: string;
  title: string;
  /** The `length` promised to files.getUploadURLExternal. */
  declaredLength: number;
  altText?: string | undefined;
  /** Bytes posted to the upload URL (undefined until then). */
  bytes?: Uint8Array | undefined;
  /** Whether files.completeUploadExternal finished it. */
  completed: boolean;
  mimetype: string;
  filetype: string;
  /** Unix seconds. */
  created: number;
  user: string;
  /** Where it was shared: one message each. */
  shares: { channel: string; ts: string; thread_ts?: string | undefined }[];
}

/** The fake workspace's fixed facts. */
export interface WorkspaceConfig {
  teamId: string;
  teamDomain: string;
  teamName: string;
  botUserId: string;
  botUserName: string;
  botId: string;
  appId: string;
  botToken: string;
  appToken: string;
  signingSecret: string;
  /** The legacy verification token Slack still puts in payloads. */
  verificationToken: string;
  scopes: readonly string[];
  now: () => number;
}

type Json = Record<string, unknown>;

/** Channels, users, messages and files of one fake workspace. */
export class WorkspaceState {
  readonly channels = new Map<
    string,
    Required<Omit<FakeSlackChannelOptions, "members">> & { members?: string[] }
  >();
  readonly users = new Map<string, FakeSlackUserOptions>();
  /** Every message of every channel, in posting order. */
  readonly messages: FakeSlackMessage[] = [];
  readonly files = new Map<string, FakeSlackFile>();

  constructor(
    readonly config: WorkspaceConfig,
    readonly mint: IdMint,
    channels: readonly FakeSlackChannelOptions[],
    users: readonly FakeSlackUserOptions[],
  ) {
    for (const c of channels) this.addChannel(c);
    for (const u of users) this.users.set(u.id, u);
  }

  addChannel(c: FakeSlackChannelOptions): void {
    this.channels.set(c.id, {
      id: c.id,
      name: c.name,
      isMember: c.isMember ?? true,
      isPrivate: c.isPrivate ?? false,
      ...(c.members ? { members: c.members } : {}),
    });
  }

  /** A channel by id, or by name with or without `#` (chat.postMessage accepts both). */
  channel(idOrName: string) {
    const byId = this.channels.get(idOrName);
    if (byId) return byId;
    const name = idOrName.replace(/^#/, "");
    for (const c of this.channels.values()) if (c.name === name) return c;
    return undefined;
  }

  /** The channel as the bot can see it: private channels it is not in do not exist for it. */
  visibleChannel(idOrName: string) {
    const c = this.channel(idOrName);
    return c && (!c.isPrivate || c.isMember) ? c : undefined;
  }

  channelName(id: string): string {
    return this.channels.get(id)?.name ?? (id.startsWith("D") ? "directmessage" : "privategroup");
  }

  userName(id: string): string {
    return this.users.get(id)?.name ?? id.toLowerCase();
  }

  /** A message that is still there (not deleted), by channel and ts. */
  message(channel: string, ts: string): FakeSlackMessage | undefined {
    return this.messages.find((m) => m.channel === channel && m.ts === ts && !m.deleted);
  }

  /** Stores a new message, giving it a ts and the block_ids Slack adds to blocks posted without one. */
  addMessage(
    fields: Pick<FakeSlackMessage, "channel" | "text" | "via"> & Partial<Omit<FakeSlackMessage, "ts">>,
  ): FakeSlackMessage {
    const fromBot = fields.user === undefined || fields.user === this.config.botUserId;
    const message: FakeSlackMessage = {
      ts: this.mint.ts(),
      user: this.config.botUserId,
      ephemeral: false,
      deleted: false,
      updates: [],
      ...(fromBot ? { bot_id: this.config.botId } : {}),
      ...fields,
      blocks: withBlockIds(fields.blocks),
    };
    this.messages.push(message);
    return message;
  }

  /** Replaces a message's content, keeping the old version in `updates`. */
  updateMessage(
    message: FakeSlackMessage,
    change: {
      text?: string | undefined;
      blocks?: unknown[] | undefined;
      attachments?: unknown[] | undefined;
    },
    by: string,
  ): void {
    message.updates.push({
      text: message.text,
      blocks: message.blocks,
      replacedAt: this.config.now(),
      by,
    });
    if (change.text !== undefined) message.text = change.text;
    if (change.blocks !== undefined) message.blocks = withBlockIds(change.blocks);
    if (change.attachments !== undefined) message.attachments = change.attachments;
  }

  /** A message as Slack renders it in API answers and payloads (metadata only where asked for). */
  messageObject(m: FakeSlackMessage, withMetadata = false): Json {
    const c = this.config;
    const bot = m.bot_id !== undefined;
    const parent = m.thread_ts && m.thread_ts !== m.ts ? this.message(m.channel, m.thread_ts) : undefined;
    return {
      user: m.user,
      type: "message",
      ts: m.ts,
      ...(bot ? { bot_id: m.bot_id, app_id: c.appId } : {}),
      text: m.text,
      team: c.teamId,
      ...(bot
        ? {
            bot_profile: {
              id: c.botId,
              deleted: false,
              name: c.botUserName,
              updated: 1_700_000_000,
              app_id: c.appId,
              icons: {
                image_36: "https://a.slack-edge.com/80588/img/plugins/app/bot_36.png",
                image_48: "https://a.slack-edge.com/80588/img/plugins/app/bot_48.png",
                image_72: "https://a.slack-edge.com/80588/img/plugins/app/service_72.png",
              },
              team_id: c.teamId,
            },
          }
        : {}),
      ...(m.blocks ? { blocks: m.blocks } : {}),
      ...(m.attachments ? { attachments: m.attachments } : {}),
      ...(m.files ? { files: m.files.flatMap((id) => this.fileObjectById(id)) } : {}),
      ...(m.thread_ts ? { thread_ts: m.thread_ts } : {}),
      ...(parent ? { parent_user_id: parent.user } : {}),
      ...(withMetadata && m.metadata ? { metadata: m.metadata } : {}),
    };
  }

  private fileObjectById(id: string): Json[] {
    const file = this.files.get(id);
    return file ? [this.fileObject(file, true)] : [];
  }

  /** A file object as files.info renders it; `withShares` false gives the empty shares of a fresh upload. */
  fileObject(f: FakeSlackFile, withShares: boolean): Json {
    const base = `https://files.slack.com/files-pri/${this.config.teamId}-${f.id}`;
    const shares: Record<string, Record<string, Json[]>> = {};
    const channels: string[] = [];
    const groups: string[] = [];
    if (withShares) {
      for (const share of f.shares) {
        const channel = this.channels.get(share.channel);
        const kind = channel?.isPrivate ? "private" : "public";
        (channel?.isPrivate ? groups : channels).push(share.channel);
        const byChannel = shares[kind] ?? {};
        shares[kind] = byChannel;
        const list = byChannel[share.channel] ?? [];
        byChannel[share.channel] = list;
        list.push({
          reply_users: [],
          reply_users_count: 0,
          reply_count: 0,
          ts: share.ts,
          ...(share.thread_ts ? { thread_ts: share.thread_ts } : {}),
          channel_name: this.channelName(share.channel),
          team_id: this.config.teamId,
          share_user_id: this.config.botUserId,
          source: "UNKNOWN",
        });
      }
    }
    return {
      id: f.id,
      created: f.created,
      timestamp: f.created,
      name: f.name,
      title: f.title,
      mimetype: f.mimetype,
      filetype: f.filetype,
      pretty_type: f.filetype.toUpperCase(),
      user: f.user,
      user_team: this.config.teamId,
      editable: false,
      size: f.bytes?.length ?? f.declaredLength,
      mode: "hosted",
      is_external: false,
      external_type: "",
      is_public: channels.length > 0,
      public_url_shared: false,
      display_as_bot: false,
      username: "",
      url_private: `${base}/${encodeURIComponent(f.name)}`,
      url_private_download: `${base}/download/${encodeURIComponent(f.name)}`,
      permalink: `https://${this.config.teamDomain}.slack.com/files/${f.user}/${f.id}/${encodeURIComponent(f.name)}`,
      permalink_public: `https://slack-files.com/${this.config.teamId}-${f.id}-0000000000`,
      ...(f.altText ? { alt_txt: f.altText } : {}),
      comments_count: 0,
      is_starred: false,
      shares,
      channels,
      groups,
      ims: [],
      has_more_shares: false,
      has_rich_preview: false,
      file_access: "visible",
    };
  }

  /** A conversation object as conversations.info renders it. */
  conversationObject(id: string): Json {
    const c = this.channels.get(id);
    const created = 1_600_000_000;
    const name = c?.name ?? this.channelName(id);
    if (id.startsWith("D")) {
      return {
        id,
        created,
        is_im: true,
        is_org_shared: false,
        user: this.config.botUserId,
        is_user_deleted: false,
      };
    }
    return {
      id,
      name,
      is_channel: true,
      is_group: false,
      is_im: false,
      is_mpim: false,
      is_private: c?.isPrivate ?? false,
      created,
      is_archived: false,
      is_general: name === "general",
      unlinked: 0,
      name_normalized: name,
      is_shared: false,
      is_org_shared: false,
      is_pending_ext_shared: false,
      pending_shared: [],
      context_team_id: this.config.teamId,
      updated: created * 1000,
      parent_conversation: null,
      creator: "U0000000001",
      is_ext_shared: false,
      shared_team_ids: [this.config.teamId],
      pending_connected_team_ids: [],
      is_member: c?.isMember ?? false,
      topic: { value: "", creator: "", last_set: 0 },
      purpose: { value: "", creator: "", last_set: 0 },
      previous_names: [],
    };
  }

  /** A user object as users.info renders it. */
  userObject(u: FakeSlackUserOptions): Json {
    const real = u.realName ?? u.name;
    return {
      id: u.id,
      team_id: this.config.teamId,
      name: u.name,
      deleted: false,
      color: "9f69e7",
      real_name: real,
      tz: "Europe/Amsterdam",
      tz_label: "Central European Summer Time",
      tz_offset: 7200,
      profile: {
        real_name: real,
        display_name: u.name,
        real_name_normalized: real,
        team: this.config.teamId,
      },
      is_admin: u.isAdmin ?? false,
      is_owner: u.isOwner ?? false,
      is_primary_owner: false,
      is_restricted: false,
      is_ultra_restricted: false,
      is_bot: false,
      is_app_user: false,
      updated: 1_700_000_000,
    };
  }
}

/** Slack gives every block without a `block_id` a random one, and echoes it in actions and message objects. */
function withBlockIds(blocks: unknown[] | undefined): unknown[] | undefined {
  return blocks?.map((b) =>
    typeof b === "object" && b !== null && !("block_id" in b) ? { ...b, block_id: blockId() } : b,
  );
}

/** Mime type and Slack filetype from the bytes (PNG, JPEG, GIF, WebP) or else the file name. */
export function sniffFileType(
  name: string,
  bytes: Uint8Array | undefined,
): { mimetype: string; filetype: string } {
  const b = bytes ?? new Uint8Array();
  if (b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47)
    return { mimetype: "image/png", filetype: "png" };
  if (b[0] === 0xff && b[1] === 0xd8) return { mimetype: "image/jpeg", filetype: "jpg" };
  if (b[0] === 0x47 && b[1] === 0x49 && b[2] === 0x46) return { mimetype: "image/gif", filetype: "gif" };
  if (Buffer.from(b.subarray(8, 12)).toString("latin1") === "WEBP")
    return { mimetype: "image/webp", filetype: "webp" };
  const ext = /\.([a-z0-9]+)$/i.exec(name)?.[1]?.toLowerCase();
  if (ext === "txt") return { mimetype: "text/plain", filetype: "text" };
  return { mimetype: "application/octet-stream", filetype: ext ?? "binary" };
}
