/**
 * What each OpenAI image model accepts: sizes, images per call, prompt length, quality, whether it takes
 * `response_format`, and how it varies an image. OpenAI documents most of these in prose only (the OpenAPI
 * spec lets `model` and `size` be any string), so they live here, in one table, with the list prices.
 */

/** A size an image model renders. */
export interface ImageSize {
  width: number;
  height: number;
}

/** How a model family varies an existing image. */
export type VariationEndpoint =
  /** POST /images/variations: a square PNG under 4 MB, no prompt (dall-e-2). */
  | "variations"
  /** POST /images/edits: the source image and the prompt (GPT-image models). */
  | "edits"
  /** The model cannot start from an image (dall-e-3): a variation is made from the prompt alone. */
  | "none";

/** The rules of one model (or family) of the images API. */
export interface OpenAiModelRules {
  family: "dall-e-2" | "dall-e-3" | "gpt-image" | "compatible";
  /** Sizes the model renders, the first being its default. */
  sizes: readonly ImageSize[];
  /** Images one request may ask for (`n`). */
  maxImagesPerCall: number;
  /** Prompt length limit in characters. */
  maxPromptChars: number;
  /**
   * Whether to send `response_format: "b64_json"`: the DALL·E models return URLs unless asked, the GPT-image
   * models always return base64 and refuse the parameter.
   */
  sendsResponseFormat: boolean;
  /** Qualities the model takes; empty: never send `quality`. */
  qualities: readonly string[];
  /** Quality asked for when the configuration sets none (priced, unlike "auto"). */
  defaultQuality?: string;
  variation: VariationEndpoint;
  /** Largest source image for a variation or edit, in bytes. */
  maxSourceBytes: number;
  /** Whether the source image must be square (dall-e-2). */
  squareSource: boolean;
}

const square = (side: number): ImageSize => ({ width: side, height: side });

const GPT_IMAGE_RULES: OpenAiModelRules = {
  family: "gpt-image",
  sizes: [square(1024), { width: 1536, height: 1024 }, { width: 1024, height: 1536 }],
  maxImagesPerCall: 10,
  maxPromptChars: 32_000,
  sendsResponseFormat: false,
  qualities: ["low", "medium", "high", "auto"],
  defaultQuality: "medium",
  variation: "edits",
  // The API takes up to 50 MB; a PNG easel posts is far smaller, and a smaller upload fails less.
  maxSourceBytes: 25_000_000,
  squareSource: false,
};

const DALL_E_2_RULES: OpenAiModelRules = {
  family: "dall-e-2",
  sizes: [square(1024), square(512), square(256)],
  maxImagesPerCall: 10,
  maxPromptChars: 1000,
  sendsResponseFormat: true,
  qualities: [],
  variation: "variations",
  maxSourceBytes: 4_000_000,
  squareSource: true,
};

const DALL_E_3_RULES: OpenAiModelRules = {
  family: "dall-e-3",
  sizes: [square(1024), { width: 1792, height: 1024 }, { width: 1024, height: 1792 }],
  maxImagesPerCall: 1,
  maxPromptChars: 4000,
  sendsResponseFormat: true,
  qualities: ["standard", "hd"],
  defaultQuality: "standard",
  variation: "none",
  maxSourceBytes: 0,
  squareSource: false,
};

/**
 * A model easel does not know, on an OpenAI-compatible server: the GPT-image sizes, base64 asked for with
 * `response_format` (what most compatible servers need), no quality, variations through the edit endpoint.
 */
const COMPATIBLE_RULES: OpenAiModelRules = {
  ...GPT_IMAGE_RULES,
  family: "compatible",
  maxPromptChars: 4000,
  sendsResponseFormat: true,
  qualities: [],
};

/** The rules for a model name: exact DALL·E names and their snapshots, any GPT-image name, else "compatible". */
export function modelRules(model: string): OpenAiModelRules {
  if (model === "dall-e-2" || model.startsWith("dall-e-2-")) return DALL_E_2_RULES;
  if (model === "dall-e-3" || model.startsWith("dall-e-3-")) return DALL_E_3_RULES;
  if (model.startsWith("gpt-image-") || model.startsWith("chatgpt-image-")) return GPT_IMAGE_RULES;
  return COMPATIBLE_RULES;
}

