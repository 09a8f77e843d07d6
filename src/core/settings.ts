/**
 * Per-guild and per-channel settings as the store persists them, and the configuration defaults under them.
 * Precedence for a request (see buildRequest): command options > prompt flags > channel > guild > model
 * defaults > configuration defaults. Limits only ever get lower on the way down: the effective limit is the
 * smallest of HARD_LIMITS, the configuration's, the guild's and the channel's.
 */

import type { Parsed } from "./aspect.ts";
import { MESSAGES } from "./messages.ts";
import { compileModerationRules } from "./moderation.ts";
import { BACKEND_NAMES, HARD_LIMITS, readOptions, type SamplerName } from "./prompt-flags.ts";
import type { BackendName } from "./request.ts";
import type { DailyImageCaps } from "./spend.ts";

/** Limits that configuration and settings may lower (never raise above HARD_LIMITS). */
export interface RequestLimits {
  /** Denoising steps, 1..150. */
  maxSteps: number;
  /** Width × height of one image; 1024×1024 by default, 2048×2048 at most. */
  maxPixels: number;
  /** Images per job, 1..4. */
  maxCount: number;
  /** Jobs one user may have waiting (the scheduler enforces it). */
  maxQueuedPerUser: number;
}

/** The limits when nothing lowers them. */
export const DEFAULT_LIMITS: Readonly<RequestLimits> = Object.freeze({
  maxSteps: HARD_LIMITS.maxSteps,
  maxPixels: 1024 * 1024,
  maxCount: HARD_LIMITS.maxCount,
  maxQueuedPerUser: 3,
});

/** Defaults a guild or channel may set; anything left out falls through to the next level. */
export interface SettingsDefaults {
  steps?: number;
  guidance?: number;
  sampler?: SamplerName;
  size?: { width: number; height: number };
  count?: number;
  backend?: BackendName;
  model?: string;
}

/** The bottom level of defaults, from configuration: every value a request needs is here. */
export interface RequestDefaults {
  steps: number;
  guidance: number;
  sampler: SamplerName;
  count: number;
  /** img2img strength when a variation or upscale gives none. */
  strength: number;
  backend: BackendName;
  /** The default model of each backend (EASEL_MODEL, OPENAI_IMAGE_MODEL); else its first available one. */
  models: Partial<Record<BackendName, string>>;
  /** Left out: a square at the model's native side (512 for SD 1.x). */
  size?: { width: number; height: number };
}

/** Configuration defaults when the operator sets none: the A1111-style settings most SD 1.x models like. */
export const DEFAULT_REQUEST_DEFAULTS: Readonly<RequestDefaults> = Object.freeze({
  steps: 25,
  guidance: 7,
  sampler: "dpmpp_2m_karras",
  count: 1,
  strength: 0.6,
  backend: "ldm",
  models: Object.freeze({}),
});

/** "all", or the names allowed. */
export type AllowList<T extends string> = "all" | readonly T[];

/** One guild's (Discord server's, Slack workspace's) settings. */
export interface GuildSettings {
  defaults: SettingsDefaults;
  /** Lower limits for this guild; a limit left out is the configuration's. */
  limits: Partial<RequestLimits>;
  allowedBackends: AllowList<BackendName>;
  allowedModels: AllowList<string>;
  /** Refused in prompts, case-insensitively on word boundaries. */
  bannedWords: readonly string[];
  /** Regular expressions (easel's linear-time subset, see moderation.ts), matched case-insensitively. */
  bannedPatterns: readonly string[];
  /** Roles whose members are easel admins in this guild (besides EASEL_ADMIN_IDS and platform admins). */
  adminRoleIds: readonly string[];
  /** Whether members may press reroll / variation / upscale under someone else's result (votes are for all). */
  othersMayPressButtons: boolean;
  /** Whether members may vote on their own images (default no). */
  selfVote?: boolean;
  /** Minutes a contest or arena vote stays open when `--vote` gives none (default 60). */
  contestMinutes?: number;
  /** Upscale a contest's winning image (the U button's job) when the vote closes (default no). */
  contestUpscale?: boolean;
  /**
   * OpenAI images per member per UTC day in this guild, below the operator's OPENAI_DAILY_IMAGES_PER_USER;
   * 0: no member may use the OpenAI backend here; left out: the operator's cap.
   */
  openaiDailyImagesPerUser?: number;
  /**
   * OpenAI images for the whole guild per UTC day, below the operator's OPENAI_DAILY_IMAGES_PER_GUILD;
   * 0: nobody here may use the OpenAI backend; left out: the operator's cap.
   */
  openaiDailyImagesPerGuild?: number;
}

