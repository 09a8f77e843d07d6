import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { redactSecrets } from "../src/backends/openai/errors.ts";
import { modelRules, nearestSize, pricePerImage, sizeText } from "../src/backends/openai/models.ts";
import {
  OPENAI_NATIVE_SIDE,
  type OpenAiBackendOptions,
  OpenAiImageBackend,
  type OpenAiSettings,
  openAiBackendLimits,
} from "../src/backends/openai/openai-backend.ts";
import { RequestRateLimiter } from "../src/backends/openai/rate-limit.ts";
import { MemorySpendLedger } from "../src/backends/openai/spend.ts";
import { loadConfig } from "../src/config.ts";
import type { BackendCallContext, BackendImage, ImageRequest } from "../src/core/backend.ts";
import { EaselError } from "../src/core/errors.ts";
import { MESSAGES } from "../src/core/messages.ts";
import type { GenerationRequest } from "../src/core/request.ts";
import type { OpenAiGuildCaps } from "../src/core/settings.ts";
import { Store } from "../src/store/index.ts";
import {
  contentPolicy,
  type FakeFile,
  FakeOpenAi,
  makePng,
  pngInfo,
  rateLimited,
  serverError,
} from "./fakes/fake-openai.ts";
import { failure, openAiRequest, untilReal, watch } from "./support.ts";

const BASE_SETTINGS: Omit<OpenAiSettings, "apiKey" | "baseUrl"> = {
  imageModel: "gpt-image-1",
  timeoutMs: 5_000,
  maxRetries: 2,
  maxRequestsPerMinute: 1000,
  concurrency: 4,
  dailyImagesPerUser: 0,
  dailyImagesPerGuild: 0,
  prices: {},
};

let fake: FakeOpenAi;
beforeEach(async () => {
  fake = await FakeOpenAi.start();
});
afterEach(async () => {
  // Spies first (one may wrap a fake timer), then the clock.
  vi.restoreAllMocks();
  vi.useRealTimers();
  expect(fake.rejections()).toEqual([]);
  await fake.close();
});

function setup(settings: Partial<OpenAiSettings> = {}, options: Partial<OpenAiBackendOptions> = {}) {
  const logs: string[] = [];
  const backend = new OpenAiImageBackend({
    settings: { ...BASE_SETTINGS, apiKey: fake.apiKey, baseUrl: fake.baseUrl, ...settings },
    log: (line) => logs.push(line),
    ...options,
  });
  return { backend, logs };
}

const request = openAiRequest;

/**
 * The SDK's timers (its waits before a retry, its per-attempt timeout) on a fake clock; sockets stay real.
 * Returns the delays the SDK itself asked for, in order (fetch's own timers are left out).
 */
function fakeSdkClock(): () => number[] {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
  const fakeSetTimeout = globalThis.setTimeout as (...args: unknown[]) => NodeJS.Timeout;
  const waits: number[] = [];
  vi.spyOn(globalThis, "setTimeout").mockImplementation(((...args: unknown[]) => {
    if (new Error().stack?.includes("/node_modules/openai/")) waits.push(Number(args[1] ?? 0));
    return fakeSetTimeout(...args);
  }) as unknown as typeof setTimeout);
  return () => [...waits];
}

/** A call context whose loader returns `image` (a 1024² PNG by default) and records what was asked. */
function context(
  options: { image?: Uint8Array; signal?: AbortSignal } = {},
): BackendCallContext & { loads: { id: string; as: ImageRequest }[] } {
  const loads: { id: string; as: ImageRequest }[] = [];
  return {
    signal: options.signal ?? new AbortController().signal,
    onProgress: () => {},
    loads,
    loadImage: async (id, as): Promise<BackendImage> => {
      loads.push({ id, as });
      const data = options.image ?? makePng(1024, 1024, [10, 20, 30]);
      const info = pngInfo(data) ?? { width: 0, height: 0 };
      return { format: "png", data, width: info.width, height: info.height, seed: null };
    },
  };
}

const variation = (model: string, extra: Partial<GenerationRequest> = {}) =>
  request({
    model,
    init: { imageId: "img-1", strength: 0.6 },
    parent: { jobId: "job-1", variant: 2, kind: "variation" },
    ...extra,
  });

