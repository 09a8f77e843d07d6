/**
 * GenerationRequest: everything needed to render one job and to render it again. Validation and the limits live
 * here, on the server side, whatever a platform's UI allows.
 */

import { type Parsed, parseAspectRatio, sizeForAspect } from "./aspect.ts";
import type { EaselErrorCode } from "./errors.ts";
import { compileModerationRules, type ModerationRules, moderatePrompt } from "./moderation.ts";
import {
  BACKEND_NAMES,
  flagLabel,
  HARD_LIMITS,
  type PromptFlags,
  parsePromptFlags,
  type RequestOptions,
  readOptions,
  SAMPLER_NAMES,
  showText,
} from "./prompt-flags.ts";
import {
  type AllowList,
  type ChannelSettings,
  DEFAULT_REQUEST_DEFAULTS,
  effectiveLimits,
  type GuildSettings,
  type RequestDefaults,
  type RequestLimits,
  type SettingsDefaults,
} from "./settings.ts";

export type { RequestOptions } from "./prompt-flags.ts";

/** The rendering backends. */
export type BackendName = "ldm" | "openai";

/** Who asked, and where the result goes. */
export interface Requester {
  platform: "discord" | "slack" | "cli";
  /** Discord guild id or Slack team id ("dm" for direct messages). */
  workspaceId: string;
  channelId: string;
  userId: string;
  /** Display name, for messages only. */
  userName?: string;
}

/** What a job was derived from (the buttons under a result). */
export interface Lineage {
  jobId: string;
  /** 1-based image index in the parent's result (0 for the whole result, e.g. a reroll). */
  variant: number;
  kind: "reroll" | "variation" | "upscale";
}

/** A validated request: every field filled (defaults applied), every limit checked. */
export interface GenerationRequest {
  prompt: string;
  /** "" when none. */
  negativePrompt: string;
  /** 0..2^32-1; drawn at random when the user gave none, and shown with the result. */
  seed: number;
  steps: number;
  guidance: number;
  sampler: string;
  width: number;
  height: number;
  /** The aspect ratio the user asked for ("16:9"), when the size came from one. */
  aspect?: string;
  /** Images in the job, 1..4. */
  count: number;
  backend: BackendName;
  model: string;
  /** img2img start image (stored image sha256) and strength 0..1. */
  init?: { imageId: string; strength: number };
  parent?: Lineage;
  requester: Requester;
  /** The channel allows NSFW output; backends keep their safety filter on unless this is true. */
  nsfwAllowed?: boolean;
  /** A contest: members vote on the variants for this long once the result is posted (`--vote 10m`). */
  contestMs?: number;
  /** One side of an arena match (`/compare`): shown as A or B without its model until the vote closes. */
  arena?: { matchId: string; side: "A" | "B" };
}

/** One request as a command handler received it. */
export interface RequestInput {
  /** The prompt as typed, flags included. */
  prompt: string;
  /** Options given outside the prompt (slash-command options, a Slack modal): they beat prompt flags. */
  options?: RequestOptions;
  requester: Requester;
  /** The stored image to start from (variations, upscales, img2img). */
  init?: { imageId: string };
  parent?: Lineage;
  /** How messages name `options` where their source is not a slash command (the CLI says "--cfg"). */
  optionLabel?: (field: keyof PromptFlags) => string;
}

/** What the server has and where the request was made: everything buildRequest merges and checks against. */
export interface RequestContext {
  /** Model names per backend (installed LDM folders, the configured OpenAI model); none: backend not set up. */
  catalog: Readonly<Partial<Record<BackendName, readonly string[]>>>;
  /** Configuration defaults; DEFAULT_REQUEST_DEFAULTS when left out. */
  defaults?: RequestDefaults;
  /** Configuration limits; DEFAULT_LIMITS for any left out, HARD_LIMITS above all. */
  limits?: Partial<RequestLimits>;
  guild?: GuildSettings;
  channel?: ChannelSettings;
  /** Defaults a model brings (SD-Turbo: 1 step, cfg 0): below the guild's, above the configuration's. */
  modelDefaults?: (backend: BackendName, model: string) => SettingsDefaults | undefined;
  /** The model's native square side, for --ar and the default size; DEFAULT_NATIVE_SIDE when left out. */
  nativeSide?: number | ((backend: BackendName, model: string) => number);
  /** Uniform in [0, 1), like Math.random (the default): injected so that tests get fixed seeds. */
  random?: () => number;
  /** The guild's compiled banned words and patterns; compiled from `guild` (and cached) when left out. */
  moderation?: ModerationRules;
}

