/**
 * Midjourney-style flags inside the prompt (`a lighthouse in a storm --ar 3:2 --seed 42`): the only way Slack
 * users pass options, and the form every result shows its settings in, so a result can be pasted back to make
 * it again.
 *
 * Grammar. A flag is `--` (or the em dash / en dash that phones and Discord autocorrect `--` into) directly
 * followed by an ASCII letter, at the start of the text or after whitespace, and runs to the next whitespace.
 * The prompt is the text before the first flag; each flag's value is the text up to the next flag, trimmed.
 * Every flag-shaped word must be a known flag, so "--" inside a word ("rock--paper"), before a space ("a -- b")
 * or before a digit ("--5") stays prompt text, and any other "--word" is refused instead of being silently
 * sent to the model. That is what keeps renderCanonicalPrompt and parsePromptFlags a round trip: a prompt that
 * parsed once contains no flag-shaped word, so it cannot be mistaken for a flag when rendered again.
 */

import { type Parsed, parseAspectRatio, parseSize } from "./aspect.ts";
import type { BackendName, GenerationRequest } from "./request.ts";
import type { RequestLimits } from "./settings.ts";

/** Sampler (scheduler) names users can pick with `--sampler`; equal to the LDM backend's SCHEDULER_NAMES. */
export const SAMPLER_NAMES = [
  "ddim",
  "pndm",
  "euler",
  "euler_ancestral",
  "dpmpp_2m",
  "dpmpp_2m_karras",
  "lcm",
  "euler_trailing",
] as const;
/** One of SAMPLER_NAMES. */
export type SamplerName = (typeof SAMPLER_NAMES)[number];

// A record, not an array, so that adding a BackendName without listing it here fails to compile.
const BACKENDS: Record<BackendName, true> = { ldm: true, openai: true };
/** Every rendering backend, in the order messages list them. */
export const BACKEND_NAMES = Object.keys(BACKENDS) as readonly BackendName[];

/**
 * The server's hard limits: configuration and guild/channel settings may lower the configurable ones
 * (RequestLimits), never raise them, whatever a platform's UI allowed.
 */
export const HARD_LIMITS = {
  /** Prompt length in characters (Unicode code points), flags not counted; dall-e-2's limit too. */
  promptChars: 1000,
  negativePromptChars: 1000,
  minSteps: 1,
  maxSteps: 150,
  minSide: 64,
  maxSide: 2048,
  /** Latents are 1/8 of the image, so sides must divide by 8. */
  sideMultiple: 8,
  maxPixels: 2048 * 2048,
  /** The smallest pixel limit settings may set: one 64×64 image. */
  minPixels: 64 * 64,
  minCount: 1,
  maxCount: 4,
  maxSeed: 4_294_967_295,
  maxGuidance: 30,
  /** Strength is (0, 1]; with two decimals kept, the smallest is 0.01. */
  minStrength: 0.01,
  /** cfg and strength keep this many decimals, so they print without exponents and parse back exactly. */
  decimals: 2,
  /** The scheduler's global queue bound; no per-user limit may exceed it. */
  maxQueuedPerUser: 100,
} as const;

/** Options as prompt flags or command options give them, before validation (numbers may arrive as text). */
export interface RequestOptions {
  /** "16:9". */
  aspect?: string;
  seed?: number | string;
  negativePrompt?: string;
  steps?: number | string;
  guidance?: number | string;
  sampler?: string;
  model?: string;
  backend?: string;
  count?: number | string;
  /** "768x512" or the two numbers. */
  size?: string | { width: number; height: number };
  strength?: number | string;
}

/** Options after validation: each present value is well-formed and inside the hard (or given) limits. */
export interface PromptFlags {
  /** Normalised to "W:H". */
  aspect?: string;
  seed?: number;
  negativePrompt?: string;
  steps?: number;
  guidance?: number;
  sampler?: SamplerName;
  model?: string;
  backend?: BackendName;
  count?: number;
  /** Whole numbers within the side limits; rounding to multiples of 8 happens in buildRequest. */
  size?: { width: number; height: number };
  strength?: number;
}

/** A prompt split into its text and its flags. */
export interface PromptWithFlags {
  /** The text before the first flag, trimmed ("" when the text starts with a flag). */
  prompt: string;
  flags: PromptFlags;
}

