import { resolve } from "node:path";
import dotenv from "dotenv";
import { z } from "zod";
import type { OpenAiSettings } from "./backends/openai/openai-backend.ts";
import { type ButtonStrengths, DEFAULT_BUTTON_STRENGTHS } from "./core/button-press.ts";
import { EaselError } from "./core/errors.ts";
import { HARD_LIMITS } from "./core/prompt-flags.ts";
import type { RequestLimits } from "./core/settings.ts";
import { DEFAULT_ELO, type EloSettings } from "./core/voting.ts";

/**
 * easel's configuration: `.env` (via dotenv) and the environment, validated with zod. This is the only module
 * that reads `process.env`; every name is documented in `.env.example` and DESIGN.md.
 */

/** Defaults declared once; `.env.example` shows the same values. */
export const DEFAULT_CONFIG = {
  modelsDir: "./models",
  dataDir: "./data",
  device: "auto",
  slackPort: 3000,
  openaiImageModel: "gpt-image-1",
  /** One OpenAI request attempt; well below the SDK's own 10 minutes. */
  openaiTimeoutMs: 120_000,
  /** The SDK's retries of 429 / 5xx / timeouts (the SDK's default). */
  openaiMaxRetries: 2,
  /** OpenAI tier 1 allows 5 images per minute for GPT-image models. */
  openaiMaxRequestsPerMinute: 5,
  openaiConcurrency: 4,
  /** OpenAI images one member may make per UTC day (0: no cap). */
  openaiDailyImagesPerUser: 20,
  /** OpenAI images one Discord server or Slack workspace may make per UTC day (0: no cap). */
  openaiDailyImagesPerGuild: 200,
  hubEndpoint: "https://huggingface.co",
} as const;

const DEVICES = ["auto", "cuda", "cpu"] as const;
type Device = (typeof DEVICES)[number];

