import { randomBytes } from "node:crypto";

/**
 * Builders for the JSON objects the fake Discord sends: snowflakes, users, guilds and channels (as GUILD_CREATE
 * carries them), messages (as MessageResponse describes them) and interactions (as INTERACTION_CREATE carries
 * them; the OpenAPI spec does not describe those, so their shape follows Discord's documentation and payloads
 * captured from the real gateway). Nothing here does I/O.
 */

/** Discord's epoch (2015-01-01T00:00:00Z), the zero of every snowflake's timestamp. */
export const DISCORD_EPOCH_MS = 1_420_070_400_000;

// Default ids are fixed so that tests and logs read the same from run to run.
/** The application's id, which is also the bot user's id (as for every modern Discord app). */
export const DEFAULT_APPLICATION_ID = "1234567890123456789";
/** The default guild. */
export const DEFAULT_GUILD_ID = "1200000000000000001";
/** The default guild's "general" text channel (not age-restricted). */
export const DEFAULT_CHANNEL_ID = "1200000000000000002";
/** The default guild's age-restricted ("nsfw") text channel "after-dark". */
export const DEFAULT_NSFW_CHANNEL_ID = "1200000000000000003";
/** The default guild's owner (who holds every permission). */
export const DEFAULT_OWNER_ID = "1200000000000000010";
/** The member who runs commands and presses buttons unless a test names another. */
export const DEFAULT_USER_ID = "1200000000000000011";
/** 10 MiB: the upload limit of a guild without boosts (and the interactions' attachment_size_limit). */
export const DEFAULT_ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024;

/** Permission bits the fake uses (a subset of Discord's). */
export const Permission = {
  CreateInstantInvite: 1n << 0n,
  Administrator: 1n << 3n,
  ManageChannels: 1n << 4n,
  ManageGuild: 1n << 5n,
  AddReactions: 1n << 6n,
  ViewChannel: 1n << 10n,
  SendMessages: 1n << 11n,
  ManageMessages: 1n << 13n,
  EmbedLinks: 1n << 14n,
  AttachFiles: 1n << 15n,
  ReadMessageHistory: 1n << 16n,
  UseExternalEmojis: 1n << 18n,
  Connect: 1n << 20n,
  Speak: 1n << 21n,
  ChangeNickname: 1n << 26n,
  UseApplicationCommands: 1n << 31n,
  SendMessagesInThreads: 1n << 38n,
} as const;

/** What @everyone may do in a fresh guild (roughly Discord's default). */
export const MEMBER_PERMISSIONS = [
  Permission.CreateInstantInvite,
  Permission.AddReactions,
  Permission.ViewChannel,
  Permission.SendMessages,
  Permission.EmbedLinks,
  Permission.AttachFiles,
  Permission.ReadMessageHistory,
  Permission.UseExternalEmojis,
  Permission.Connect,
  Permission.Speak,
  Permission.ChangeNickname,
  Permission.UseApplicationCommands,
  Permission.SendMessagesInThreads,
].reduce((a, b) => a | b, 0n);

/** Every permission bit Discord defines today: what an administrator's `permissions` string carries. */
export const ALL_PERMISSIONS = (1n << 51n) - 1n;

/** What the bot's managed role grants: enough to post, embed, attach and manage its own messages. */
export const BOT_PERMISSIONS = MEMBER_PERMISSIONS | Permission.ManageMessages;

/** Message flags the fake interprets. */
export const MessageFlag = {
  SuppressEmbeds: 1 << 2,
  Ephemeral: 1 << 6,
  Loading: 1 << 7,
  SuppressNotifications: 1 << 12,
  IsComponentsV2: 1 << 15,
} as const;

/** Channel types the fake knows by name. */
export const ChannelType = {
  GuildText: 0,
  DM: 1,
  GuildVoice: 2,
  GuildCategory: 4,
  GuildAnnouncement: 5,
} as const;

/** Hands out snowflakes: time-ordered, unique, and always 19 digits (discord.js' rate-limit router needs 17–19). */
export class SnowflakeFactory {
  private last = 0n;
  constructor(private readonly clock: () => number) {}