/** Limits the parser checks numbers against, when the caller knows lower ones than HARD_LIMITS. */
export type FlagLimits = Partial<Pick<RequestLimits, "maxSteps" | "maxCount">>;

/** The flags, in the order messages list them. */
export const FLAG_NAMES = [
  "ar",
  "seed",
  "no",
  "steps",
  "cfg",
  "sampler",
  "model",
  "backend",
  "n",
  "size",
  "strength",
] as const;
/** One of FLAG_NAMES. */
export type FlagName = (typeof FLAG_NAMES)[number];

/** The PromptFlags field each flag sets. */
export const FLAG_FIELDS: Readonly<Record<FlagName, keyof PromptFlags>> = {
  ar: "aspect",
  seed: "seed",
  no: "negativePrompt",
  steps: "steps",
  cfg: "guidance",
  sampler: "sampler",
  model: "model",
  backend: "backend",
  n: "count",
  size: "size",
  strength: "strength",
};

/** Other spellings people type; `--aspect` is Midjourney's long form of `--ar`. */
const FLAG_ALIASES: Readonly<Record<string, FlagName>> = { aspect: "ar" };

/** Alternative sampler spellings (A1111, diffusers and Midjourney-bot habits), keyed by their compact form. */
export const SAMPLER_ALIASES: Readonly<Record<string, SamplerName>> = {
  eulera: "euler_ancestral",
  eulerancestral: "euler_ancestral",
  eulerancestraldiscrete: "euler_ancestral",
  eulerdiscrete: "euler",
  plms: "pndm",
  dpmpp2m: "dpmpp_2m",
  dpmsolvermultistep: "dpmpp_2m",
  dpmpp2mkarras: "dpmpp_2m_karras",
  karras: "dpmpp_2m_karras",
  lcm: "lcm",
  eulertrailing: "euler_trailing",
  turbo: "euler_trailing",
};

/** Model names: no path separators, no "..", no spaces, so a name can never leave the models folder. */
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

const EM_DASH = 0x2014;
const EN_DASH = 0x2013;
const HYPHEN = 0x2d;

const isSpace = (ch: string | undefined): boolean => ch !== undefined && /\s/.test(ch);
const isAsciiLetter = (code: number): boolean => (code >= 65 && code <= 90) || (code >= 97 && code <= 122);

/** User text for a message: at most 40 characters on one line, never a broken surrogate pair. */
export function showText(text: string, max = 40): string {
  let out = "";
  let count = 0;
  for (const ch of text) {
    if (count === max) return `${out}…`;
    out += ch;
    count++;
  }
  return out.replace(/\s+/g, " ");
}

const quote = (raw: unknown): string => {
  if (typeof raw === "string") return `"${showText(raw)}"`;
  if (typeof raw === "number" || typeof raw === "bigint" || typeof raw === "boolean") return String(raw);
  if (raw === null) return "null";
  return typeof raw;
};

/** A number rule, described in messages exactly as it is checked. */
interface NumberRule {
  whole: boolean;
  min: number;
  max: number;
}

const describeRule = (rule: NumberRule): string =>
  `${rule.whole ? "a whole number" : "a number"} from ${rule.min} to ${rule.max}`;

const WHOLE_TEXT = /^[0-9]+$/;
// No sign, exponent, hex, "Infinity" or "NaN": only what people write for a plain decimal.
const DECIMAL_TEXT = /^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$/;

/** Reads a number (or its text) against `rule`; the reason names `label` and the range. */
function readNumber(label: string, raw: unknown, rule: NumberRule): Parsed<number> {
  const reason = `${label} must be ${describeRule(rule)} (got ${quote(raw)})`;
  let n: number;
  if (typeof raw === "number") {
    n = raw;
  } else if (typeof raw === "string") {
    const text = raw.trim();
    // Past 15 digits doubles lose integers; every limit is far below that, so it is simply out of range.
    if (text.length > 15 || !(rule.whole ? WHOLE_TEXT : DECIMAL_TEXT).test(text))
      return { ok: false, reason };
    n = Number(text);
  } else {
    return { ok: false, reason };
  }
  if (!Number.isFinite(n) || n < rule.min || n > rule.max || (rule.whole && !Number.isInteger(n)))
    return { ok: false, reason };
  if (!rule.whole) {
    const scale = 10 ** HARD_LIMITS.decimals;
    n = Math.round(n * scale) / scale;
  }
  return { ok: true, value: n + 0 }; // + 0 turns -0 into 0
}