/** EASEL_LOG_FORMAT: one human-readable line per event, or pino's JSON lines for a log collector. */
export const LOG_FORMATS = ["human", "json"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Every quality the OpenAI images API knows; which model takes which is checked by the backend. */
export const OPENAI_QUALITIES = ["standard", "hd", "low", "medium", "high", "auto"] as const;
export type OpenAiQuality = (typeof OPENAI_QUALITIES)[number];

const optionalString = z
  .string()
  .transform((s) => s.trim())
  .optional()
  .transform((s) => (s === "" || s === undefined ? undefined : s));
const optionalUrl = (name: string) =>
  optionalString.refine((s) => s === undefined || URL.canParse(s), {
    message: `${name} must be a full URL (https://…)`,
  });

/** An optional whole number in min..max; the message names the variable and the range. */
const wholeNumber = (name: string, min: number, max: number) =>
  optionalString
    .refine((s) => s === undefined || (/^\d{1,9}$/.test(s) && Number(s) >= min && Number(s) <= max), {
      message: `${name} must be a whole number from ${min} to ${max}`,
    })
    .transform((s) => (s === undefined ? undefined : Number(s)));

/** An optional img2img strength in 0.01..1; the message names the variable. */
const strength = (name: string) =>
  optionalString
    .refine((s) => s === undefined || (/^(0(\.\d{1,2})?|1(\.0{1,2})?)$/.test(s) && Number(s) >= 0.01), {
      message: `${name} must be a number from 0.01 to 1 (two decimals at most)`,
    })
    .transform((s) => (s === undefined ? undefined : Number(s)));

/** One OPENAI_IMAGE_PRICES entry: `model[:size|*[:quality]]=US dollars per image`. */
const PRICE_ENTRY = /^([A-Za-z0-9._-]+(?::(?:\d{2,5}x\d{2,5}|\*)(?::[a-z]+)?)?)=(\d{1,3}(?:\.\d{1,6})?)$/;

/** Parses OPENAI_IMAGE_PRICES into a key → US dollars table; undefined when an entry is malformed. */
function parsePrices(text: string): Record<string, number> | undefined {
  const prices: Record<string, number> = {};
  for (const raw of text.split(",")) {
    const entry = raw.trim();
    if (entry === "") continue;
    const match = PRICE_ENTRY.exec(entry);
    if (!match?.[1] || match[2] === undefined) return undefined;
    prices[match[1]] = Number(match[2]);
  }
  return prices;
}

const EnvSchema = z.object({
  DISCORD_TOKEN: optionalString,
  DISCORD_GUILD_ID: optionalString.refine((s) => s === undefined || /^\d{17,20}$/.test(s), {
    message: "DISCORD_GUILD_ID must be a Discord server id (17–20 digits)",
  }),
  DISCORD_API_BASE: optionalUrl("DISCORD_API_BASE"),
  SLACK_BOT_TOKEN: optionalString,
  SLACK_APP_TOKEN: optionalString,
  SLACK_SIGNING_SECRET: optionalString,
  SLACK_API_URL: optionalUrl("SLACK_API_URL"),
  SLACK_PORT: wholeNumber("SLACK_PORT", 1, 65535),
  OPENAI_API_KEY: optionalString,
  OPENAI_BASE_URL: optionalUrl("OPENAI_BASE_URL"),
  OPENAI_IMAGE_MODEL: optionalString,
  OPENAI_TIMEOUT_MS: wholeNumber("OPENAI_TIMEOUT_MS", 1_000, 300_000),
  OPENAI_MAX_RETRIES: wholeNumber("OPENAI_MAX_RETRIES", 0, 10),
  OPENAI_MAX_RPM: wholeNumber("OPENAI_MAX_RPM", 1, 100_000),
  OPENAI_CONCURRENCY: wholeNumber("OPENAI_CONCURRENCY", 1, 64),
  OPENAI_IMAGE_QUALITY: optionalString
    .refine((s) => s === undefined || OPENAI_QUALITIES.includes(s as OpenAiQuality), {
      message: `OPENAI_IMAGE_QUALITY must be one of ${OPENAI_QUALITIES.join(", ")}`,
    })
    .transform((s) => s as OpenAiQuality | undefined),
  OPENAI_DAILY_IMAGES_PER_USER: wholeNumber("OPENAI_DAILY_IMAGES_PER_USER", 0, 1_000_000),
  OPENAI_DAILY_IMAGES_PER_GUILD: wholeNumber("OPENAI_DAILY_IMAGES_PER_GUILD", 0, 1_000_000),
  OPENAI_IMAGE_PRICES: optionalString
    .refine((s) => s === undefined || parsePrices(s) !== undefined, {
      message:
        "OPENAI_IMAGE_PRICES must be comma-separated model[:size[:quality]]=dollars entries, e.g. gpt-image-1=0.042,dall-e-3:1792x1024:hd=0.12",
    })
    .transform((s) => (s === undefined ? {} : (parsePrices(s) ?? {}))),
  EASEL_MODELS_DIR: optionalString,
  EASEL_MODEL: optionalString,
  EASEL_DEVICE: optionalString
    .refine((s) => s === undefined || DEVICES.includes(s as Device), {
      message: "EASEL_DEVICE must be auto, cuda or cpu",
    })
    .transform((s) => s as Device | undefined),
  EASEL_CUDA_DEVICE: wholeNumber("EASEL_CUDA_DEVICE", 0, 64),
  EASEL_SAFETY_CHECKER: optionalString,
  EASEL_THREADS: wholeNumber("EASEL_THREADS", 1, 1024),
  EASEL_IDLE_UNLOAD_MINUTES: wholeNumber("EASEL_IDLE_UNLOAD_MINUTES", 0, 10_080),
  EASEL_DATA_DIR: optionalString,
  EASEL_ADMIN_IDS: optionalString,
  EASEL_VARIATION_STRENGTH: strength("EASEL_VARIATION_STRENGTH"),
  EASEL_UPSCALE_STRENGTH: strength("EASEL_UPSCALE_STRENGTH"),
  EASEL_MAX_STEPS: wholeNumber("EASEL_MAX_STEPS", HARD_LIMITS.minSteps, HARD_LIMITS.maxSteps),
  EASEL_MAX_PIXELS: wholeNumber("EASEL_MAX_PIXELS", HARD_LIMITS.minPixels, HARD_LIMITS.maxPixels),
  EASEL_MAX_IMAGES: wholeNumber("EASEL_MAX_IMAGES", HARD_LIMITS.minCount, HARD_LIMITS.maxCount),
  EASEL_MAX_QUEUED_PER_USER: wholeNumber("EASEL_MAX_QUEUED_PER_USER", 1, HARD_LIMITS.maxQueuedPerUser),
  EASEL_MAX_QUEUED_PER_SERVER: wholeNumber("EASEL_MAX_QUEUED_PER_SERVER", 1, 100_000),
  EASEL_MAX_QUEUED: wholeNumber("EASEL_MAX_QUEUED", 1, 100_000),
  EASEL_ELO_K: wholeNumber("EASEL_ELO_K", 1, 400),
  EASEL_ELO_START: wholeNumber("EASEL_ELO_START", 0, 10_000),
  HF_ENDPOINT: optionalUrl("HF_ENDPOINT"),
  HF_TOKEN: optionalString,
  EASEL_DEBUG: optionalString
    .refine((s) => s === undefined || /^(0|1|true|false|on|off)$/i.test(s), {
      message: "EASEL_DEBUG must be 1 or 0",
    })
    .transform((s) => s !== undefined && /^(1|true|on)$/i.test(s)),
  EASEL_RETENTION_DAYS: wholeNumber("EASEL_RETENTION_DAYS", 1, 36_500),
  EASEL_LOG_FORMAT: optionalString
    .refine((s) => s === undefined || LOG_FORMATS.includes(s as LogFormat), {
      message: "EASEL_LOG_FORMAT must be human or json",
    })
    .transform((s) => s as LogFormat | undefined),
});

/**
 * Variables only the bot reads. The CLI renders without them, so a malformed one (DISCORD_GUILD_ID=abc)
 * must not stop `easel generate`: under the "cli" scope they are left out before validation.
 */
const BOT_ONLY_VARIABLE =
  /^(DISCORD_|SLACK_|OPENAI_|EASEL_ELO_|EASEL_MAX_QUEUED)|^EASEL_(ADMIN_IDS|VARIATION_STRENGTH|UPSCALE_STRENGTH|IDLE_UNLOAD_MINUTES|LOG_FORMAT|RETENTION_DAYS)$/;

/**
 * What the LDM worker process is given of the environment: what Node, onnxruntime, CUDA and OpenMP read. Never
 * the tokens and keys (the worker renders; it talks to no platform), so a crash dump or a stray log line of
 * the worker cannot hold them.
 */
const WORKER_VARIABLE =
  /^(PATH|HOME|TMPDIR|TMP|TEMP|LANG|LANGUAGE|TZ|LC_[A-Z_]+|LD_LIBRARY_PATH|CUDA_[A-Z_]+|CUDNN_[A-Z_]+|NVIDIA_[A-Z_]+|OMP_[A-Z_]+|ORT_[A-Z_]+|SYSTEMROOT|SystemRoot|WINDIR)$/;

/** Who reads the configuration: the bot validates every variable, the CLI only those it uses. */
export type ConfigScope = "bot" | "cli";

/**
 * The OpenAI images backend's settings (OPENAI_*): the backend's own settings shape, with the quality narrowed
 * to the values this module accepts. Each field's variable is named in OpenAiSettings.
 */
export interface OpenAiConfig extends OpenAiSettings {
  quality?: OpenAiQuality;
}

/** The validated configuration every other module receives (they never read the environment). */
export interface Config {
  discord: { token?: string; guildId?: string; apiBase?: string };
  slack: { botToken?: string; appToken?: string; signingSecret?: string; apiUrl?: string; port: number };
  openai: OpenAiConfig;
  modelsDir: string;
  model?: string;
  device: Device;
  /** CUDA device index (EASEL_CUDA_DEVICE), default 0. */
  cudaDevice: number;
  /**
   * A folder with safety_checker/ and feature_extractor/ lent to models that have no checker of their own
   * (EASEL_SAFETY_CHECKER, resolved to an absolute path); undefined: none.
   */
  safetyCheckerDir?: string;
  /** onnxruntime intra-op threads (EASEL_THREADS); undefined: onnxruntime's choice (all cores). */
  threads?: number;
  /** Unload the model after this many idle minutes; 0 keeps it loaded. */
  idleUnloadMinutes: number;
  dataDir: string;
  adminIds: string[];
  /** img2img strengths of the V (variation) and U (upscale) buttons. */
  strengths: ButtonStrengths;
  /** The operator's request limits (EASEL_MAX_*): guilds and channels may only lower them. */
  limits: Partial<RequestLimits>;
  /** Arena ratings: K-factor and starting rating (EASEL_ELO_K, EASEL_ELO_START). */
  elo: EloSettings;
  /** Queue bounds (EASEL_MAX_QUEUED, EASEL_MAX_QUEUED_PER_SERVER); the engine's defaults where unset. */
  queue: { maxQueued?: number; maxQueuedPerWorkspace?: number };
  /** Hugging Face hub for `easel models pull`: base URL and token (gated repos). */
  hub: { endpoint: string; token?: string };
  /** EASEL_RETENTION_DAYS: prune finished jobs this old; unset keeps everything. */
  retentionDays?: number;
  /** EASEL_DEBUG: stack traces and verbose logs. */
  debug: boolean;
  /** The LDM worker's whole environment: the variables Node and onnxruntime read, no secrets. */
  workerEnv: Record<string, string>;
  /** EASEL_LOG_FORMAT: how the bot's log lines are written (default human). */
  logFormat: LogFormat;
}

/** Drops undefined members so optional fields stay absent (exactOptionalPropertyTypes). */
function defined<T extends object>(value: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]: Exclude<T[K], undefined>;
  };
}