describe("OpenAI backend: generation", () => {
  it("renders with gpt-image-1 by default: base64 PNGs at the nearest size, no response_format, seed n/a, cost", async () => {
    const { backend } = setup();
    const result = await backend.generate(request({ width: 768, height: 512, count: 2 }), context());
    const [call] = fake.imageCalls();
    expect(fake.imageCalls()).toHaveLength(1);
    expect(call?.endpoint).toBe("generations");
    expect(call?.body).toMatchObject({ model: "gpt-image-1", n: 2, size: "1536x1024", quality: "medium" });
    expect(call?.body).not.toHaveProperty("response_format");
    expect(result.images).toHaveLength(2);
    for (const image of result.images) {
      expect(image).toMatchObject({ format: "png", width: 1536, height: 1024, seed: null });
      expect(pngInfo(image.data)).toEqual({ width: 1536, height: 1024 });
    }
    expect(result.used).toEqual({ width: 1536, height: 1024, model: "gpt-image-1" });
    expect(result.notes.join("\n")).toContain("size 768x512 became 1536x1024");
    expect(result.notes.join("\n")).toContain("seed: n/a");
    expect(result.costUsd).toBeCloseTo(2 * 0.063, 6);
    expect(backend.spendTotals()).toEqual({ images: 2, costUsd: 0.126, unpricedImages: 0 });
  });

  it("takes the configuration's OpenAI settings as they are, and loosens moderation only where NSFW is allowed", async () => {
    const config = loadConfig({ OPENAI_API_KEY: fake.apiKey, OPENAI_BASE_URL: fake.baseUrl });
    const backend = new OpenAiImageBackend({ settings: config.openai, log: () => {} });
    expect(backend.model).toBe("gpt-image-1");
    await backend.generate(request(), context());
    await backend.generate(request({ nsfwAllowed: true }), context());
    const [strict, loose] = fake.imageCalls();
    expect(strict?.body).not.toHaveProperty("moderation");
    expect(loose?.body).toMatchObject({ moderation: "low" });
    expect(strict?.body.user).toMatch(/^[0-9a-f]{32}$/);
    expect(JSON.stringify(strict?.body)).not.toContain("u1");
  });

  it("maps a request's size to each model's nearest supported size", () => {
    const cases: [string, number, number, string][] = [
      ["gpt-image-1", 512, 512, "1024x1024"],
      ["gpt-image-1", 768, 512, "1536x1024"],
      ["gpt-image-1", 512, 768, "1024x1536"],
      ["gpt-image-1", 1024, 576, "1536x1024"],
      ["gpt-image-1", 640, 512, "1536x1024"],
      ["gpt-image-1", 576, 512, "1024x1024"],
      ["dall-e-3", 1024, 576, "1792x1024"],
      ["dall-e-3", 512, 896, "1024x1792"],
      ["dall-e-3", 512, 512, "1024x1024"],
      ["dall-e-2", 256, 256, "256x256"],
      ["dall-e-2", 512, 512, "512x512"],
      ["dall-e-2", 768, 768, "1024x1024"],
      ["dall-e-2", 768, 512, "512x512"],
    ];
    for (const [model, w, h, want] of cases) {
      expect(`${model} ${w}x${h} → ${sizeText(nearestSize(modelRules(model), w, h))}`).toBe(
        `${model} ${w}x${h} → ${want}`,
      );
    }
    expect(OPENAI_NATIVE_SIDE).toBe(1024);
  });

  it("asks dall-e-2 for b64_json in one call of up to 10 images and says it makes squares only", async () => {
    const { backend } = setup({ imageModel: "dall-e-2" });
    const result = await backend.generate(
      request({ model: "dall-e-2", width: 768, height: 512, count: 4 }),
      context(),
    );
    expect(fake.imageCalls().map((c) => c.body)).toEqual([
      expect.objectContaining({ model: "dall-e-2", n: 4, size: "512x512", response_format: "b64_json" }),
    ]);
    expect(fake.imageCalls()[0]?.body).not.toHaveProperty("quality");
    expect(result.images.map((i) => `${i.width}x${i.height}`)).toEqual(Array(4).fill("512x512"));
    expect(result.notes.join("\n")).toContain("256x256, 512x512, 1024x1024");
    expect(result.costUsd).toBeCloseTo(4 * 0.018, 6);
  });

  it("makes one dall-e-3 call per image (n=1 only) and surfaces the revised prompt", async () => {
    const { backend } = setup({ imageModel: "dall-e-3" });
    const result = await backend.generate(
      request({ model: "dall-e-3", width: 1024, height: 576, count: 3 }),
      context(),
    );
    expect(fake.imageCalls()).toHaveLength(3);
    for (const call of fake.imageCalls()) {
      expect(call.body).toMatchObject({
        n: 1,
        size: "1792x1024",
        quality: "standard",
        response_format: "b64_json",
      });
    }
    expect(result.images).toHaveLength(3);
    expect(result.revisedPrompt).toBe("A detailed illustration of a lighthouse in a storm");
    expect(result.costUsd).toBeCloseTo(3 * 0.08, 6);
  });

  it("refuses a prompt over the model's limit before calling the API, and notes an unused negative prompt", async () => {
    const { backend } = setup({ imageModel: "dall-e-2" });
    const err = await failure(
      backend.generate(request({ model: "dall-e-2", prompt: "x".repeat(1001) }), context()),
    );
    expect(err).toMatchObject({ code: "invalid_argument" });
    expect(err.message).toContain("at most 1000");
    expect(fake.imageCalls()).toHaveLength(0);
    const ok = await backend.generate(request({ model: "dall-e-2", negativePrompt: "blurry" }), context());
    expect(ok.notes.join("\n")).toContain("no negative prompt");
  });

  it("returns the images made when a later call of a multi-call job is refused, and counts only those", async () => {
    const { backend } = setup({ imageModel: "dall-e-3" });
    fake.script.push({ kind: "ok" }, contentPolicy());
    const result = await backend.generate(request({ model: "dall-e-3", count: 3 }), context());
    expect(fake.imageCalls()).toHaveLength(2);
    expect(result.images).toHaveLength(1);
    expect(result.notes.join("\n")).toContain("only 1 of 3 images");
    expect(backend.spendTotals().images).toBe(1);
  });
});

