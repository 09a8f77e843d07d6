import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  type BackendLimits,
  Engine,
  type EngineEvents,
  type EngineLimits,
  STOP_ABORT_WAIT_MS,
  type SubmitResult,
} from "../src/core/engine.ts";
import { EaselError } from "../src/core/errors.ts";
import { encodeJobImages } from "../src/render/encode-job.ts";
import { prepareImage } from "../src/render/prepare-image.ts";
import { SqliteEngineStore } from "../src/store/engine-store.ts";
import { Store } from "../src/store/index.ts";
import { FakeBackend } from "./fakes/fake-backend.ts";
import { openAiRequest } from "./support.ts";

/**
 * Admission: a job leaves the fair queue only when its backend can start it now (concurrency and the rate
 * cap), so every unfinished job is counted, shown and cancellable, and stop() always returns. The clock is
 * vitest's fake one (the engine reads Date.now, which it fakes); nothing here waits for real time.
 */

const MINUTE = 60_000;
/** OPENAI_MAX_RPM 2 with OPENAI_CONCURRENCY 4: the rate cap binds before the concurrency does. */
const RATE_CAPPED: Partial<BackendLimits> = {
  concurrency: 4,
  intervalCap: 2,
  intervalMs: MINUTE,
  timeoutMs: 10 * MINUTE,
  msPerUnit: 1_000,
};

const dirs: string[] = [];
const stores: Store[] = [];
const engines: Engine[] = [];

beforeEach(() => {
  vi.useFakeTimers({ now: new Date("2025-01-01T00:00:00Z") });
});

afterEach(async () => {
  for (const engine of engines.splice(0)) {
    const stopped = engine.stop(0);
    await vi.advanceTimersByTimeAsync(STOP_ABORT_WAIT_MS);
    await stopped;
  }
  vi.useRealTimers();
  for (const s of stores.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

type Recorded = { [K in keyof EngineEvents]: EngineEvents[K][0][] };

async function setup(
  options: { limits?: Partial<EngineLimits>; dir?: string; backend?: FakeBackend } = {},
): Promise<{ engine: Engine; backend: FakeBackend; store: Store; events: Recorded; dir: string }> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), "easel-admission-"));
  if (!dirs.includes(dir)) dirs.push(dir);
  const store = Store.open(dir);
  stores.push(store);
  const backend = options.backend ?? new FakeBackend("openai");
  const engine = new Engine({
    store: new SqliteEngineStore(store),
    backends: { openai: backend },
    backendLimits: { openai: RATE_CAPPED },
    encoder: encodeJobImages,
    loadImage: async (id, as) => prepareImage(await store.images.readImage(id), id, as),
    ...(options.limits ? { limits: options.limits } : {}),
  });
  engines.push(engine);
  const events: Recorded = {
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
  return { engine, backend, store, events, dir };
}

function submit(engine: Engine, prompt: string, userId = prompt): Extract<SubmitResult, { ok: true }> {
  const result = engine.submit(`ev-${prompt}`, openAiRequest({ prompt, requester: requester(userId) }));
  if (!result.ok) throw new Error(`${prompt} refused: ${result.message}`);
  return result;
}

const requester = (userId: string) => ({
  platform: "discord" as const,
  workspaceId: "g1",
  channelId: "c1",
  userId,
});