/**
 * Validates an environment (default: `.env` merged under `process.env`) into a Config, or throws a `config`
 * EaselError naming each bad variable. The "cli" scope skips the variables only the bot reads.
 */
export function loadConfig(
  env?: Record<string, string | undefined>,
  options: { scope?: ConfigScope } = {},
): Config {
  let source = env;
  if (source === undefined) {
    dotenv.config({ quiet: true });
    source = process.env;
  }
  if (options.scope === "cli")
    source = Object.fromEntries(Object.entries(source).filter(([name]) => !BOT_ONLY_VARIABLE.test(name)));
  const parsed = EnvSchema.safeParse(source);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => issue.message).join("; ");
    throw new EaselError("config", `Configuration error: ${problems}`);
  }
  const e = parsed.data;
  const modelsDir = resolve(e.EASEL_MODELS_DIR ?? DEFAULT_CONFIG.modelsDir);
  return {
    discord: defined({ token: e.DISCORD_TOKEN, guildId: e.DISCORD_GUILD_ID, apiBase: e.DISCORD_API_BASE }),
    slack: {
      ...defined({
        botToken: e.SLACK_BOT_TOKEN,
        appToken: e.SLACK_APP_TOKEN,
        signingSecret: e.SLACK_SIGNING_SECRET,
        apiUrl: e.SLACK_API_URL,
      }),
      port: e.SLACK_PORT ?? DEFAULT_CONFIG.slackPort,
    },
    openai: {
      ...defined({ apiKey: e.OPENAI_API_KEY, baseUrl: e.OPENAI_BASE_URL }),
      imageModel: e.OPENAI_IMAGE_MODEL ?? DEFAULT_CONFIG.openaiImageModel,
      timeoutMs: e.OPENAI_TIMEOUT_MS ?? DEFAULT_CONFIG.openaiTimeoutMs,
      maxRetries: e.OPENAI_MAX_RETRIES ?? DEFAULT_CONFIG.openaiMaxRetries,
      maxRequestsPerMinute: e.OPENAI_MAX_RPM ?? DEFAULT_CONFIG.openaiMaxRequestsPerMinute,
      concurrency: e.OPENAI_CONCURRENCY ?? DEFAULT_CONFIG.openaiConcurrency,
      ...defined({ quality: e.OPENAI_IMAGE_QUALITY }),
      dailyImagesPerUser: e.OPENAI_DAILY_IMAGES_PER_USER ?? DEFAULT_CONFIG.openaiDailyImagesPerUser,
      dailyImagesPerGuild: e.OPENAI_DAILY_IMAGES_PER_GUILD ?? DEFAULT_CONFIG.openaiDailyImagesPerGuild,
      prices: e.OPENAI_IMAGE_PRICES,
    },
    modelsDir,
    ...defined({ model: e.EASEL_MODEL }),
    device: e.EASEL_DEVICE ?? DEFAULT_CONFIG.device,
    cudaDevice: e.EASEL_CUDA_DEVICE ?? 0,
    ...defined({ safetyCheckerDir: e.EASEL_SAFETY_CHECKER && resolve(e.EASEL_SAFETY_CHECKER) }),
    ...defined({ threads: e.EASEL_THREADS }),
    idleUnloadMinutes: e.EASEL_IDLE_UNLOAD_MINUTES ?? 0,
    dataDir: resolve(e.EASEL_DATA_DIR ?? DEFAULT_CONFIG.dataDir),
    adminIds: (e.EASEL_ADMIN_IDS ?? "")
      .split(",")
      .map((id) => id.trim())
      .filter((id) => id !== ""),
    strengths: {
      variation: e.EASEL_VARIATION_STRENGTH ?? DEFAULT_BUTTON_STRENGTHS.variation,
      upscale: e.EASEL_UPSCALE_STRENGTH ?? DEFAULT_BUTTON_STRENGTHS.upscale,
    },
    limits: defined({
      maxSteps: e.EASEL_MAX_STEPS,
      maxPixels: e.EASEL_MAX_PIXELS,
      maxCount: e.EASEL_MAX_IMAGES,
      maxQueuedPerUser: e.EASEL_MAX_QUEUED_PER_USER,
    }),
    elo: { k: e.EASEL_ELO_K ?? DEFAULT_ELO.k, start: e.EASEL_ELO_START ?? DEFAULT_ELO.start },
    queue: defined({ maxQueued: e.EASEL_MAX_QUEUED, maxQueuedPerWorkspace: e.EASEL_MAX_QUEUED_PER_SERVER }),
    hub: { endpoint: e.HF_ENDPOINT ?? DEFAULT_CONFIG.hubEndpoint, ...defined({ token: e.HF_TOKEN }) },
    ...defined({ retentionDays: e.EASEL_RETENTION_DAYS }),
    debug: e.EASEL_DEBUG,
    workerEnv: Object.fromEntries(
      Object.entries(source).filter(
        (entry): entry is [string, string] => WORKER_VARIABLE.test(entry[0]) && typeof entry[1] === "string",
      ),
    ),
    logFormat: e.EASEL_LOG_FORMAT ?? "human",
  };
}

/** Which platforms have what they need to start, and what is missing for the others (named by variable). */
export function platformReadiness(config: Config): { ready: string[]; missing: string[] } {
  const ready: string[] = [];
  const missing: string[] = [];
  if (config.discord.token) ready.push("discord");
  else missing.push("Discord: set DISCORD_TOKEN");
  if (config.slack.botToken && (config.slack.appToken || config.slack.signingSecret)) ready.push("slack");
  else if (config.slack.botToken)
    missing.push("Slack: set SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP)");
  else missing.push("Slack: set SLACK_BOT_TOKEN and SLACK_APP_TOKEN (or SLACK_SIGNING_SECRET)");
  return { ready, missing };
}