describe("OpenAI backend: variations", () => {
  it("varies with dall-e-2 through /images/variations with a square PNG under 4 MB from the loader", async () => {
    const { backend } = setup({ imageModel: "dall-e-2" });
    const ctx = context();
    const result = await backend.generate(variation("dall-e-2", { width: 512, height: 512, count: 2 }), ctx);
    expect(ctx.loads).toEqual([{ id: "img-1", as: { format: "png", square: 1024, maxBytes: 4_000_000 } }]);
    const [call] = fake.imageCalls();
    expect(fake.imageCalls()).toHaveLength(1);
    expect(call?.endpoint).toBe("variations");
    expect(call?.body).toMatchObject({
      model: "dall-e-2",
      n: 2,
      size: "512x512",
      response_format: "b64_json",
    });
    expect(call?.body).not.toHaveProperty("prompt");
    const image = call?.body.image as FakeFile;
    expect(image.type).toBe("image/png");
    expect(pngInfo(image.bytes)).toEqual({ width: 1024, height: 1024 });
    expect(result.images).toHaveLength(2);
    expect(result.notes.join("\n")).toContain("the prompt is not used");
  });

  it("varies with a GPT-image model through /images/edits with the source image and the original prompt", async () => {
    const { backend } = setup();
    const source = makePng(1536, 1024, [200, 100, 50]);
    const ctx = context({ image: source });
    const result = await backend.generate(variation("gpt-image-1", { width: 1536, height: 1024 }), ctx);
    expect(ctx.loads[0]?.as).toEqual({ format: "png", maxBytes: 25_000_000 });
    const [call] = fake.imageCalls();
    expect(call?.endpoint).toBe("edits");
    expect(call?.body).toMatchObject({
      model: "gpt-image-1",
      prompt: "a lighthouse in a storm",
      size: "1536x1024",
    });
    expect(call?.body).not.toHaveProperty("response_format");
    const upload = call?.body.image as FakeFile | undefined;
    expect(pngInfo(upload?.bytes ?? new Uint8Array())).toEqual({ width: 1536, height: 1024 });
    expect(result.images[0]).toMatchObject({ width: 1536, height: 1024 });
  });

  it("refuses a variation image that is not square, or 4 MB or more, before any API call", async () => {
    const { backend } = setup({ imageModel: "dall-e-2" });
    const wide = await failure(
      backend.generate(variation("dall-e-2"), context({ image: makePng(1024, 768, [1, 2, 3]) })),
    );
    expect(wide).toMatchObject({ code: "invalid_argument" });
    expect(wide.message).toContain("square images only; this one is 1024x768");
    const big = new Uint8Array(4_000_001);
    big.set(makePng(1024, 1024, [1, 2, 3]));
    const heavy = await failure(backend.generate(variation("dall-e-2"), context({ image: big })));
    expect(heavy.message).toContain("less than 4 MB");
    const notPng = await failure(
      backend.generate(variation("dall-e-2"), context({ image: new Uint8Array(100) })),
    );
    expect(notPng).toMatchObject({ code: "invalid_argument" });
    expect(fake.imageCalls()).toHaveLength(0);
  });

  it("makes new images from the prompt where the model cannot vary (dall-e-3) and refuses upscales", async () => {
    const { backend } = setup({ imageModel: "dall-e-3" });
    const result = await backend.generate(variation("dall-e-3"), context());
    expect(fake.imageCalls().map((c) => c.endpoint)).toEqual(["generations"]);
    expect(result.notes.join("\n")).toContain("cannot start from an image");
    const upscale = await failure(
      backend.generate(
        variation("dall-e-3", { parent: { jobId: "j", variant: 1, kind: "upscale" } }),
        context(),
      ),
    );
    expect(upscale).toMatchObject({ code: "not_supported" });
  });
});

