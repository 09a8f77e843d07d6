import { createHash } from "node:crypto";
import type OpenAI from "openai";
import { toFile, type Uploadable } from "openai";
import type { ImagesResponse } from "openai/resources/images";
import type {
  BackendCallContext,
  BackendImage,
  BackendResult,
  ImageBackend,
  ImageRequest,
} from "../../core/backend.ts";
import type { BackendLimits } from "../../core/engine.ts";
import { EaselError, isEaselError } from "../../core/errors.ts";
import { OPENAI_MESSAGES, OPENAI_NOTES, OPENAI_SETUP_TEXT } from "../../core/messages.ts";
import type { GenerationRequest, Requester } from "../../core/request.ts";
import type { OpenAiGuildCaps } from "../../core/settings.ts";
import { defaultLogger } from "../../logging/logger.ts";
import { createOpenAiClient, DEFAULT_OPENAI_BASE_URL, type FetchLike, MAX_RETRY_AFTER_MS } from "./client.ts";
import { describeFailure, type OpenAiErrorContext, translateOpenAiError } from "./errors.ts";
import {
  DEFAULT_OPENAI_PRICES,
  type ImageSize,
  modelRules,
  nearestSize,
  type OpenAiModelRules,
  pricePerImage,
  sizeText,
} from "./models.ts";
import { abortReason, RequestRateLimiter, raceAbort } from "./rate-limit.ts";
import {
  DailyImageQuota,
  MemorySpendLedger,
  type SpenderTotals,
  type SpendLedger,
  type SpendQuery,
  type SpendTotals,
} from "./spend.ts";
import { checkOpenAiSetup, type SetupCheck } from "./startup-check.ts";

/**
 * The OpenAI images API as an engine backend: generations, variations (dall-e-2's variations endpoint, the
 * GPT-image models' edit endpoint), per-model sizes and image counts, base64 PNGs, errors translated once,
 * a per-request rate cap, daily image caps and a cost estimate per job. Sharp is not needed here: the engine's
 * loader converts source images (`context.loadImage`) and its encoder re-encodes the results.
 */

/** The backend's settings: the `openai` part of src/config.ts's Config has this shape. */
export interface OpenAiSettings {
  apiKey?: string;
  baseUrl?: string;
  imageModel: string;
  /** Milliseconds one request attempt may take (OPENAI_TIMEOUT_MS). */
  timeoutMs: number;
  /** The SDK's retries of 429 / 5xx / timeouts (OPENAI_MAX_RETRIES). */
  maxRetries: number;
  /** Requests per minute to the API (OPENAI_MAX_RPM): the engine's rate cap for this backend. */
  maxRequestsPerMinute: number;
  /** Jobs rendering at once (OPENAI_CONCURRENCY). */
  concurrency: number;
  /** Quality asked for (OPENAI_IMAGE_QUALITY); the model's default when unset. */
  quality?: string;
  /** Images per member per UTC day; 0: no cap (OPENAI_DAILY_IMAGES_PER_USER). */
  dailyImagesPerUser: number;
  /** Images per Discord server / Slack workspace per UTC day; 0: no cap (OPENAI_DAILY_IMAGES_PER_GUILD). */
  dailyImagesPerGuild: number;
  /** Price overrides over DEFAULT_OPENAI_PRICES, US dollars per image by `model[:size|*[:quality]]` (OPENAI_IMAGE_PRICES). */
  prices: Readonly<Record<string, number>>;
}

/** Everything besides settings; tests inject the clock, fetch and the ledger. */
export interface OpenAiBackendOptions {
  settings: OpenAiSettings;
  /** Where images and cost are counted: the store's `spend` in production; in memory when left out (lost on restart). */
  ledger?: SpendLedger;
  /**
   * The requester's guild cap overrides (GuildSettings.openaiDailyImagesPerUser / PerGuild), read when a job
   * starts so that `generate` holds the same caps `checkQuota` refused by; none when left out.
   */
  guildCaps?: (requester: Requester) => OpenAiGuildCaps | undefined;
  /** Operator log lines, already redacted (the sink redacts too); src/logging's default sink when left out. */
  log?: (line: string) => void;
  now?: () => number;
  fetch?: FetchLike;
  /** Waits of the request rate limiter (tests pass a fake). */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  maxRetryAfterMs?: number;
}