describe("engine admission under a rate cap below the concurrency", () => {
  it("keeps the third job queued with a position and an ETA for when the window frees, behind the queue ahead", async () => {
    const { engine, backend, store } = await setup();
    submit(engine, "j1");
    submit(engine, "j2");
    await vi.advanceTimersByTimeAsync(10_000);
    const third = submit(engine, "j3");
    const fourth = submit(engine, "j4");
    const fifth = submit(engine, "j5");
    expect(backend.started).toEqual(["j1", "j2"]);
    expect(store.jobs.getJob(third.job.id)?.state).toBe("queued");
    // j1 and j2 started at 0 s: two starts free up at 60 s (j3, j4), the next two at 120 s (j5). Each job's
    // ETA is its start plus its own expected render time (1 s here).
    expect(third.position).toBe(1);
    expect(third.etaMs).toBe(MINUTE - 10_000 + 1_000);
    expect(fourth).toMatchObject({ position: 2, etaMs: MINUTE - 10_000 + 1_000 });
    expect(fifth).toMatchObject({ position: 3, etaMs: 2 * MINUTE - 10_000 + 1_000 });
    expect(engine.positionOf(third.job.id)).toEqual({ position: 1, etaMs: 51_000 });
    const active = engine.activeJobs().map((a) => [a.job.request.prompt, a.state, a.position]);
    expect(active).toEqual([
      ["j1", "running", undefined],
      ["j2", "running", undefined],
      ["j3", "queued", 1],
      ["j4", "queued", 2],
      ["j5", "queued", 3],
    ]);
  });

  it("counts a rate-held job toward the member's limit", async () => {
    const { engine } = await setup({ limits: { maxQueuedPerUser: 3 } });
    for (const p of ["a1", "a2", "a3"]) submit(engine, p, "A");
    // a1 and a2 render, a3 waits for a rate slot: that is three unfinished jobs.
    const fourth = engine.submit("ev-a4", openAiRequest({ prompt: "a4", requester: requester("A") }));
    expect(fourth).toMatchObject({ ok: false, code: "limit_reached" });
  });

  it("cancels a rate-held job: the member is told cancelled and the backend never sees it", async () => {
    const { engine, backend, store, events } = await setup();
    submit(engine, "j1");
    submit(engine, "j2");
    const held = submit(engine, "j3");
    expect(engine.cancel(held.job.id)).toBe(true);
    expect(events.cancelled.map((e) => e.job.id)).toEqual([held.job.id]);
    expect(store.jobs.getJob(held.job.id)?.state).toBe("cancelled");
    await vi.advanceTimersByTimeAsync(2 * MINUTE);
    expect(backend.started).toEqual(["j1", "j2"]);
    expect(engine.positionOf(held.job.id)).toBeUndefined();
  });

  it("starts a held job by itself when the window frees a slot", async () => {
    const { engine, backend, store, events } = await setup();
    submit(engine, "j1");
    submit(engine, "j2");
    const held = submit(engine, "j3");
    await vi.advanceTimersByTimeAsync(MINUTE - 1);
    expect(backend.started).toEqual(["j1", "j2"]);
    await vi.advanceTimersByTimeAsync(1);
    expect(backend.started).toEqual(["j1", "j2", "j3"]);
    expect(store.jobs.getJob(held.job.id)?.state).toBe("running");
    expect(events.started.map((e) => e.job.request.prompt)).toEqual(["j1", "j2", "j3"]);
  });

  it("counts retries against the rate cap: a failed attempt's second start waits for the window", async () => {
    const { engine, backend, events } = await setup({ limits: { maxAttempts: 2 } });
    backend.failures.set("flaky", [new EaselError("provider_unavailable", "HTTP 502")]);
    submit(engine, "flaky");
    submit(engine, "other");
    await vi.advanceTimersByTimeAsync(0);
    // Two starts (flaky's failed attempt, other) used the minute: the retry is queued, visible, and waits.
    expect(backend.started).toEqual(["flaky", "other"]);
    expect(events.queued.filter((e) => e.retry).map((e) => e.job.request.prompt)).toEqual(["flaky"]);
    expect(engine.activeJobs().find((a) => a.job.request.prompt === "flaky")?.state).toBe("queued");
    await vi.advanceTimersByTimeAsync(MINUTE);
    expect(backend.started).toEqual(["flaky", "other", "flaky"]);
  });

  it("stop(grace) with rate-held jobs returns after the grace; running jobs go back to queued, held ones stay", async () => {
    const { engine, store } = await setup();
    const running = [submit(engine, "j1"), submit(engine, "j2")];
    const held = submit(engine, "j3");
    let stopped = false;
    void engine.stop(5_000).then(() => {
      stopped = true;
    });
    await vi.advanceTimersByTimeAsync(4_999);
    expect(stopped).toBe(false);
    await vi.advanceTimersByTimeAsync(1 + STOP_ABORT_WAIT_MS);
    expect(stopped).toBe(true);
    for (const r of running)
      expect(store.jobs.getJob(r.job.id)).toMatchObject({ state: "queued", attempts: 0 });
    expect(store.jobs.getJob(held.job.id)?.state).toBe("queued");
    // Nothing of the engine's is left to fire (the rate timer was cleared).
    expect(vi.getTimerCount()).toBe(0);
  });

  it("stop returns even when a backend ignores its abort, and the next start runs that job again", async () => {
    const stuck = new FakeBackend("openai");
    stuck.abortDelayMs = 24 * 60 * MINUTE;
    const first = await setup({ backend: stuck });
    const job = submit(first.engine, "stuck");
    let stopped = false;
    void first.engine.stop(1_000).then(() => {
      stopped = true;
    });
    await vi.advanceTimersByTimeAsync(1_000 + STOP_ABORT_WAIT_MS);
    expect(stopped).toBe(true);
    // Left for recovery: the store still says running, as after a crash.
    expect(first.store.jobs.getJob(job.job.id)?.state).toBe("running");
    engines.splice(engines.indexOf(first.engine), 1);
    stores.splice(stores.indexOf(first.store), 1);
    first.store.close();
    const second = await setup({ dir: first.dir });
    expect(second.backend.started).toEqual(["stuck"]);
    expect(second.store.jobs.getJob(job.job.id)).toMatchObject({ state: "running", attempts: 2 });
  });
});