describe("OpenAI backend: errors", () => {
  it.each(["content_policy_violation", "moderation_blocked"] as const)(
    "turns a %s refusal into content_policy, never retried and not counted",
    async (code) => {
      const { backend } = setup();
      fake.script.push(contentPolicy(code));
      const err = await failure(backend.generate(request(), context()));
      expect(err).toBeInstanceOf(EaselError);
      expect(err).toMatchObject({ code: "content_policy", message: MESSAGES.contentPolicy });
      expect(err.message).toMatch(/^Rejected by the provider's safety system/);
      expect(fake.imageCalls()).toHaveLength(1);
      expect(backend.spendTotals().images).toBe(0);
    },
  );

  it("lets the SDK retry a 429 with Retry-After and a 500, then succeeds", async () => {
    const { backend } = setup({ maxRetries: 2 });
    fake.script.push(rateLimited("0"), serverError(500));
    const result = await backend.generate(request(), context());
    expect(fake.imageCalls().map((c) => c.status)).toEqual([429, 500, 200]);
    expect(result.images).toHaveLength(1);
  });

  it("gives provider_unavailable after the SDK's retries run out, for the engine to retry", async () => {
    const { backend, logs } = setup({ maxRetries: 1 });
    fake.script.push(serverError(503), serverError(503));
    const err = await failure(backend.generate(request(), context()));
    expect(err).toMatchObject({ code: "provider_unavailable" });
    expect(err.message).toContain("tried 2 times");
    expect(fake.imageCalls()).toHaveLength(2);
    expect(logs.join("\n")).toContain("HTTP 503");
  });

  it("does not sleep through a Retry-After longer than the cap", async () => {
    // The clock stands still: a wait before a retry would never end, so settling at all proves there was none.
    const sdkWaits = fakeSdkClock();
    const { backend } = setup({ maxRetries: 2 });
    fake.script.push(rateLimited("3600"));
    const outcome = watch(backend.generate(request(), context()));
    await untilReal(() => outcome.settled, "the refusal");
    expect(outcome.error).toMatchObject({ code: "provider_unavailable" });
    expect(fake.imageCalls()).toHaveLength(1);
    // Only the per-attempt timeout was set (5 s), no wait of the hour or of a backoff.
    expect(sdkWaits()).toEqual([BASE_SETTINGS.timeoutMs]);
  });

  it("times a slow reply out well below the SDK's 10 minutes, after the SDK's retry", async () => {
    // Per attempt 5 s of a fake clock; the fake would answer after a minute of it.
    const sdkWaits = fakeSdkClock();
    const { backend } = setup({ maxRetries: 1 });
    fake.script.push({ kind: "delay", ms: 60_000 }, { kind: "delay", ms: 60_000 });
    const outcome = watch(backend.generate(request(), context()));
    await untilReal(() => fake.imageCalls().length === 1 && sdkWaits().length === 1, "the first attempt");
    await vi.advanceTimersByTimeAsync(BASE_SETTINGS.timeoutMs - 1);
    expect(outcome.settled).toBe(false);
    // The attempt times out; the SDK waits its backoff (under a second for the first retry), then tries again.
    await vi.advanceTimersByTimeAsync(1);
    await untilReal(() => sdkWaits().length === 2, "the SDK's backoff");
    const backoff = sdkWaits()[1] ?? Number.POSITIVE_INFINITY;
    expect(backoff).toBeLessThan(1_000);
    await vi.advanceTimersByTimeAsync(backoff);
    await untilReal(() => fake.imageCalls().length === 2 && sdkWaits().length === 3, "the SDK's retry");
    await vi.advanceTimersByTimeAsync(BASE_SETTINGS.timeoutMs - 1);
    expect(outcome.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await untilReal(() => outcome.settled, "the timeout");
    expect(outcome.error).toMatchObject({ code: "timeout" });
    expect((outcome.error as Error).message).toContain("within 5 s");
    expect(fake.imageCalls()).toHaveLength(2);
  });

  it("stops at once when the engine aborts, even while the SDK waits to retry", async () => {
    // The SDK's 20 s wait is on a fake clock that stands still: the call can only end through the abort.
    const sdkWaits = fakeSdkClock();
    const { backend } = setup();
    const controller = new AbortController();
    fake.script.push(rateLimited("20"));
    const pending = watch(backend.generate(request(), context({ signal: controller.signal })));
    await untilReal(() => sdkWaits().includes(20_000), "the SDK's wait before its retry");
    expect(pending.settled).toBe(false);
    controller.abort(new EaselError("cancelled", MESSAGES.cancelled));
    await untilReal(() => pending.settled, "the cancelled call");
    expect(pending.error).toMatchObject({ code: "cancelled" });
    expect(fake.imageCalls()).toHaveLength(1);

    // And while the request itself hangs, with the reason the engine gave.
    fake.script.push({ kind: "hang" });
    const hanging = new AbortController();
    const second = watch(backend.generate(request(), context({ signal: hanging.signal })));
    await untilReal(() => fake.imageCalls().length === 2, "the hanging request");
    hanging.abort(new EaselError("timeout", "too slow"));
    await untilReal(() => second.settled, "the aborted request");
    expect(second.error).toMatchObject({ code: "timeout", message: "too slow" });
  });

  it("says which variable to fix when the model is gone at request time, without retrying", async () => {
    fake.models.delete("gpt-image-1");
    const { backend } = setup();
    const err = await failure(backend.generate(request(), context()));
    expect(err).toMatchObject({ code: "config" });
    expect(err.message).toContain("OPENAI_IMAGE_MODEL");
    expect(fake.imageCalls()).toHaveLength(1);
  });

  it("never lets the API key into a log line, an error message or a thrown error's JSON", async () => {
    const sentinel = `sk-SENTINEL${Math.random().toString(36).slice(2)}KEY`;
    const output: string[] = [];
    for (const method of ["log", "info", "warn", "error", "debug"] as const) {
      vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
        output.push(args.map((a) => (typeof a === "string" ? a : inspect(a, { depth: 8 }))).join(" "));
      });
    }
    for (const stream of [process.stdout, process.stderr]) {
      const write = stream.write.bind(stream);
      vi.spyOn(stream, "write").mockImplementation(((chunk: unknown, ...rest: unknown[]) => {
        output.push(String(chunk));
        return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
      }) as typeof stream.write);
    }
    const errors: unknown[] = [];
    // The key is wrong: the fake answers 401 and echoes the whole key it got.
    const wrong = new OpenAiImageBackend({
      settings: { ...BASE_SETTINGS, apiKey: sentinel, baseUrl: fake.baseUrl },
    });
    errors.push(await failure(wrong.generate(request(), context())));
    errors.push(await failure(wrong.verify()));
    // The right key, then failures whose texts pass through the redaction.
    fake.apiKey = sentinel;
    const right = new OpenAiImageBackend({
      settings: { ...BASE_SETTINGS, apiKey: sentinel, baseUrl: fake.baseUrl, maxRetries: 0 },
    });
    fake.script.push(
      { kind: "error", status: 400, message: `bad request from key ${sentinel}` },
      serverError(500),
      contentPolicy(),
    );
    for (let i = 0; i < 3; i++) errors.push(await failure(right.generate(request(), context())));
    vi.restoreAllMocks();

    expect(errors.map((e) => (e as EaselError).code)).toEqual([
      "config",
      "config",
      "invalid_argument",
      "provider_unavailable",
      "content_policy",
    ]);
    expect((errors[0] as Error).message).toContain("OPENAI_API_KEY");
    expect(output.join("\n")).toContain("HTTP 401");
    const everything = [
      ...output,
      ...errors.flatMap((e) => [
        String(e),
        (e as Error).stack ?? "",
        JSON.stringify(e),
        JSON.stringify((e as Error).cause ?? null),
        inspect(e, { depth: 10, showHidden: true }),
      ]),
    ].join("\n");
    expect(everything).not.toContain(sentinel);
    expect(everything).not.toContain("SENTINEL");
  });

  it("redacts secrets by value and by shape", () => {
    expect(redactSecrets("key abc-123-xyz here", ["abc-123-xyz"])).toBe("key [redacted] here");
    expect(redactSecrets("Incorrect API key provided: sk-proj-abcdEFGH1234****wxyz.", [])).toBe(
      "Incorrect API key provided: [redacted].",
    );
    expect(redactSecrets("Authorization: Bearer abcdefghijkl", [])).toBe("Authorization: [redacted]");
  });
});