/** The side a request's default size should have for OpenAI models (every model makes 1024² images). */
export const OPENAI_NATIVE_SIDE = 1024;

/** Images per job at most (HARD_LIMITS.maxCount), for the job timeout. */
const MAX_IMAGES_PER_JOB = 4;

/** A PNG file's first eight bytes. */
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Width and height from a PNG's IHDR chunk; undefined when `bytes` is not a PNG. */
export function pngSize(bytes: Uint8Array): ImageSize | undefined {
  if (bytes.length < 24 || PNG_SIGNATURE.some((b, i) => bytes[i] !== b)) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

/**
 * The engine's limits for this backend from the settings: concurrency, the requests-per-minute cap (the
 * engine's cap on job starts, intervalCap per intervalMs), and a job timeout long enough for the SDK's own
 * retries of every request a job makes.
 */
export function openAiBackendLimits(
  settings: OpenAiSettings,
): Pick<BackendLimits, "concurrency" | "intervalCap" | "intervalMs" | "timeoutMs"> {
  const rules = modelRules(settings.imageModel);
  const calls = Math.ceil(MAX_IMAGES_PER_JOB / rules.maxImagesPerCall);
  const perCall = settings.timeoutMs * (settings.maxRetries + 1) + MAX_RETRY_AFTER_MS * settings.maxRetries;
  return {
    concurrency: settings.concurrency,
    intervalCap: settings.maxRequestsPerMinute,
    intervalMs: 60_000,
    // One rate-limit window on top: a job may wait for a free request slot.
    timeoutMs: calls * perCall + 60_000,
  };
}

/** Which endpoint a job uses. */
type Mode = "generations" | "variations" | "edits";

/** The OpenAI images backend (see the module comment). */
export class OpenAiImageBackend implements ImageBackend {
  readonly name = "openai" as const;
  private readonly settings: OpenAiSettings;
  private readonly client: OpenAI;
  private readonly ledger: SpendLedger;
  private readonly quota: DailyImageQuota;
  private readonly guildCaps: (requester: Requester) => OpenAiGuildCaps | undefined;
  private readonly limiter: RequestRateLimiter;
  /** The operator's prices first, then the built-in table. */
  private readonly prices: readonly Readonly<Record<string, number>>[];
  private readonly log: (line: string) => void;
  private readonly now: () => number;
  private readonly host: string;
  private readonly apiKey: string;

  /** Throws a "config" EaselError naming the variable when the settings cannot work. */
  constructor(options: OpenAiBackendOptions) {
    const { settings } = options;
    if (!settings.apiKey) throw new EaselError("config", OPENAI_SETUP_TEXT.noKey);
    this.apiKey = settings.apiKey;
    const rules = modelRules(settings.imageModel);
    if (settings.quality !== undefined && !rules.qualities.includes(settings.quality)) {
      throw new EaselError(
        "config",
        rules.qualities.length === 0
          ? OPENAI_SETUP_TEXT.qualityNotApplicable(settings.quality, settings.imageModel)
          : OPENAI_SETUP_TEXT.qualityNotTaken(settings.quality, settings.imageModel, rules.qualities),
      );
    }
    this.settings = settings;
    this.now = options.now ?? Date.now;
    const log = options.log ?? defaultLogger().log;
    this.log = log;
    this.host = hostOf(settings.baseUrl ?? DEFAULT_OPENAI_BASE_URL);
    this.client = createOpenAiClient({
      apiKey: settings.apiKey,
      ...(settings.baseUrl === undefined ? {} : { baseUrl: settings.baseUrl }),
      timeoutMs: settings.timeoutMs,
      maxRetries: settings.maxRetries,
      log,
      ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
      ...(options.maxRetryAfterMs === undefined ? {} : { maxRetryAfterMs: options.maxRetryAfterMs }),
    });
    this.ledger = options.ledger ?? new MemorySpendLedger();
    this.guildCaps = options.guildCaps ?? (() => undefined);
    this.quota = new DailyImageQuota(
      this.ledger,
      { perUser: settings.dailyImagesPerUser, perGuild: settings.dailyImagesPerGuild },
      this.now,
    );
    this.limiter = new RequestRateLimiter(settings.maxRequestsPerMinute, 60_000, this.now, options.sleep);
    this.prices = [settings.prices, DEFAULT_OPENAI_PRICES];
  }

  /** The configured model (OPENAI_IMAGE_MODEL), for the request catalog. */
  get model(): string {
    return this.settings.imageModel;
  }

  /**
   * The start-up check, run once by main: the key is accepted and the model exists. Throws a "config"
   * EaselError naming OPENAI_API_KEY or OPENAI_IMAGE_MODEL; an unreachable server is only a warning.
   */
  verify(): Promise<SetupCheck> {
    return checkOpenAiSetup(this.client, this.errorContext(this.settings.imageModel));
  }

  /**
   * Why this request would pass a daily cap (for a refusal at ack time, before the job is queued): a sentence
   * from MESSAGES naming the limit and that it resets at 00:00 UTC; undefined when it fits. `guildCaps` are
   * the guild's overrides (its GuildSettings will do); left out, the `guildCaps` option's. `generate` checks
   * again when the job starts, counting jobs that are running.
   */
  checkQuota(
    request: Pick<GenerationRequest, "count"> & { requester: Requester },
    guildCaps?: OpenAiGuildCaps,
  ): string | undefined {
    return this.quota.check(request.requester, request.count, guildCaps ?? this.guildCaps(request.requester));
  }

  /** Images and estimated cost so far, for an admin (in memory unless a ledger was given). */
  spendTotals(query: SpendQuery = {}): SpendTotals {
    return this.ledger.totals(query);
  }

  /** The members who spent most under `query`, at most `limit` (for an admin's spend view). */
  topSpenders(query: SpendQuery = {}, limit = 10): SpenderTotals[] {
    return this.ledger.topSpenders(query, limit);
  }

  async generate(request: GenerationRequest, context: BackendCallContext): Promise<BackendResult> {
    const startedAt = this.now();
    const { signal } = context;
    if (signal.aborted) throw abortReason(signal);
    const model = request.model;
    const rules = modelRules(model);
    const notes: string[] = [];
    const say = OPENAI_MESSAGES;
    const note = OPENAI_NOTES;

    const chars = [...request.prompt].length;
    if (chars > rules.maxPromptChars)
      throw new EaselError("invalid_argument", say.promptTooLong(chars, model, rules.maxPromptChars));
    if (request.negativePrompt) notes.push(note.noNegativePrompt);
    const size = nearestSize(rules, request.width, request.height);
    if (size.width !== request.width || size.height !== request.height)
      notes.push(
        note.sizeChanged(
          sizeText({ width: request.width, height: request.height }),
          sizeText(size),
          model,
          sizesList(rules),
        ),
      );
    const quality = this.qualityFor(rules);

    let mode: Mode = "generations";
    if (request.init) {
      if (request.parent?.kind === "upscale") throw new EaselError("not_supported", say.cannotUpscale);
      if (rules.variation === "none") notes.push(note.noInitImage(model));
      else mode = rules.variation;
      if (mode === "variations") notes.push(note.variationIgnoresPrompt(model));
    }

    const reservation = this.quota.reserve(
      request.requester,
      request.count,
      this.guildCaps(request.requester),
    );
    try {
      // The source image is converted, and refused with a reason, before any request is made.
      const source = mode === "generations" ? undefined : await this.sourceImage(request, rules, context);
      const images: BackendImage[] = [];
      let revisedPrompt: string | undefined;
      let costUsd: number | undefined = 0;
      let reported: { size?: string; quality?: string } = {};
      let failure: EaselError | undefined;
      for (let left = request.count; left > 0; ) {
        const n = Math.min(left, rules.maxImagesPerCall);
        left -= n;
        let response: ImagesResponse;
        try {
          await this.limiter.acquire(signal);
          response = await raceAbort(
            this.call(mode, request, rules, size, quality, n, source, signal),
            signal,
          );
        } catch (err) {
          if (signal.aborted) throw abortReason(signal);
          failure = this.translate(err, model, mode);
          break;
        }
        const made = this.readImages(response, size);
        const price = pricePerImage(this.prices, model, size, response.quality ?? quality);
        costUsd = costUsd === undefined || price === undefined ? undefined : costUsd + price * made.length;
        reservation.commit(made.length, model, price === undefined ? undefined : price * made.length);
        images.push(...made);
        revisedPrompt ??= response.data?.find((d) => d.revised_prompt)?.revised_prompt;
        reported = { ...reported, ...pick(response) };
        if (made.length < n) notes.push(note.fewerImages(made.length, n));
      }
      if (failure) {
        if (images.length === 0) throw failure;
        notes.push(note.partial(images.length, request.count, failure.message));
      }
      if (images.length === 0) throw new EaselError("provider_unavailable", say.noImage);

      const first = images[0] ?? { width: size.width, height: size.height };
      if (reported.size && reported.size !== sizeText(size))
        notes.push(note.otherSize(reported.size, sizeText(size)));
      if (reported.quality && reported.quality !== quality) notes.push(note.quality(reported.quality));
      notes.push(note.noSeed);
      notes.push(costUsd === undefined ? note.noPrice(model) : note.estimatedCost(costUsd));
      return {
        images,
        notes,
        used: { width: first.width, height: first.height, model },
        ...(revisedPrompt ? { revisedPrompt } : {}),
        ...(costUsd === undefined ? {} : { costUsd: Math.round(costUsd * 1e6) / 1e6 }),
        renderMs: Math.max(0, this.now() - startedAt),
      };
    } finally {
      reservation.release();
    }
  }

  /** The quality to ask for: the configured one where the model takes it, else the model's default. */
  private qualityFor(rules: OpenAiModelRules): string | undefined {
    const wanted = this.settings.quality;
    return wanted !== undefined && rules.qualities.includes(wanted) ? wanted : rules.defaultQuality;
  }

  /** The source image for a variation or an edit, as the model takes it, checked before it is sent. */
  private async sourceImage(
    request: GenerationRequest,
    rules: OpenAiModelRules,
    context: BackendCallContext,
  ): Promise<Uploadable> {
    const imageId = request.init?.imageId ?? "";
    const as: ImageRequest = rules.squareSource
      ? { format: "png", square: 1024, maxBytes: rules.maxSourceBytes }
      : { format: "png", maxBytes: rules.maxSourceBytes };
    const image = await context.loadImage(imageId, as);
    const dims = pngSize(image.data);
    const model = request.model;
    if (!dims) throw new EaselError("invalid_argument", OPENAI_MESSAGES.sourceNotPng(model));
    if (rules.squareSource && dims.width !== dims.height)
      throw new EaselError(
        "invalid_argument",
        OPENAI_MESSAGES.sourceNotSquare(model, dims.width, dims.height),
      );
    if (image.data.length >= rules.maxSourceBytes)
      throw new EaselError(
        "invalid_argument",
        OPENAI_MESSAGES.sourceTooLarge(image.data.length, model, rules.maxSourceBytes),
      );
    return toFile(image.data, "image.png", { type: "image/png" });
  }

  /** One API request for `n` images. */
  private call(
    mode: Mode,
    request: GenerationRequest,
    rules: OpenAiModelRules,
    size: ImageSize,
    quality: string | undefined,
    n: number,
    source: Uploadable | undefined,
    signal: AbortSignal,
  ): Promise<ImagesResponse> {
    const common = {
      model: request.model,
      n,
      ...(rules.sendsResponseFormat ? { response_format: "b64_json" as const } : {}),
      user: endUserId(request.requester),
    };
    const options = { signal };
    if (mode === "variations" && source) {
      return this.client.images.createVariation(
        { ...common, image: source, size: sizeText(size) as "256x256" | "512x512" | "1024x1024" },
        options,
      );
    }
    const withPrompt = { ...common, prompt: request.prompt, size: sizeText(size) };
    if (mode === "edits" && source) {
      return this.client.images.edit(
        {
          ...withPrompt,
          image: source,
          ...(quality === undefined ? {} : { quality: quality as "low" | "medium" | "high" | "auto" }),
        },
        options,
      );
    }
    return this.client.images.generate(
      {
        ...withPrompt,
        ...(quality === undefined
          ? {}
          : { quality: quality as "standard" | "hd" | "low" | "medium" | "high" | "auto" }),
        // The GPT-image models filter less strictly where the channel allows NSFW output; never off.
        ...(rules.family === "gpt-image" && request.nsfwAllowed ? { moderation: "low" as const } : {}),
      },
      options,
    );
  }

  /** The images of one response, decoded from base64; a server that sends links is refused. */
  private readImages(response: ImagesResponse, asked: ImageSize): BackendImage[] {
    const out: BackendImage[] = [];
    for (const item of response.data ?? []) {
      if (typeof item.b64_json !== "string") {
        throw new EaselError("not_supported", OPENAI_MESSAGES.imageLinks(this.host));
      }
      const data = new Uint8Array(Buffer.from(item.b64_json, "base64"));
      const dims = pngSize(data) ?? parseSize(response.size) ?? asked;
      out.push({ format: "png", data, width: dims.width, height: dims.height, seed: null });
    }
    return out;
  }

  private errorContext(model: string): OpenAiErrorContext {
    return {
      model,
      host: this.host,
      timeoutMs: this.settings.timeoutMs,
      maxRetries: this.settings.maxRetries,
      secrets: [this.apiKey],
    };
  }

  /** Translates an SDK failure and logs one redacted line for the operator. */
  private translate(err: unknown, model: string, mode: Mode): EaselError {
    const translated = translateOpenAiError(err, this.errorContext(model));
    if (!isEaselError(err)) {
      const cause = translated.cause as Parameters<typeof describeFailure>[0] | undefined;
      this.log(
        `openai: ${mode} with ${model} failed (${translated.code}): ${cause ? describeFailure(cause) : translated.message}`,
      );
    }
    return translated;
  }
}

/** The model's sizes, smallest first, for notes. */
const sizesList = (rules: OpenAiModelRules): string =>
  [...rules.sizes]
    .sort((a, b) => a.width * a.height - b.width * b.height || b.width - a.width)
    .map(sizeText)
    .join(", ");

/** What a response reports about the images besides the data. */
function pick(response: ImagesResponse): { size?: string; quality?: string } {
  return {
    ...(response.size ? { size: response.size } : {}),
    ...(response.quality ? { quality: response.quality } : {}),
  };
}

function parseSize(text: string | undefined): ImageSize | undefined {
  const match = /^(\d+)x(\d+)$/.exec(text ?? "");
  return match ? { width: Number(match[1]), height: Number(match[2]) } : undefined;
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return OPENAI_MESSAGES.unnamedHost;
  }
}

/**
 * The `user` field OpenAI asks for to trace abuse to an end user: a hash, so no platform id leaves easel, but
 * the same member always gives the same value.
 */
function endUserId(requester: Requester): string {
  return createHash("sha256").update(`${requester.platform}:${requester.userId}`).digest("hex").slice(0, 32);
}