/** Why buildRequest refused: a bad value, something not allowed here, or banned content. */
export type BuildFailureCode = Extract<EaselErrorCode, "invalid_argument" | "forbidden" | "banned_content">;

/** buildRequest's answer: a Parsed<GenerationRequest> whose success also lists the values it adjusted. */
export type BuildResult =
  | { ok: true; value: GenerationRequest; notes: string[] }
  | { ok: false; reason: string; code: BuildFailureCode };

/** SD 1.x's native side, for models whose side nobody gave. */
export const DEFAULT_NATIVE_SIDE = 512;

/** How command options are named in messages (prompt flags are named "--steps"). */
const OPTION_LABELS: Readonly<Record<keyof PromptFlags, string>> = {
  aspect: "ar",
  seed: "seed",
  negativePrompt: "negative",
  steps: "steps",
  guidance: "cfg",
  sampler: "sampler",
  model: "model",
  backend: "backend",
  count: "n",
  size: "size",
  strength: "strength",
};

const commandOptionLabel = (field: keyof PromptFlags): string => `the ${OPTION_LABELS[field]} option`;

const moderationCache = new WeakMap<GuildSettings, Parsed<ModerationRules>>();

function guildModeration(guild: GuildSettings | undefined): Parsed<ModerationRules> | undefined {
  if (!guild || (guild.bannedWords.length === 0 && guild.bannedPatterns.length === 0)) return undefined;
  let rules = moderationCache.get(guild);
  if (!rules) {
    rules = compileModerationRules(guild);
    moderationCache.set(guild, rules);
  }
  return rules;
}

/** Characters in `text` as people count them: code points, so an emoji counts once. */
function charCount(text: string): number {
  if (text.length <= HARD_LIMITS.promptChars / 2) return text.length; // cannot be over any limit: skip the walk
  let n = 0;
  for (const _ of text) n++;
  return n;
}

const roundDecimals = (v: number): number => {
  const scale = 10 ** HARD_LIMITS.decimals;
  return Math.round(v * scale) / scale;
};

function intersect<T extends string>(a: AllowList<T> | undefined, b: AllowList<T> | undefined): AllowList<T> {
  if (a === undefined || a === "all") return b ?? "all";
  if (b === undefined || b === "all") return a;
  return a.filter((x) => b.includes(x));
}

const allows = <T extends string>(list: AllowList<T>, name: T): boolean =>
  list === "all" || list.includes(name);

const multipleOf = (v: number, m: number): number => Math.floor(v / m) * m;

/** Shrinks a size to at most `maxPixels`, keeping its shape, with sides multiples of 8 and at least 64. */
function fitToPixels(width: number, height: number, maxPixels: number): { width: number; height: number } {
  const { minSide, sideMultiple } = HARD_LIMITS;
  const scale = Math.min(1, Math.sqrt(maxPixels / (width * height)));
  let w = Math.max(minSide, multipleOf(width * scale, sideMultiple));
  let h = Math.max(minSide, multipleOf(height * scale, sideMultiple));
  while (w * h > maxPixels && (w > minSide || h > minSide)) {
    if ((w >= h && w > minSide) || h === minSide) w -= sideMultiple;
    else h -= sideMultiple;
  }
  return { width: w, height: h };
}

/** The size for a ratio at the model's native pixel count, made smaller until it fits the limits. */
function sizeForRatio(ratio: { w: number; h: number }, side: number, maxPixels: number) {
  const fits = (s: { width: number; height: number }) =>
    s.width * s.height <= maxPixels && s.width <= HARD_LIMITS.maxSide && s.height <= HARD_LIMITS.maxSide;
  let base = side;
  let size = sizeForAspect(ratio, base);
  while (!fits(size) && base > HARD_LIMITS.minSide) {
    base -= HARD_LIMITS.minSide;
    size = sizeForAspect(ratio, base);
  }
  return fits(size) ? size : fitToPixels(size.width, size.height, maxPixels);
}

