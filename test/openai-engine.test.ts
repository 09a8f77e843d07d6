import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  OpenAiImageBackend,
  type OpenAiSettings,
  openAiBackendLimits,
} from "../src/backends/openai/openai-backend.ts";
import { Engine, type EngineEvents, type EngineLimits } from "../src/core/engine.ts";
import type { GenerationRequest } from "../src/core/request.ts";
import { encodeJobImages } from "../src/render/encode-job.ts";
import { readPngText } from "../src/render/png.ts";
import { prepareImage } from "../src/render/prepare-image.ts";
import { SqliteEngineStore } from "../src/store/engine-store.ts";
import { Store } from "../src/store/index.ts";
import { contentPolicy, type FakeFile, FakeOpenAi, pngInfo, serverError } from "./fakes/fake-openai.ts";
import { openAiRequest } from "./support.ts";

/**
 * The OpenAI backend under the real engine, SQLite store, image loader (sharp) and encoder, against the fake
 * OpenAI server: what a member sees end to end.
 */

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(settings: Partial<OpenAiSettings> = {}, limits: Partial<EngineLimits> = {}) {
  const fake = await FakeOpenAi.start();
  cleanups.push(() => fake.close());
  const dir = mkdtempSync(join(tmpdir(), "easel-openai-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const store = Store.open(dir);
  cleanups.push(() => store.close());
  const fullSettings: OpenAiSettings = {
    apiKey: fake.apiKey,
    baseUrl: fake.baseUrl,
    imageModel: "gpt-image-1",
    timeoutMs: 5_000,
    maxRetries: 1,
    maxRequestsPerMinute: 1000,
    concurrency: 2,
    dailyImagesPerUser: 0,
    dailyImagesPerGuild: 0,
    prices: {},
    ...settings,
  };
  const logs: string[] = [];
  const backend = new OpenAiImageBackend({ settings: fullSettings, log: (line) => logs.push(line) });
  const engine = new Engine({
    store: new SqliteEngineStore(store),
    backends: { openai: backend },
    backendLimits: { openai: openAiBackendLimits(fullSettings) },
    encoder: encodeJobImages,
    loadImage: async (id, as) => prepareImage(await store.images.readImage(id), id, as),
    limits,
  });
  cleanups.push(() => engine.stop(0));
  const events: { [K in keyof EngineEvents]: EngineEvents[K][0][] } = {
    resumed: [],
    queued: [],
    started: [],
    progress: [],
    done: [],
    failed: [],
    cancelled: [],
  };
  for (const name of Object.keys(events) as (keyof EngineEvents)[]) {
    (engine.on as (event: string, listener: (e: unknown) => void) => Engine)(name, (e) => {
      (events[name] as unknown[]).push(e);
    });
  }
  await engine.start();
  return { fake, store, engine, events, backend, logs };
}

function request(prompt: string, extra: Partial<GenerationRequest> = {}): GenerationRequest {
  return openAiRequest({ seed: 7, prompt, ...extra });
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("OpenAI backend through the engine", () => {
  it("stores PNGs that carry their settings with Seed n/a, at the provider's size, with the revised prompt", async () => {
    const { engine, events, store, fake } = await setup({ imageModel: "dall-e-3" });
    const submitted = engine.submit(
      "e1",
      request("a red fox", { model: "dall-e-3", width: 1024, height: 576 }),
    );
    expect(submitted.ok).toBe(true);
    await until(() => events.done.length === 1, "the job to render");
    const done = events.done[0];
    expect(done?.revisedPrompt).toBe("A detailed illustration of a red fox");
    expect(done?.notes.join("\n")).toContain("became 1792x1024");
    expect(done?.images).toHaveLength(1);
    const image = done?.images[0];
    expect(image).toMatchObject({ width: 1792, height: 1024, seed: null });
    const parameters = readPngText(image?.png ?? new Uint8Array()).parameters ?? "";
    expect(parameters).toContain("Seed: n/a");
    expect(parameters).toContain("Model: dall-e-3");
    expect(store.jobs.getJob(done?.job.id ?? "")?.state).toBe("rendered");
    expect(fake.rejections()).toEqual([]);
  });

  it("varies a stored image with dall-e-2: the engine's loader sends a square PNG under 4 MB", async () => {
    const { engine, events, fake } = await setup({ imageModel: "dall-e-2" });
    engine.submit("e1", request("a tall tower", { model: "dall-e-2", width: 512, height: 512 }));
    await until(() => events.done.length === 1, "the first job");
    const source = events.done[0]?.images[0];
    if (!source) throw new Error("no image");
    engine.submit(
      "e2",
      request("a tall tower", {
        model: "dall-e-2",
        width: 512,
        height: 512,
        count: 2,
        init: { imageId: source.id, strength: 0.7 },
        parent: { jobId: events.done[0]?.job.id ?? "", variant: 1, kind: "variation" },
      }),
    );
    await until(() => events.done.length === 2, "the variation");
    const call = fake.imageCalls().find((c) => c.endpoint === "variations");
    const upload = call?.body.image as FakeFile | undefined;
    expect(upload?.type).toBe("image/png");
    expect(pngInfo(upload?.bytes ?? new Uint8Array())).toEqual({ width: 1024, height: 1024 });
    expect(upload?.bytes.length ?? Number.POSITIVE_INFINITY).toBeLessThan(4_000_000);
    // Two variants and the grid.
    expect(events.done[1]?.images.map((i) => i.variant)).toEqual([0, 1, 2]);
    expect(fake.rejections()).toEqual([]);
  });

  it("fails a content-policy refusal at once with the safety message, one API call, no retry", async () => {
    const { engine, events, fake } = await setup({}, { maxAttempts: 3 });
    fake.script.push(contentPolicy("moderation_blocked"));
    engine.submit("e1", request("something not allowed"));
    await until(() => events.failed.length === 1, "the failure");
    expect(events.failed[0]).toMatchObject({ code: "content_policy" });
    expect(events.failed[0]?.message).toContain("safety system");
    expect(fake.imageCalls()).toHaveLength(1);
    expect(events.queued.filter((e) => e.retry)).toHaveLength(0);
  });

  it("retries 5xx in the SDK, then in the engine up to its cap, with a status the member can see", async () => {
    const { engine, events, fake } = await setup({ maxRetries: 1 }, { maxAttempts: 2 });
    for (let i = 0; i < 4; i++) fake.script.push(serverError(502));
    engine.submit("e1", request("a flaky day"));
    await until(() => events.failed.length === 1, "the failure");
    // Two engine attempts × (one call + one SDK retry).
    expect(fake.imageCalls().map((c) => c.status)).toEqual([502, 502, 502, 502]);
    expect(events.queued.some((e) => e.retry)).toBe(true);
    expect(events.failed[0]).toMatchObject({ code: "provider_unavailable" });
    expect(events.failed[0]?.message).toContain("HTTP 502");
  });

  it("succeeds on the engine's retry after the SDK's retries ran out", async () => {
    const { engine, events, fake } = await setup({ maxRetries: 0 }, { maxAttempts: 3 });
    fake.script.push(serverError(500));
    engine.submit("e1", request("second time lucky"));
    await until(() => events.done.length === 1, "the job");
    expect(fake.imageCalls().map((c) => c.status)).toEqual([500, 200]);
  });

  it("fails a job over the daily cap with the reason, without calling the API", async () => {
    const { engine, events, fake, backend, store } = await setup({ dailyImagesPerUser: 2 });
    engine.submit("e1", request("first", { count: 2 }));
    await until(() => events.done.length === 1, "the first job");
    expect(store.jobs.getJob(events.done[0]?.job.id ?? "")?.costUsd).toBe(0.084);
    expect(backend.checkQuota(request("second"))).toContain("used all 2 OpenAI images");
    engine.submit("e2", request("second"));
    await until(() => events.failed.length === 1, "the refusal");
    expect(events.failed[0]).toMatchObject({ code: "limit_reached" });
    expect(events.failed[0]?.message).toContain("daily limit per member");
    expect(fake.imageCalls()).toHaveLength(1);
    expect(backend.spendTotals({ userId: "u1" })).toEqual({ images: 2, costUsd: 0.084, unpricedImages: 0 });
  });
});