/** A guild's OpenAI daily cap overrides (what the OpenAI backend's quota check reads of GuildSettings). */
export type OpenAiGuildCaps = Pick<GuildSettings, "openaiDailyImagesPerUser" | "openaiDailyImagesPerGuild">;

/** One channel's settings; limits and allow-lists narrow the guild's, other fields override it. */
export interface ChannelSettings {
  defaults: SettingsDefaults;
  limits: Partial<RequestLimits>;
  /** Intersected with the guild's list: a channel can narrow what the guild allows, not widen it. */
  allowedBackends: AllowList<BackendName>;
  allowedModels: AllowList<string>;
  /** Passed to backends as GenerationRequest.nsfwAllowed; off unless an admin turns it on. */
  nsfwAllowed: boolean;
  /** Left out: the guild's setting. */
  othersMayPressButtons?: boolean;
  /** A contest channel (voting rounds, a later issue). */
  contest: boolean;
}

/** A guild nobody has configured. */
// Frozen (nested objects too) because every unconfigured guild shares this one object.
export const DEFAULT_GUILD_SETTINGS: Readonly<GuildSettings> = Object.freeze({
  defaults: Object.freeze({}),
  limits: Object.freeze({}),
  allowedBackends: "all",
  allowedModels: "all",
  bannedWords: Object.freeze([]),
  bannedPatterns: Object.freeze([]),
  adminRoleIds: Object.freeze([]),
  othersMayPressButtons: true,
});

/** A channel nobody has configured. */
export const DEFAULT_CHANNEL_SETTINGS: Readonly<ChannelSettings> = Object.freeze({
  defaults: Object.freeze({}),
  limits: Object.freeze({}),
  allowedBackends: "all",
  allowedModels: "all",
  nsfwAllowed: false,
  contest: false,
});

const LIMIT_RANGES: Readonly<Record<keyof RequestLimits, readonly [number, number]>> = {
  maxSteps: [HARD_LIMITS.minSteps, HARD_LIMITS.maxSteps],
  maxPixels: [HARD_LIMITS.minPixels, HARD_LIMITS.maxPixels],
  maxCount: [HARD_LIMITS.minCount, HARD_LIMITS.maxCount],
  maxQueuedPerUser: [1, HARD_LIMITS.maxQueuedPerUser],
};

/**
 * The limits in force: the configuration's (DEFAULT_LIMITS where it sets none; it may raise them up to
 * HARD_LIMITS, since the operator owns the GPU), then each lower level may only make them smaller.
 */
export function effectiveLimits(
  config: Partial<RequestLimits> | undefined,
  ...lower: (Partial<RequestLimits> | undefined)[]
): RequestLimits {
  const out: RequestLimits = { ...DEFAULT_LIMITS };
  for (const key of Object.keys(LIMIT_RANGES) as (keyof RequestLimits)[]) {
    const [min, max] = LIMIT_RANGES[key];
    const base = config?.[key];
    let value = base !== undefined && Number.isFinite(base) ? base : DEFAULT_LIMITS[key];
    for (const level of lower) {
      const v = level?.[key];
      if (v !== undefined && Number.isFinite(v)) value = Math.min(value, v);
    }
    out[key] = Math.min(max, Math.max(min, Math.floor(value)));
  }
  return out;
}

/** Contest and arena votes last from a minute to a week. */
function checkContestMinutes(minutes: number | undefined): string | undefined {
  if (minutes === undefined) return undefined;
  if (!Number.isInteger(minutes) || minutes < 1 || minutes > 7 * 24 * 60)
    return `contestMinutes must be a whole number of minutes from 1 to ${7 * 24 * 60} (got ${minutes})`;
  return undefined;
}

function checkLimits(limits: Partial<RequestLimits>): string | undefined {
  for (const key of Object.keys(LIMIT_RANGES) as (keyof RequestLimits)[]) {
    const value = limits[key];
    if (value === undefined) continue;
    const [min, max] = LIMIT_RANGES[key];
    if (!Number.isInteger(value) || value < min || value > max)
      return `${key} must be a whole number from ${min} to ${max} (got ${value})`;
  }
  return undefined;
}