  next(): string {
    const at = this.clock();
    // An injected clock may start at 0; a snowflake from before 2018 would be too short to look like one.
    const ms = at > DISCORD_EPOCH_MS + 100_000_000_000 ? at : Date.now();
    let id = BigInt(Math.floor(ms) - DISCORD_EPOCH_MS) << 22n;
    if (id <= this.last) id = this.last + 1n;
    this.last = id;
    return id.toString();
  }
}

/** A random opaque token in the alphabet and length of real interaction tokens. */
export function interactionToken(): string {
  return `aW50ZXJhY3Rpb246${randomBytes(96).toString("base64url")}`;
}

/** A bot token in Discord's three-part format (base64 of the bot id, a timestamp part, an HMAC part). */
export function botToken(botId: string): string {
  return `${Buffer.from(botId).toString("base64url")}.GfAkE0.${randomBytes(27).toString("base64url")}`;
}

/** Discord's timestamp format: ISO 8601 with microseconds and an explicit UTC offset. */
export function isoTimestamp(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000+00:00");
}

// ---- Users, guilds, channels --------------------------------------------------------------------------------

/** A user as the fake knows it. */
export interface FakeUser {
  id: string;
  username: string;
  globalName?: string | null;
  bot?: boolean;
  /** Bots keep a four-digit discriminator; migrated users have "0". */
  discriminator?: string;
}

/** A channel as a test describes it. */
export interface FakeChannelOptions {
  id?: string;
  name: string;
  nsfw?: boolean;
  /** Channel type (0 text, 2 voice, 4 category, 5 announcement…); default 0. */
  type?: number;
  topic?: string | null;
  /** Upload limit for messages the bot posts here, in bytes (default: the fake's). */
  attachmentSizeLimit?: number;
}

/** A guild as a test describes it. */
export interface FakeGuildOptions {
  id?: string;
  name?: string;
  ownerId?: string;
  channels?: FakeChannelOptions[];
  preferredLocale?: string;
}

/** A channel with its defaults filled in. */
export interface FakeChannel {
  id: string;
  guildId: string;
  name: string;
  type: number;
  nsfw: boolean;
  topic: string | null;
  position: number;
  attachmentSizeLimit: number;
}

/** A guild with its defaults filled in. */
export interface FakeGuild {
  id: string;
  name: string;
  ownerId: string;
  preferredLocale: string;
  channels: FakeChannel[];
  /** The bot's managed role (Discord gives every bot one when it joins). */
  botRoleId: string;
  /** A role holding ADMINISTRATOR, given to members a test marks `admin`. */
  adminRoleId: string;
  /** A role holding MANAGE_GUILD only. */
  managerRoleId: string;
  joinedAt: number;
}

/** The default world: one guild with a safe channel and an age-restricted one. */
export function defaultGuilds(): FakeGuildOptions[] {
  return [
    {
      id: DEFAULT_GUILD_ID,
      name: "Easel Test Guild",
      ownerId: DEFAULT_OWNER_ID,
      channels: [
        { id: DEFAULT_CHANNEL_ID, name: "general" },
        { id: DEFAULT_NSFW_CHANNEL_ID, name: "after-dark", nsfw: true },
      ],
    },
  ];
}

/** Fills in a guild's defaults, minting ids where the test gave none. */
export function normalizeGuild(
  options: FakeGuildOptions,
  ids: SnowflakeFactory,
  defaultLimit: number,
  now: number,
): FakeGuild {
  const id = options.id ?? ids.next();
  return {
    id,
    name: options.name ?? "Fake Guild",
    ownerId: options.ownerId ?? DEFAULT_OWNER_ID,
    preferredLocale: options.preferredLocale ?? "en-US",
    channels: (options.channels ?? [{ name: "general" }]).map((c, position) => ({
      id: c.id ?? ids.next(),
      guildId: id,
      name: c.name,
      type: c.type ?? ChannelType.GuildText,
      nsfw: c.nsfw ?? false,
      topic: c.topic ?? null,
      position,
      attachmentSizeLimit: c.attachmentSizeLimit ?? defaultLimit,
    })),
    botRoleId: ids.next(),
    adminRoleId: ids.next(),
    managerRoleId: ids.next(),
    joinedAt: now,
  };
}