const square = (pixels: number): string => {
  const side = multipleOf(Math.sqrt(pixels), HARD_LIMITS.sideMultiple);
  return `${side}x${side}`;
};

/**
 * Builds a validated GenerationRequest: prompt flags parsed, then values merged with the precedence command
 * options > prompt flags > channel > guild > model defaults > configuration, limits applied, backend and model
 * checked against what the server has and what the guild and channel allow, the prompt checked against the
 * guild's banned words. Never throws; a refusal says what to change and names the limit.
 */
export function buildRequest(input: RequestInput, context: RequestContext): BuildResult {
  const notes: string[] = [];
  const invalid = (reason: string): BuildResult => ({ ok: false, reason, code: "invalid_argument" });
  const forbidden = (reason: string): BuildResult => ({ ok: false, reason, code: "forbidden" });
  const config = context.defaults ?? DEFAULT_REQUEST_DEFAULTS;
  const { guild, channel } = context;
  const limits = effectiveLimits(context.limits, guild?.limits, channel?.limits);
  const optionLabel = input.optionLabel ?? commandOptionLabel;

  // 1. What the user asked for: command options beat prompt flags.
  const parsed = parsePromptFlags(typeof input.prompt === "string" ? input.prompt : "", limits);
  if (!parsed.ok) return invalid(parsed.reason);
  const fromOptions = readOptions(input.options ?? {}, optionLabel, limits);
  if (!fromOptions.ok) return invalid(fromOptions.reason);
  const flags = parsed.value.flags;
  const options = fromOptions.value;
  const user: PromptFlags = { ...flags };
  const source = new Map<keyof PromptFlags, "flag" | "option">();
  for (const key of Object.keys(flags) as (keyof PromptFlags)[]) source.set(key, "flag");
  if (options.aspect !== undefined || options.size !== undefined) {
    // The shape is one choice: an option's size or ratio replaces the prompt's, whichever form each used.
    for (const key of ["aspect", "size"] as const) {
      if (flags[key] !== undefined && options[key] === undefined)
        notes.push(
          `${flagLabel(key)} in the prompt was replaced by ${optionLabel(options.aspect ? "aspect" : "size")}`,
        );
      delete user[key];
      source.delete(key);
    }
  }
  for (const key of Object.keys(options) as (keyof PromptFlags)[]) {
    const value = options[key];
    if (flags[key] !== undefined && flags[key] !== value && typeof value !== "object")
      notes.push(
        `${optionLabel(key)} (${showText(String(value))}) was used instead of ${flagLabel(key)} in the prompt`,
      );
    (user as Record<string, unknown>)[key] = value;
    source.set(key, "option");
  }
  const label = (key: keyof PromptFlags) =>
    source.get(key) === "option" ? optionLabel(key) : flagLabel(key);

  // 2. The texts.
  const prompt = parsed.value.prompt;
  if (prompt === "")
    return invalid(
      "the prompt is empty: describe the image, then add any flags (a lighthouse in a storm --ar 3:2)",
    );
  const promptChars = charCount(prompt);
  if (promptChars > HARD_LIMITS.promptChars)
    return invalid(
      `the prompt is ${promptChars} characters long; the limit is ${HARD_LIMITS.promptChars} (flags not counted)`,
    );
  const negativePrompt = user.negativePrompt ?? "";
  const negativeChars = charCount(negativePrompt);
  if (negativeChars > HARD_LIMITS.negativePromptChars)
    return invalid(
      `${label("negativePrompt")} is ${negativeChars} characters long; the limit is ${HARD_LIMITS.negativePromptChars}`,
    );
  const moderation = context.moderation
    ? { ok: true as const, value: context.moderation }
    : guildModeration(guild);
  if (moderation && !moderation.ok)
    return forbidden(
      `this server's banned-word settings cannot be used (${moderation.reason}); an admin needs to fix them`,
    );
  if (moderation) {
    const verdict = moderatePrompt(prompt, moderation.value);
    if (!verdict.ok) return { ok: false, reason: verdict.reason, code: "banned_content" };
  }

  // 3. Backend and model: what the user named must exist and be allowed; defaults skip what is not.
  const available = (b: BackendName): readonly string[] => context.catalog[b] ?? [];
  const setUp = BACKEND_NAMES.filter((b) => available(b).length > 0);
  const allowedBackends = intersect(guild?.allowedBackends, channel?.allowedBackends);
  const allowedModels = intersect(guild?.allowedModels, channel?.allowedModels);
  const usableBackends = setUp.filter((b) => allows(allowedBackends, b));
  const listModels = (backends: readonly BackendName[]) =>
    backends.map((b) => `${available(b).join(", ")} (${b})`).join("; ") || "none";
  let backend: BackendName | undefined;
  if (user.backend !== undefined) {
    backend = user.backend;
    if (!setUp.includes(backend))
      return invalid(
        `backend ${backend} is not set up on this server; backends: ${setUp.join(", ") || "none"}`,
      );
    if (!allows(allowedBackends, backend))
      return forbidden(
        `backend ${backend} is not allowed here; allowed: ${usableBackends.join(", ") || "none"}`,
      );
  } else if (user.model !== undefined) {
    const model = user.model;
    const owners = setUp.filter((b) => available(b).includes(model));
    backend = owners.find((b) => allows(allowedBackends, b)) ?? owners[0];
    if (backend === undefined) return invalid(`there is no model "${model}"; models: ${listModels(setUp)}`);
    if (!allows(allowedBackends, backend))
      return forbidden(
        `backend ${backend} (for ${model}) is not allowed here; allowed: ${usableBackends.join(", ") || "none"}`,
      );
  } else {
    const candidates = [channel?.defaults.backend, guild?.defaults.backend, config.backend, ...BACKEND_NAMES];
    backend = candidates.find((b): b is BackendName => b !== undefined && usableBackends.includes(b));
    if (backend === undefined)
      return forbidden(
        setUp.length === 0
          ? "no image backend is set up on this server"
          : `none of this server's backends (${setUp.join(", ")}) is allowed here`,
      );
  }
  const models = available(backend);
  const usableModels = models.filter((m) => allows(allowedModels, m));
  let model: string | undefined;
  if (user.model !== undefined) {
    model = user.model;
    if (!models.includes(model))
      return invalid(`there is no ${backend} model "${model}"; ${backend} models: ${models.join(", ")}`);
    if (!allows(allowedModels, model))
      return forbidden(`model ${model} is not allowed here; allowed: ${usableModels.join(", ") || "none"}`);
  } else {
    const candidates = [channel?.defaults.model, guild?.defaults.model, config.models[backend], ...models];
    model = candidates.find((m): m is string => m !== undefined && usableModels.includes(m));
    if (model === undefined)
      return forbidden(`no ${backend} model is allowed here (${backend} models: ${models.join(", ")})`);
  }

  // 4. Everything else: the user's value (already checked against the limits), else the first default.
  const modelDefaults = context.modelDefaults?.(backend, model);
  const layers: (SettingsDefaults | undefined)[] = [
    channel?.defaults,
    guild?.defaults,
    modelDefaults,
    config,
  ];
  const fallback = <K extends keyof SettingsDefaults>(key: K, valid: (v: unknown) => boolean) =>
    layers.map((layer) => layer?.[key]).find((v) => v !== undefined && valid(v)) as
      | SettingsDefaults[K]
      | undefined;
  const isWhole = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v);

  // A default outside the limits in force (a guild default above a channel's limit) is moved inside them:
  // the user did not ask for it, so refusing would leave them nothing to change.
  const clamp = (what: string, value: number, min: number, max: number): number => {
    if (value > max) notes.push(`${what} lowered from ${value} to ${max} (the limit here)`);
    else if (value < min) notes.push(`${what} raised from ${value} to ${min} (the minimum)`);
    return Math.min(max, Math.max(min, value));
  };
  const steps = clamp(
    "steps",
    user.steps ?? fallback("steps", isWhole) ?? DEFAULT_REQUEST_DEFAULTS.steps,
    HARD_LIMITS.minSteps,
    limits.maxSteps,
  );
  const count = clamp(
    "images per job",
    user.count ?? fallback("count", isWhole) ?? DEFAULT_REQUEST_DEFAULTS.count,
    HARD_LIMITS.minCount,
    limits.maxCount,
  );
  const guidanceDefault = fallback(
    "guidance",
    (v) => typeof v === "number" && v >= 0 && v <= HARD_LIMITS.maxGuidance,
  );
  // Defaults are rounded like typed values, so the canonical prompt prints them without exponents.
  const guidance = roundDecimals(user.guidance ?? guidanceDefault ?? DEFAULT_REQUEST_DEFAULTS.guidance);
  const sampler =
    user.sampler ??
    fallback("sampler", (v) => SAMPLER_NAMES.some((name) => name === v)) ??
    DEFAULT_REQUEST_DEFAULTS.sampler;

  // 5. Size: the user's exact size is refused when over the pixel limit; a ratio or a default is fitted to it.
  const rawSide =
    typeof context.nativeSide === "function" ? context.nativeSide(backend, model) : context.nativeSide;
  const side =
    rawSide !== undefined &&
    Number.isInteger(rawSide) &&
    rawSide >= HARD_LIMITS.minSide &&
    rawSide <= HARD_LIMITS.maxSide
      ? rawSide
      : DEFAULT_NATIVE_SIDE;
  let width: number;
  let height: number;
  let aspect: string | undefined;
  if (user.size) {
    width = multipleOf(user.size.width, HARD_LIMITS.sideMultiple);
    height = multipleOf(user.size.height, HARD_LIMITS.sideMultiple);
    if (width !== user.size.width || height !== user.size.height)
      notes.push(
        `size ${user.size.width}x${user.size.height} rounded down to ${width}x${height} (sides are multiples of ${HARD_LIMITS.sideMultiple})`,
      );
    if (width * height > limits.maxPixels)
      return invalid(
        `${label("size")} ${width}x${height} is ${width * height} pixels; the limit here is ${limits.maxPixels} (${square(limits.maxPixels)})`,
      );
  } else if (user.aspect) {
    const ratio = parseAspectRatio(user.aspect);
    if (!ratio.ok) return invalid(`${label("aspect")}: ${ratio.reason}`);
    ({ width, height } = sizeForRatio(ratio.value, side, limits.maxPixels));
    const native = sizeForAspect(ratio.value, side);
    if (native.width !== width || native.height !== height)
      notes.push(
        `${label("aspect")} ${user.aspect} made ${width}x${height} instead of ${native.width}x${native.height} to stay within the limit here of ${limits.maxPixels} pixels`,
      );
    aspect = user.aspect;
  } else {
    const validSide = (v: unknown) => isWhole(v) && v >= HARD_LIMITS.minSide && v <= HARD_LIMITS.maxSide;
    const size = fallback(
      "size",
      (v) =>
        typeof v === "object" &&
        v !== null &&
        validSide((v as { width: unknown }).width) &&
        validSide((v as { height: unknown }).height),
    ) ?? { width: side, height: side };
    ({ width, height } = fitToPixels(size.width, size.height, limits.maxPixels));
    if (width !== size.width || height !== size.height)
      notes.push(
        `size ${size.width}x${size.height} lowered to ${width}x${height} (the limit here is ${limits.maxPixels} pixels)`,
      );
  }

  // 6. img2img strength, and the seed.
  if (user.strength !== undefined && !input.init)
    return invalid(
      `${label("strength")} only applies when starting from an image (a variation or an upscale); this request has none`,
    );
  const strength = roundDecimals(
    user.strength ??
      (config.strength >= HARD_LIMITS.minStrength && config.strength <= 1
        ? config.strength
        : DEFAULT_REQUEST_DEFAULTS.strength),
  );
  const seed = user.seed ?? randomSeed(context.random ?? Math.random);

  const request: GenerationRequest = {
    prompt,
    negativePrompt,
    seed,
    steps,
    guidance,
    sampler,
    width,
    height,
    ...(aspect === undefined ? {} : { aspect }),
    count,
    backend,
    model,
    ...(input.init ? { init: { imageId: input.init.imageId, strength } } : {}),
    ...(input.parent ? { parent: input.parent } : {}),
    requester: input.requester,
    nsfwAllowed: channel?.nsfwAllowed === true,
  };
  return { ok: true, value: request, notes };
}

/** A seed in 0..2^32-1 from a uniform [0, 1) source; a broken source still gives a valid seed. */
export function randomSeed(random: () => number): number {
  const r = random();
  if (!Number.isFinite(r)) return 0;
  return Math.min(HARD_LIMITS.maxSeed, Math.max(0, Math.floor(r * 2 ** 32)));
}