/** `1024x1536`, the API's spelling of a size. */
export const sizeText = (size: ImageSize): string => `${size.width}x${size.height}`;

/**
 * The model's size nearest to what was asked: the closest aspect ratio first (on a log scale, so 2:1 and 1:2
 * are as far from 1:1), then the closest pixel count, then the larger.
 */
export function nearestSize(rules: OpenAiModelRules, width: number, height: number): ImageSize {
  const wantRatio = Math.log(width / height);
  const wantArea = Math.log(width * height);
  let best: ImageSize | undefined;
  let bestKey: [number, number, number] = [Number.POSITIVE_INFINITY, 0, 0];
  for (const size of rules.sizes) {
    const key: [number, number, number] = [
      round(Math.abs(Math.log(size.width / size.height) - wantRatio)),
      round(Math.abs(Math.log(size.width * size.height) - wantArea)),
      -size.width * size.height,
    ];
    if (best === undefined || lexLess(key, bestKey)) {
      best = size;
      bestKey = key;
    }
  }
  return best ?? square(1024);
}

const round = (v: number): number => Math.round(v * 1e9) / 1e9;

function lexLess(a: readonly number[], b: readonly number[]): boolean {
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x < y;
  }
  return false;
}

/**
 * OpenAI's list prices in US dollars per image, keyed `model`, `model:size`, `model:size:quality` or
 * `model:*:quality` (OPENAI_IMAGE_PRICES uses the same keys and wins). GPT-image "auto" quality has no price:
 * the provider picks the quality, so the cost is unknown. Models not listed (gpt-image-2, compatible servers)
 * have no estimate until the operator gives one.
 */
export const DEFAULT_OPENAI_PRICES: Readonly<Record<string, number>> = Object.freeze({
  "dall-e-2:256x256": 0.016,
  "dall-e-2:512x512": 0.018,
  "dall-e-2:1024x1024": 0.02,
  "dall-e-3:1024x1024:standard": 0.04,
  "dall-e-3:1792x1024:standard": 0.08,
  "dall-e-3:1024x1792:standard": 0.08,
  "dall-e-3:1024x1024:hd": 0.08,
  "dall-e-3:1792x1024:hd": 0.12,
  "dall-e-3:1024x1792:hd": 0.12,
  ...gptImagePrices("gpt-image-1", { low: [0.011, 0.016], medium: [0.042, 0.063], high: [0.167, 0.25] }),
  ...gptImagePrices("gpt-image-1-mini", {
    low: [0.005, 0.006],
    medium: [0.011, 0.015],
    high: [0.036, 0.052],
  }),
  ...gptImagePrices("gpt-image-1.5", { low: [0.009, 0.013], medium: [0.034, 0.05], high: [0.133, 0.2] }),
});

/** Price keys for a GPT-image model: [square, portrait or landscape] per quality. */
function gptImagePrices(model: string, table: Record<string, [number, number]>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [quality, [squarePrice, widePrice]] of Object.entries(table)) {
    out[`${model}:1024x1024:${quality}`] = squarePrice;
    out[`${model}:1536x1024:${quality}`] = widePrice;
    out[`${model}:1024x1536:${quality}`] = widePrice;
  }
  return out;
}

/**
 * The estimated price of one image: the first table with any key for it wins (so the operator's table, given
 * first, beats the built-in one whatever its keys), and within a table the most specific key
 * (`model:size:quality`, `model:*:quality`, `model:size`, `model`); undefined when no table has one.
 */
export function pricePerImage(
  tables: readonly Readonly<Record<string, number>>[],
  model: string,
  size: ImageSize,
  quality: string | undefined,
): number | undefined {
  const s = sizeText(size);
  const keys = [
    ...(quality === undefined ? [] : [`${model}:${s}:${quality}`, `${model}:*:${quality}`]),
    `${model}:${s}`,
    model,
  ];
  for (const prices of tables) {
    for (const key of keys) {
      if (Object.hasOwn(prices, key)) return prices[key];
    }
  }
  return undefined;
}