/** A user object (UserResponse). */
export function userObject(user: FakeUser): Record<string, unknown> {
  return {
    id: user.id,
    username: user.username,
    avatar: null,
    discriminator: user.discriminator ?? (user.bot ? "4821" : "0"),
    public_flags: 0,
    flags: 0,
    ...(user.bot ? { bot: true } : {}),
    banner: null,
    accent_color: null,
    global_name: user.globalName === undefined ? (user.bot ? null : user.username) : user.globalName,
    avatar_decoration_data: null,
    collectibles: null,
    primary_guild: null,
  };
}

/** A guild member object, with `user` unless the caller embeds it elsewhere. */
export function memberObject(
  user: FakeUser,
  roles: string[],
  joinedAt: number,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    user: userObject(user),
    roles,
    joined_at: isoTimestamp(joinedAt),
    premium_since: null,
    deaf: false,
    mute: false,
    flags: 0,
    pending: false,
    nick: null,
    avatar: null,
    banner: null,
    communication_disabled_until: null,
    unusual_dm_activity_until: null,
    ...extra,
  };
}

/** A guild channel object; GUILD_CREATE omits `guild_id` on its channels, REST includes it. */
export function channelObject(channel: FakeChannel, withGuildId = true): Record<string, unknown> {
  return {
    id: channel.id,
    type: channel.type,
    ...(withGuildId ? { guild_id: channel.guildId } : {}),
    name: channel.name,
    position: channel.position,
    flags: 0,
    parent_id: null,
    topic: channel.topic,
    nsfw: channel.nsfw,
    rate_limit_per_user: 0,
    last_message_id: null,
    permission_overwrites: [],
  };
}

function roleObject(
  id: string,
  name: string,
  permissions: bigint,
  position: number,
  extra: Record<string, unknown> = {},
) {
  return {
    id,
    name,
    description: null,
    color: 0,
    colors: { primary_color: 0, secondary_color: null, tertiary_color: null },
    hoist: false,
    icon: null,
    unicode_emoji: null,
    position,
    permissions: permissions.toString(),
    managed: false,
    mentionable: false,
    flags: 0,
    ...extra,
  };
}

/** The guild's roles: @everyone (id = guild id), the bot's managed role, an admin role and a manager role. */
export function rolesOf(guild: FakeGuild, bot: FakeUser): Record<string, unknown>[] {
  return [
    roleObject(guild.id, "@everyone", MEMBER_PERMISSIONS, 0),
    roleObject(guild.botRoleId, bot.username, BOT_PERMISSIONS, 1, {
      managed: true,
      tags: { bot_id: bot.id },
    }),
    roleObject(guild.managerRoleId, "Manager", MEMBER_PERMISSIONS | Permission.ManageGuild, 2),
    roleObject(guild.adminRoleId, "Admin", MEMBER_PERMISSIONS | Permission.Administrator, 3),
  ];
}

/** A REST guild object (GET /guilds/{id}). */
export function guildObject(guild: FakeGuild, bot: FakeUser): Record<string, unknown> {
  return {
    id: guild.id,
    name: guild.name,
    icon: null,
    icon_hash: null,
    splash: null,
    discovery_splash: null,
    owner_id: guild.ownerId,
    afk_channel_id: null,
    afk_timeout: 300,
    widget_enabled: false,
    widget_channel_id: null,
    verification_level: 1,
    default_message_notifications: 1,
    explicit_content_filter: 2,
    roles: rolesOf(guild, bot),
    emojis: [],
    stickers: [],
    features: [],
    mfa_level: 0,
    application_id: null,
    system_channel_id: guild.channels[0]?.id ?? null,
    system_channel_flags: 0,
    rules_channel_id: null,
    max_presences: null,
    max_members: 500_000,
    vanity_url_code: null,
    description: null,
    banner: null,
    premium_tier: 0,
    premium_subscription_count: 0,
    preferred_locale: guild.preferredLocale,
    public_updates_channel_id: null,
    max_video_channel_users: 25,
    max_stage_video_channel_users: 50,
    nsfw_level: 0,
    premium_progress_bar_enabled: false,
    safety_alerts_channel_id: null,
    incidents_data: null,
  };
}