/** Resolves a sampler name or a common alias ("euler_a", "DPM++ 2M Karras") to its canonical name. */
export function parseSampler(text: string): Parsed<SamplerName> {
  const compact = text
    .toLowerCase()
    .replace(/\+/g, "p")
    .replace(/[\s_\-.]+/g, "");
  const found =
    SAMPLER_NAMES.find((name) => name.replace(/_/g, "") === compact) ??
    (Object.hasOwn(SAMPLER_ALIASES, compact) ? SAMPLER_ALIASES[compact] : undefined);
  if (found) return { ok: true, value: found };
  return { ok: false, reason: `sampler must be one of ${SAMPLER_NAMES.join(", ")} (got ${quote(text)})` };
}

const EXPECTS = {
  aspect: "an aspect ratio like 16:9, whole numbers up to 100, at most 4:1 either way",
  size: `a size like 768x512, each side a whole number from ${HARD_LIMITS.minSide} to ${HARD_LIMITS.maxSide}`,
  sampler: `one of ${SAMPLER_NAMES.join(", ")}`,
  model: 'a model name made of letters, digits, ".", "_" and "-"',
  backend: BACKEND_NAMES.join(" or "),
  negativePrompt: "the things to keep out of the image, e.g. --no text, watermark",
};

function numberRules(limits: FlagLimits | undefined) {
  return {
    seed: { whole: true, min: 0, max: HARD_LIMITS.maxSeed },
    steps: { whole: true, min: HARD_LIMITS.minSteps, max: limits?.maxSteps ?? HARD_LIMITS.maxSteps },
    count: { whole: true, min: HARD_LIMITS.minCount, max: limits?.maxCount ?? HARD_LIMITS.maxCount },
    guidance: { whole: false, min: 0, max: HARD_LIMITS.maxGuidance },
    strength: { whole: false, min: HARD_LIMITS.minStrength, max: 1 },
  } satisfies Partial<Record<keyof PromptFlags, NumberRule>>;
}

/** What a value of `field` must look like, for "needs a value" messages. */
function expectsOf(field: keyof PromptFlags, limits: FlagLimits | undefined): string {
  const rules = numberRules(limits);
  if (field in rules) return describeRule(rules[field as keyof typeof rules]);
  return EXPECTS[field as keyof typeof EXPECTS];
}

function readSize(label: string, raw: unknown): Parsed<{ width: number; height: number }> {
  const reason = `${label} must be ${EXPECTS.size} (got ${
    typeof raw === "object" && raw !== null && "width" in raw && "height" in raw
      ? `${quote(raw.width)}x${quote(raw.height)}`
      : quote(raw)
  })`;
  let width: unknown;
  let height: unknown;
  if (typeof raw === "string") {
    const parsed = parseSize(raw);
    if (!parsed.ok) return { ok: false, reason };
    ({ width, height } = parsed.value);
  } else if (typeof raw === "object" && raw !== null && "width" in raw && "height" in raw) {
    ({ width, height } = raw);
  } else {
    return { ok: false, reason };
  }
  const side = (v: unknown): v is number =>
    typeof v === "number" && Number.isInteger(v) && v >= HARD_LIMITS.minSide && v <= HARD_LIMITS.maxSide;
  if (!side(width) || !side(height)) return { ok: false, reason };
  return { ok: true, value: { width, height } };
}

/**
 * Validates options from any source into PromptFlags; `label` names a field the way its source does
 * ("--cfg" for a flag, "cfg" for a command option) so that every reason points at what the user typed.
 */