function checkDefaults(defaults: SettingsDefaults, inForce: RequestLimits): string | undefined {
  const read = readOptions({ ...defaults }, (field) => `the default ${field}`, inForce);
  if (!read.ok) return read.reason;
  const size = defaults.size;
  if (size) {
    if (size.width % HARD_LIMITS.sideMultiple !== 0 || size.height % HARD_LIMITS.sideMultiple !== 0)
      return `the default size ${size.width}x${size.height} must have sides that are multiples of ${HARD_LIMITS.sideMultiple}`;
    const maxPixels = inForce.maxPixels;
    if (size.width * size.height > maxPixels)
      return `the default size ${size.width}x${size.height} is over the pixel limit of ${maxPixels}`;
  }
  return undefined;
}

function checkAllowList(
  name: string,
  list: AllowList<string>,
  known?: readonly string[],
): string | undefined {
  if (list === "all") return undefined;
  if (!Array.isArray(list)) return `${name} must be "all" or a list of names`;
  for (const item of list)
    if (typeof item !== "string" || (known !== undefined && !known.includes(item)))
      return `${name} has an unknown name "${String(item)}"${known ? `; names: ${known.join(", ")}` : ""}`;
  return undefined;
}

/** The most images a guild's daily cap override may name when the operator sets no cap (as the config's). */
const MAX_DAILY_IMAGES = 1_000_000;

/**
 * A guild's OpenAI cap overrides: whole numbers ≥ 0 that may only lower the operator's caps (`operator`,
 * 0 = none). Refusing a higher value, instead of clamping it, tells the admin what the limit is.
 */
function checkOpenAiCaps(
  settings: OpenAiGuildCaps,
  operator: DailyImageCaps | undefined,
): string | undefined {
  const fields = [
    ["openaiDailyImagesPerUser", operator?.perUser ?? 0, "OPENAI_DAILY_IMAGES_PER_USER"],
    ["openaiDailyImagesPerGuild", operator?.perGuild ?? 0, "OPENAI_DAILY_IMAGES_PER_GUILD"],
  ] as const;
  for (const [field, cap, variable] of fields) {
    const value: unknown = settings[field];
    if (value === undefined) continue;
    if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > MAX_DAILY_IMAGES)
      return MESSAGES.openAiCapNotWhole(field, value, MAX_DAILY_IMAGES);
    if (cap > 0 && value > cap) return MESSAGES.openAiCapAboveOperator(field, value, cap, variable);
  }
  return undefined;
}

/**
 * Checks guild settings before the store saves them; the reason names the setting and its valid range.
 * `config` is the configuration's limits, which default sizes and steps must also fit; `openaiCaps` the
 * operator's OpenAI daily caps (OPENAI_DAILY_IMAGES_PER_USER / _GUILD, 0 = none), which the guild's
 * overrides may only lower. Pass them when an admin saves; leave them out when re-reading stored settings,
 * so that an operator lowering a cap later does not make stored settings unreadable (the lower cap wins).
 */
export function checkGuildSettings(
  settings: GuildSettings,
  config?: Partial<RequestLimits>,
  openaiCaps?: DailyImageCaps,
): Parsed<GuildSettings> {
  const reason =
    checkOpenAiCaps(settings, openaiCaps) ??
    checkLimits(settings.limits) ??
    checkContestMinutes(settings.contestMinutes) ??
    checkDefaults(settings.defaults, effectiveLimits(config, settings.limits)) ??
    checkAllowList("allowedBackends", settings.allowedBackends, BACKEND_NAMES) ??
    checkAllowList("allowedModels", settings.allowedModels);
  if (reason) return { ok: false, reason };
  const rules = compileModerationRules(settings);
  if (!rules.ok) return rules;
  return { ok: true, value: settings };
}

/** Checks channel settings against the guild's before the store saves them. */
export function checkChannelSettings(
  settings: ChannelSettings,
  guild: GuildSettings,
  config?: Partial<RequestLimits>,
): Parsed<ChannelSettings> {
  const reason =
    checkLimits(settings.limits) ??
    checkDefaults(settings.defaults, effectiveLimits(config, guild.limits, settings.limits)) ??
    checkAllowList("allowedBackends", settings.allowedBackends, BACKEND_NAMES) ??
    checkAllowList("allowedModels", settings.allowedModels);
  if (reason) return { ok: false, reason };
  return { ok: true, value: settings };
}