/** The GUILD_CREATE dispatch body: the REST guild plus the gateway-only fields discord.js caches from. */
export function guildCreate(guild: FakeGuild, bot: FakeUser): Record<string, unknown> {
  return {
    ...guildObject(guild, bot),
    joined_at: isoTimestamp(guild.joinedAt),
    large: false,
    unavailable: false,
    member_count: 2,
    lazy: true,
    members: [memberObject(bot, [guild.botRoleId], guild.joinedAt)],
    channels: guild.channels.map((c) => channelObject(c, false)),
    threads: [],
    presences: [],
    voice_states: [],
    stage_instances: [],
    guild_scheduled_events: [],
    soundboard_sounds: [],
    embedded_activities: [],
    activity_instances: [],
    application_command_counts: {},
    hub_type: null,
    home_header: null,
    latest_onboarding_question_id: null,
    inventory_settings: null,
    version: Date.now(),
  };
}

/** The application object (GET /applications/@me). */
export function applicationObject(
  applicationId: string,
  bot: FakeUser,
  ownerId: string,
  guildCount: number,
  verifyKey: string,
): Record<string, unknown> {
  return {
    id: applicationId,
    name: bot.username,
    icon: null,
    description: "",
    summary: "",
    type: null,
    bot: userObject(bot),
    bot_public: true,
    bot_require_code_grant: false,
    verify_key: verifyKey,
    flags: 0,
    hook: true,
    is_monetized: false,
    is_verified: false,
    is_discoverable: false,
    redirect_uris: [],
    interactions_endpoint_url: null,
    role_connections_verification_url: null,
    owner: userObject({ id: ownerId, username: "owner" }),
    team: null,
    approximate_guild_count: guildCount,
    integration_types_config: { "0": {} },
    tags: [],
    explicit_content_filter: 0,
  };
}

/** READY's body: the bot user, its guilds as unavailable (GUILD_CREATE follows), the session to resume. */
export function readyPayload(
  bot: FakeUser,
  guilds: readonly FakeGuild[],
  session: { applicationId: string; sessionId: string; resumeGatewayUrl: string; shard: unknown },
): Record<string, unknown> {
  return {
    v: 10,
    user_settings: {},
    user: { ...userObject(bot), verified: true, mfa_enabled: true, email: null },
    guilds: guilds.map((g) => ({ id: g.id, unavailable: true })),
    session_type: "normal",
    session_id: session.sessionId,
    resume_gateway_url: session.resumeGatewayUrl,
    shard: session.shard,
    application: { id: session.applicationId, flags: 0 },
    private_channels: [],
    relationships: [],
    presences: [],
    guild_join_requests: [],
    geo_ordered_rtc_regions: ["us-east"],
    auth: {},
    _trace: ['["fake-gateway",{"micros":0}]'],
  };
}

// ---- Messages -------------------------------------------------------------------------------------------------

/** An attachment as MessageAttachmentResponse describes it. */
export interface FakeAttachment {
  id: string;
  filename: string;
  size: number;
  url: string;
  proxy_url: string;
  content_type?: string;
  width?: number;
  height?: number;
  description?: string;
  title?: string | null;
  ephemeral?: boolean;
  [key: string]: unknown;
}

/** A message as the fake stores and returns it (MessageResponse). */
export interface FakeMessage {
  id: string;
  type: number;
  channel_id: string;
  author: Record<string, unknown>;
  content: string;
  embeds: Record<string, unknown>[];
  components: Record<string, unknown>[];
  attachments: FakeAttachment[];
  mentions: Record<string, unknown>[];
  mention_roles: string[];
  mention_everyone: boolean;
  pinned: boolean;
  tts: boolean;
  timestamp: string;
  edited_timestamp: string | null;
  flags: number;
  webhook_id?: string;
  application_id?: string;
  interaction_metadata?: Record<string, unknown>;
  interaction?: Record<string, unknown>;
  message_reference?: Record<string, unknown>;
  nonce?: string | number;
  [key: string]: unknown;
}