export function readOptions(
  raw: RequestOptions,
  label: (field: keyof PromptFlags) => string,
  limits?: FlagLimits,
): Parsed<PromptFlags> {
  const flags: PromptFlags = {};
  const fail = (reason: string): Parsed<PromptFlags> => ({ ok: false, reason });
  const rules = numberRules(limits);
  for (const field of ["seed", "steps", "count", "guidance", "strength"] as const) {
    if (raw[field] === undefined) continue;
    const read = readNumber(label(field), raw[field], rules[field]);
    if (!read.ok) return fail(read.reason);
    flags[field] = read.value;
  }
  if (raw.aspect !== undefined) {
    const parsed = typeof raw.aspect === "string" ? parseAspectRatio(raw.aspect) : undefined;
    if (!parsed?.ok) return fail(`${label("aspect")} must be ${EXPECTS.aspect} (got ${quote(raw.aspect)})`);
    flags.aspect = `${parsed.value.w}:${parsed.value.h}`;
  }
  if (raw.size !== undefined) {
    const read = readSize(label("size"), raw.size);
    if (!read.ok) return fail(read.reason);
    flags.size = read.value;
  }
  if (raw.negativePrompt !== undefined) {
    if (typeof raw.negativePrompt !== "string")
      return fail(`${label("negativePrompt")} must be text (got ${quote(raw.negativePrompt)})`);
    const text = raw.negativePrompt.trim();
    // Flags cannot appear here when the value came from the prompt; from a command option they would make
    // the canonical prompt parse differently, so they are refused rather than kept.
    const token = firstFlagWord(text);
    if (token !== undefined)
      return fail(`${label("negativePrompt")} cannot contain flags (found "${showText(token)}")`);
    if (text !== "") flags.negativePrompt = text;
  }
  if (raw.sampler !== undefined) {
    const parsed = typeof raw.sampler === "string" ? parseSampler(raw.sampler) : undefined;
    if (!parsed?.ok)
      return fail(`${label("sampler")} must be ${EXPECTS.sampler} (got ${quote(raw.sampler)})`);
    flags.sampler = parsed.value;
  }
  if (raw.model !== undefined) {
    const name = typeof raw.model === "string" ? raw.model.trim() : undefined;
    if (name === undefined || !MODEL_NAME.test(name) || name.includes(".."))
      return fail(`${label("model")} must be ${EXPECTS.model} (got ${quote(raw.model)})`);
    flags.model = name;
  }
  if (raw.backend !== undefined) {
    const name = typeof raw.backend === "string" ? raw.backend.trim().toLowerCase() : "";
    const backend = BACKEND_NAMES.find((b) => b === name);
    if (!backend) return fail(`${label("backend")} must be ${EXPECTS.backend} (got ${quote(raw.backend)})`);
    flags.backend = backend;
  }
  if (flags.aspect !== undefined && flags.size !== undefined)
    return fail(
      `give ${label("aspect")} or ${label("size")}, not both: ${label("aspect")} picks a shape at the model's size, ${label("size")} gives exact pixels`,
    );
  return { ok: true, value: flags };
}

/** A flag-shaped word found in text. */
interface FlagToken {
  /** Index of the dash(es). */
  start: number;
  /** Index just past the word. */
  end: number;
  /** The word after the dash(es), as typed. */
  word: string;
  /** The whole token as typed ("—ar"). */
  typed: string;
}

/** Every flag-shaped word in `text`, in one linear pass. */
function scanFlagTokens(text: string, stopAfterFirst = false): FlagToken[] {
  const tokens: FlagToken[] = [];
  const n = text.length;
  let i = 0;
  while (i < n) {
    const code = text.charCodeAt(i);
    if ((code === HYPHEN || code === EM_DASH || code === EN_DASH) && (i === 0 || isSpace(text[i - 1]))) {
      let nameStart = -1;
      if (code === HYPHEN) {
        if (text.charCodeAt(i + 1) === HYPHEN) nameStart = i + 2;
      } else {
        nameStart = i + 1;
      }
      if (nameStart >= 0 && nameStart < n && isAsciiLetter(text.charCodeAt(nameStart))) {
        let end = nameStart + 1;
        while (end < n && !isSpace(text[end])) end++;
        tokens.push({ start: i, end, word: text.slice(nameStart, end), typed: text.slice(i, end) });
        if (stopAfterFirst) return tokens;
        i = end;
        continue;
      }
    }
    i++;
  }
  return tokens;
}