describe("OpenAI backend: start-up check", () => {
  it("passes once for a good key and model, and requests never repeat it", async () => {
    const { backend } = setup();
    expect(await backend.verify()).toEqual({ warnings: [] });
    await backend.generate(request(), context());
    await backend.generate(request(), context());
    expect(fake.calls.filter((c) => c.endpoint === "models")).toHaveLength(1);
  });

  it("fails with an operator error naming OPENAI_API_KEY for a wrong key", async () => {
    const { backend } = setup({ apiKey: "sk-wrong-key-123456" });
    const err = await failure(backend.verify());
    expect(err).toMatchObject({ code: "config" });
    expect(err.message).toMatch(/^OPENAI_API_KEY was refused by 127\.0\.0\.1:\d+/);
  });

  it("fails naming OPENAI_IMAGE_MODEL for a retired model, and warns about a shutdown date", async () => {
    fake.models.delete("dall-e-2");
    const { backend } = setup({ imageModel: "dall-e-2" });
    const err = await failure(backend.verify());
    expect(err).toMatchObject({ code: "config" });
    expect(err.message).toContain("OPENAI_IMAGE_MODEL=dall-e-2 does not exist");
    expect(err.message).toContain("retired");
    fake.shutdownDates["gpt-image-1"] = "2027-01-01";
    const check = await setup().backend.verify();
    expect(check.warnings.join("\n")).toContain("shuts down on 2027-01-01");
  });

  it("only warns when the server cannot be reached, saying so apart from a refused key", async () => {
    const { backend } = setup({ baseUrl: "http://127.0.0.1:1/v1", maxRetries: 0 });
    const check = await backend.verify();
    expect(check.warnings).toHaveLength(1);
    expect(check.warnings[0]).toMatch(
      /^cannot reach OpenAI at 127\.0\.0\.1:1: .+ \(check the network, or OPENAI_BASE_URL\)/,
    );
    expect(check.warnings[0]).not.toContain("OPENAI_API_KEY");
  });

  it("refuses settings that cannot work, naming the variable", () => {
    expect(() => new OpenAiImageBackend({ settings: { ...BASE_SETTINGS } })).toThrow(/OPENAI_API_KEY/);
    expect(() => setup({ quality: "hd" })).toThrow(/OPENAI_IMAGE_QUALITY=hd does not apply to gpt-image-1/);
    expect(() => setup({ imageModel: "dall-e-2", quality: "high" })).toThrow(/OPENAI_IMAGE_QUALITY/);
  });
});