/** Width and height of a PNG, from its IHDR chunk. */
export function pngSize(bytes: Uint8Array): { width: number; height: number } | undefined {
  const signature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (bytes.length < 24 || signature.some((b, i) => bytes[i] !== b)) return undefined;
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.toString("latin1", 12, 16) !== "IHDR") return undefined;
  return { width: view.readUInt32BE(16), height: view.readUInt32BE(20) };
}

/** The MIME type Discord would record: the part's own, unless it is generic and the bytes say otherwise. */
export function sniffContentType(bytes: Uint8Array, declared: string | undefined): string | undefined {
  if (declared && declared !== "application/octet-stream") return declared.split(";")[0]?.trim();
  if (pngSize(bytes)) return "image/png";
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return "image/jpeg";
  if (Buffer.from(bytes.subarray(0, 4)).toString("latin1") === "GIF8") return "image/gif";
  if (Buffer.from(bytes.subarray(8, 12)).toString("latin1") === "WEBP") return "image/webp";
  return declared;
}

/** Sum of the characters Discord counts towards the 6000-character limit across a message's embeds. */
export function embedCharacters(embeds: readonly unknown[]): number {
  let total = 0;
  const len = (v: unknown) => (typeof v === "string" ? [...v].length : 0);
  for (const raw of embeds) {
    if (typeof raw !== "object" || raw === null) continue;
    const e = raw as Record<string, unknown>;
    total += len(e.title) + len(e.description);
    total += len((e.footer as Record<string, unknown> | undefined)?.text);
    total += len((e.author as Record<string, unknown> | undefined)?.name);
    for (const f of Array.isArray(e.fields) ? e.fields : []) {
      const field = f as Record<string, unknown>;
      total += len(field.name) + len(field.value);
    }
  }
  return total;
}

/** Adds the numeric `id` Discord assigns to every component (depth-first, from 1) where the sender gave none. */
export function numberComponents(components: readonly unknown[]): Record<string, unknown>[] {
  let next = 1;
  const walk = (c: unknown): Record<string, unknown> => {
    const comp = { ...(c as Record<string, unknown>) };
    if (typeof comp.id !== "number") comp.id = next;
    next = Math.max(next, comp.id as number) + 1;
    if (Array.isArray(comp.components)) comp.components = comp.components.map(walk);
    return comp;
  };
  return components.map(walk);
}

// ---- Interactions ---------------------------------------------------------------------------------------------

/** Who triggers an interaction and where. */
export interface InteractionActor {
  user: FakeUser;
  guild: FakeGuild;
  channel: FakeChannel;
  /** The member's computed permissions in the channel, as a decimal string. */
  permissions: string;
  roles: string[];
  locale: string;
}

/** The fields every guild interaction carries, whatever its type. */
export function interactionBase(
  actor: InteractionActor,
  init: {
    id: string;
    token: string;
    applicationId: string;
    type: number;
    attachmentSizeLimit: number;
    memberJoinedAt: number;
  },
): Record<string, unknown> {
  const { guild, channel } = actor;
  return {
    id: init.id,
    application_id: init.applicationId,
    type: init.type,
    token: init.token,
    version: 1,
    guild_id: guild.id,
    guild: { id: guild.id, locale: guild.preferredLocale, features: [] },
    channel_id: channel.id,
    channel: { ...channelObject(channel), permissions: actor.permissions },
    member: memberObject(actor.user, actor.roles, init.memberJoinedAt, { permissions: actor.permissions }),
    app_permissions: BOT_PERMISSIONS.toString(),
    locale: actor.locale,
    guild_locale: guild.preferredLocale,
    entitlements: [],
    entitlement_sku_ids: [],
    authorizing_integration_owners: { "0": guild.id },
    context: 0,
    attachment_size_limit: init.attachmentSizeLimit,
  };
}