/** The first flag-shaped word in `text` ("--seed", "—ar"), or undefined when it has none. */
export function firstFlagWord(text: string): string | undefined {
  return scanFlagTokens(text, true)[0]?.typed;
}

/** Edit distance, for "did you mean" (inputs are short: flag words are cut to 20 characters first). */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}

const FLAG_LIST = FLAG_NAMES.map((name) => `--${name}`).join(", ");

function unknownFlagReason(token: FlagToken): string {
  const word = token.word.toLowerCase();
  let hint = "";
  const glued = FLAG_NAMES.find(
    (name) =>
      word.startsWith(name) && word.length > name.length && !isAsciiLetter(word.charCodeAt(name.length)),
  );
  if (glued) {
    hint = ` (put a space between --${glued} and its value)`;
  } else if (word.length <= 20) {
    const best = FLAG_NAMES.map((name) => ({ name, d: editDistance(word, name) })).sort(
      (a, b) => a.d - b.d,
    )[0];
    if (best && best.d <= (best.name.length <= 3 ? 1 : 2)) hint = ` (did you mean --${best.name}?)`;
  }
  return `unknown flag "${showText(token.typed)}"${hint}; flags: ${FLAG_LIST} (a word starting with -- or — is read as a flag)`;
}

/** The flag that sets `field`, as messages name it ("--cfg" for guidance). */
export function flagLabel(field: keyof PromptFlags): string {
  return `--${FLAG_NAMES.find((name) => FLAG_FIELDS[name] === field) ?? field}`;
}

/**
 * Splits a prompt into its text and validated flags (`a cat --ar 16:9 --no text, watermark`). Never throws:
 * any input gives flags or a reason naming the flag and what it accepts.
 */
export function parsePromptFlags(text: string, limits?: FlagLimits): Parsed<PromptWithFlags> {
  const tokens = scanFlagTokens(text);
  const prompt = text.slice(0, tokens[0]?.start ?? text.length).trim();
  const raw: Record<string, string> = {};
  const seen = new Set<FlagName>();
  for (const [k, token] of tokens.entries()) {
    const lower = token.word.toLowerCase();
    const name =
      FLAG_NAMES.find((f) => f === lower) ??
      (Object.hasOwn(FLAG_ALIASES, lower) ? FLAG_ALIASES[lower] : undefined);
    if (name === undefined) return { ok: false, reason: unknownFlagReason(token) };
    if (seen.has(name)) return { ok: false, reason: `--${name} is given twice; give it once` };
    seen.add(name);
    const field = FLAG_FIELDS[name];
    const value = text.slice(token.end, tokens[k + 1]?.start ?? text.length).trim();
    if (value === "") return { ok: false, reason: `--${name} needs a value: ${expectsOf(field, limits)}` };
    raw[field] = value;
  }
  const read = readOptions(raw, flagLabel, limits);
  if (!read.ok) {
    // A value with spaces in it (other than the free-text ones) usually means prompt text after the flags.
    const spaced = Object.entries(raw).some(
      ([field, value]) => field !== "negativePrompt" && field !== "sampler" && /\s/.test(value),
    );
    return { ok: false, reason: spaced ? `${read.reason}; flags go at the end of the prompt` : read.reason };
  }
  return { ok: true, value: { prompt, flags: read.value } };
}

/**
 * The one canonical prompt shown with every result: the prompt, then every setting as a flag in a fixed
 * order, so that parsePromptFlags gives back the same prompt, seed, steps, cfg, sampler, size, model,
 * backend, count, negative prompt and strength.
 */
export function renderCanonicalPrompt(request: GenerationRequest): string {
  const parts: string[] = [];
  if (request.prompt !== "") parts.push(request.prompt);
  parts.push(
    `--seed ${request.seed}`,
    `--steps ${request.steps}`,
    `--cfg ${request.guidance}`,
    `--sampler ${request.sampler}`,
    `--size ${request.width}x${request.height}`,
    `--model ${request.model}`,
    `--backend ${request.backend}`,
  );
  if (request.count > 1) parts.push(`--n ${request.count}`);
  if (request.negativePrompt !== "") parts.push(`--no ${request.negativePrompt}`);
  if (request.init) parts.push(`--strength ${request.init.strength}`);
  return parts.join(" ");
}