describe("OpenAI backend: rate, caps and cost", () => {
  it("exposes the engine limits: concurrency, requests per minute, a job timeout above the SDK's retries", () => {
    const limits = openAiBackendLimits({ ...BASE_SETTINGS, maxRequestsPerMinute: 7, concurrency: 3 });
    expect(limits).toMatchObject({ concurrency: 3, intervalCap: 7, intervalMs: 60_000 });
    expect(limits.timeoutMs).toBeGreaterThan(BASE_SETTINGS.timeoutMs * (BASE_SETTINGS.maxRetries + 1));
  });

  it("keeps to the requests-per-minute cap across the calls of one job", async () => {
    let now = 1_000_000;
    const waits: number[] = [];
    const { backend } = setup(
      { imageModel: "dall-e-3", maxRequestsPerMinute: 2 },
      {
        now: () => now,
        sleep: async (ms) => {
          waits.push(ms);
          now += ms;
        },
      },
    );
    await backend.generate(request({ model: "dall-e-3", count: 4 }), context());
    expect(fake.imageCalls()).toHaveLength(4);
    // Two requests a minute: the third waits a minute, the fourth goes with it.
    expect(waits).toEqual([60_000]);

    const limiter = new RequestRateLimiter(
      2,
      1000,
      () => now,
      async (ms) => {
        now += ms;
      },
    );
    const signal = new AbortController().signal;
    const start = now;
    for (let i = 0; i < 5; i++) await limiter.acquire(signal);
    expect(now - start).toBe(2000);
  });

  it("refuses past the per-member and per-server daily caps, naming the cap, and resets the next UTC day", async () => {
    let now = Date.parse("2026-08-21T12:00:00Z");
    const ledger = new MemorySpendLedger();
    const { backend } = setup({ dailyImagesPerUser: 3, dailyImagesPerGuild: 4 }, { now: () => now, ledger });
    const as = (userId: string, count: number, workspaceId = "g1") =>
      request({ count, requester: { platform: "discord", workspaceId, channelId: "c", userId } });
    await backend.generate(as("u1", 2), context());
    expect(backend.checkQuota(as("u1", 2))).toContain("1 OpenAI image left today of 3");
    const refused = await failure(backend.generate(as("u1", 2), context()));
    expect(refused).toMatchObject({ code: "limit_reached" });
    expect(refused.message).toContain("of 3 (the daily limit per member)");
    await backend.generate(as("u2", 2), context());
    const server = await failure(backend.generate(as("u3", 1), context()));
    expect(server.message).toContain("used all 4 OpenAI images for today (this server's daily limit)");
    // Direct messages are not one server: only the member cap applies.
    await backend.generate(as("u4", 1, "dm"), context());
    await backend.generate(as("u5", 1, "dm"), context());
    expect(fake.imageCalls()).toHaveLength(4);
    now += 24 * 3600_000;
    expect(backend.checkQuota(as("u1", 3))).toBeUndefined();
    expect(ledger.totals({ workspaceId: "g1" }).images).toBe(4);
    expect(ledger.totals({ userId: "u1" })).toMatchObject({ images: 2 });
  });

  it("counts running jobs against the cap, and does not count images that failed", async () => {
    const { backend } = setup({ dailyImagesPerUser: 2, maxRetries: 0 });
    fake.script.push(serverError(500), { kind: "delay", ms: 200 });
    await failure(backend.generate(request({ count: 2 }), context()));
    expect(backend.checkQuota(request({ count: 2 }))).toBeUndefined();
    const first = backend.generate(request({ count: 2 }), context());
    const second = await failure(backend.generate(request({ count: 1 }), context()));
    expect(second).toMatchObject({ code: "limit_reached" });
    await first;
    expect(backend.spendTotals().images).toBe(2);
  });

  it("applies a guild's lower per-member and per-server caps, naming the limit and the 00:00 UTC reset", async () => {
    const guilds: Record<string, OpenAiGuildCaps> = {
      g1: { openaiDailyImagesPerUser: 2, openaiDailyImagesPerGuild: 3 },
    };
    const { backend } = setup(
      { dailyImagesPerUser: 5, dailyImagesPerGuild: 10 },
      { guildCaps: (requester) => guilds[requester.workspaceId] },
    );
    const as = (userId: string, count: number, workspaceId = "g1") =>
      request({ count, requester: { platform: "discord", workspaceId, channelId: "c", userId } });
    await backend.generate(as("u1", 2), context());
    const member = backend.checkQuota(as("u1", 1));
    expect(member).toBe(
      "You have used all 2 OpenAI images for today (this server's daily limit per member); it resets at 00:00 UTC.",
    );
    const refused = await failure(backend.generate(as("u1", 1), context()));
    expect(refused).toMatchObject({ code: "limit_reached", message: member });
    // The guild's member cap counts what the member made in this guild; elsewhere the operator's cap of 5 holds.
    expect(backend.checkQuota(as("u1", 3, "g2"))).toBeUndefined();
    expect(backend.checkQuota(as("u1", 4, "g2"))).toContain(
      "3 OpenAI images left today of 5 (the daily limit per member)",
    );
    expect(backend.checkQuota(as("u2", 2))).toBe(
      "This server has 1 OpenAI image left today of 3 (the daily limit this server's admins set); this job asks for 2. Ask for fewer images, or wait until 00:00 UTC.",
    );
    // Overrides passed to checkQuota (a guild's settings, at ack time) win over the option's.
    expect(backend.checkQuota(as("u2", 2), { openaiDailyImagesPerGuild: 5 })).toBeUndefined();
    expect(fake.imageCalls()).toHaveLength(1);
  });

  it("turns OpenAI off in a guild whose cap is 0, and keeps the operator's cap above a guild's higher override", async () => {
    const { backend } = setup({ dailyImagesPerUser: 1, dailyImagesPerGuild: 0 });
    const off = backend.checkQuota(request(), { openaiDailyImagesPerGuild: 0 });
    expect(off).toBe(
      "OpenAI images are turned off on this server: its admins set the server's daily limit to 0. Try another backend, or ask an admin.",
    );
    expect(backend.checkQuota(request(), { openaiDailyImagesPerUser: 0 })).toContain(
      "its admins set the daily limit per member to 0",
    );
    // With no operator cap on servers, a guild may still set one.
    expect(backend.checkQuota(request({ count: 2 }), { openaiDailyImagesPerGuild: 1 })).toContain(
      "left today of 1 (the daily limit this server's admins set)",
    );
    // Direct messages have no guild settings: an override given for one is ignored.
    const dm = request({
      requester: { platform: "discord", workspaceId: "dm", channelId: "d", userId: "u9" },
    });
    expect(backend.checkQuota(dm, { openaiDailyImagesPerGuild: 0 })).toBeUndefined();
    // An override above the operator's cap (saved before the operator lowered it) counts as the operator's.
    await backend.generate(request(), context());
    expect(backend.checkQuota(request(), { openaiDailyImagesPerUser: 50 })).toContain(
      "used the 1 OpenAI image for today (the daily limit per member)",
    );
  });

  it("keeps the day's counts and cost in the store's ledger across a restart", async () => {
    const dir = mkdtempSync(join(tmpdir(), "easel-openai-spend-"));
    try {
      const now = () => Date.parse("2026-08-21T12:00:00Z");
      const first = Store.open(dir);
      const before = setup({ dailyImagesPerUser: 2 }, { now, ledger: first.spend }).backend;
      await before.generate(request({ count: 2 }), context());
      first.close();
      const second = Store.open(dir);
      try {
        const after = setup({ dailyImagesPerUser: 2 }, { now, ledger: second.spend }).backend;
        expect(after.checkQuota(request())).toContain("used all 2 OpenAI images for today");
        expect(after.spendTotals({ userId: "u1", fromDay: "2026-08-21" })).toEqual({
          images: 2,
          costUsd: 0.084,
          unpricedImages: 0,
        });
        expect(after.topSpenders({ workspaceId: "g1" }, 5)).toEqual([
          { platform: "discord", userId: "u1", images: 2, costUsd: 0.084, unpricedImages: 0 },
        ]);
      } finally {
        second.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("prices each image by model, size and quality, with configuration overriding the table", async () => {
    const hd = { width: 1024, height: 1024 };
    expect(pricePerImage([{ "dall-e-3:1024x1024:hd": 0.08 }], "dall-e-3", hd, "hd")).toBe(0.08);
    expect(
      pricePerImage([{ "dall-e-3": 0.5 }, { "dall-e-3:1024x1024:hd": 0.08 }], "dall-e-3", hd, "hd"),
    ).toBe(0.5);
    const overridden = setup({ prices: { "gpt-image-1:*:medium": 0.05 } }).backend;
    expect((await overridden.generate(request(), context())).costUsd).toBe(0.05);
    // "auto": priced by the quality the provider reports (the fake reports high).
    const auto = setup({ quality: "auto" }).backend;
    const result = await auto.generate(request(), context());
    expect(result.costUsd).toBe(0.167);
    expect(result.notes).toContain("quality: high");
    // A model with no price (an OpenAI-compatible server's own): no estimate, and a note saying how to add one.
    fake.models.add("flux-schnell");
    const compatible = setup({ imageModel: "flux-schnell" }).backend;
    const unpriced = await compatible.generate(request({ model: "flux-schnell" }), context());
    expect(unpriced.costUsd).toBeUndefined();
    expect(unpriced.notes.join("\n")).toContain("set OPENAI_IMAGE_PRICES");
    expect(fake.imageCalls().at(-1)?.body).toMatchObject({ response_format: "b64_json" });
    expect(compatible.spendTotals()).toEqual({ images: 1, costUsd: 0, unpricedImages: 1 });
  });
});
