import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { BackendCallContext, BackendResult } from "../src/core/backend.ts";
import { Engine, type EngineEvents, type EngineOptions } from "../src/core/engine.ts";
import { EaselError } from "../src/core/errors.ts";
import type { GenerationRequest } from "../src/core/request.ts";
import { encodeJobImages } from "../src/render/encode-job.ts";
import { readPngText } from "../src/render/png.ts";
import { prepareImage } from "../src/render/prepare-image.ts";
import { SqliteEngineStore } from "../src/store/engine-store.ts";
import { Store } from "../src/store/index.ts";
import { FakeBackend } from "./fakes/fake-backend.ts";

const dirs: string[] = [];
const stores: Store[] = [];
const engines: Engine[] = [];
afterEach(async () => {
  // Real timers first: stopping waits for each backend's abort.
  vi.useRealTimers();
  for (const e of engines.splice(0)) await e.stop(0);
  for (const s of stores.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function request(
  prompt: string,
  userId = "A",
  workspaceId = "g1",
  extra: Partial<GenerationRequest> = {},
): GenerationRequest {
  return {
    prompt,
    negativePrompt: "",
    seed: 42,
    steps: 20,
    guidance: 7.5,
    sampler: "euler_ancestral",
    width: 512,
    height: 512,
    count: 1,
    backend: "ldm",
    model: "tiny",
    requester: { platform: "discord", workspaceId, channelId: "c1", userId },
    ...extra,
  };
}

/** A FakeBackend that reports an estimated cost, as the OpenAI backend does. */
class PricedBackend extends FakeBackend {
  costUsd: number | undefined = 0.04;

  override async generate(request: GenerationRequest, context: BackendCallContext): Promise<BackendResult> {
    const result = await super.generate(request, context);
    return this.costUsd === undefined ? result : { ...result, costUsd: this.costUsd };
  }
}

type Recorded = { [K in keyof EngineEvents]: EngineEvents[K][0][] };

function setup(options: Partial<EngineOptions> = {}, dir = mkdtempSync(join(tmpdir(), "easel-engine-"))) {
  if (!dirs.includes(dir)) dirs.push(dir);
  const store = Store.open(dir);
  stores.push(store);
  const backend = (options.backends?.ldm as FakeBackend | undefined) ?? new FakeBackend();
  const engine = new Engine({
    store: new SqliteEngineStore(store),
    backends: { ldm: backend },
    encoder: encodeJobImages,
    loadImage: async (id, as) => prepareImage(await store.images.readImage(id), id, as),
    ...options,
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
  return { engine, backend, store, events, dir };
}

/** The real clock's timer, taken before any test fakes it: for waiting on real work (image encoding). */
const realSetTimeout = globalThis.setTimeout;

/**
 * Waits until `check` holds, for real work (encoding, the store) to finish: a deadline, not a clock the code
 * under test reads. With fake timers on, timers due now run and the fake clock does not move.
 */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2_000; i++) {
    if (check()) return;
    if (vi.isFakeTimers()) await vi.advanceTimersByTimeAsync(0);
    await new Promise((r) => realSetTimeout(r, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("job engine", () => {
  it("runs user B's job second when user A queued three first", async () => {
    const { engine, backend } = setup();
    await engine.start();
    for (const p of ["a1", "a2", "a3"]) expect(engine.submit(`e-${p}`, request(p, "A")).ok).toBe(true);
    expect(engine.submit("e-b1", request("b1", "B")).ok).toBe(true);
    for (const p of ["a1", "b1", "a2", "a3"]) {
      await until(() => backend.running.has(p), `${p} to start`);
      backend.finish(p);
    }
    expect(backend.started).toEqual(["a1", "b1", "a2", "a3"]);
  });

  it("writes the job row before answering and posts PNGs carrying their settings when done", async () => {
    const { engine, backend, store, events } = setup();
    await engine.start();
    const submitted = engine.submit("e1", request("a lighthouse", "A", "g1", { count: 2 }));
    if (!submitted.ok) throw new Error(submitted.message);
    expect(store.jobs.getJob(submitted.job.id)?.state).toMatch(/queued|running/);
    await until(() => backend.running.has("a lighthouse"), "start");
    backend.finish("a lighthouse");
    await until(() => events.done.length === 1, "done");
    const done = events.done[0];
    expect(done?.job.state).toBe("rendered");
    expect(done?.images.map((i) => i.variant)).toEqual([0, 1, 2]);
    expect(readPngText(done?.images[2]?.png ?? new Uint8Array()).parameters).toContain("Seed: 43");
    engine.delivered(submitted.job.id);
    expect(store.jobs.getJob(submitted.job.id)?.state).toBe("delivered");
    expect(store.images.imagesForJob(submitted.job.id)).toHaveLength(3);
  });

  it("records the backend's estimated cost on the job when it is rendered, and none where it reports none", async () => {
    const backend = new PricedBackend();
    const { engine, store, events } = setup({ backends: { ldm: backend } });
    await engine.start();
    const priced = engine.submit("e-priced", request("priced"));
    if (!priced.ok) throw new Error(priced.message);
    await until(() => backend.running.has("priced"), "start");
    backend.finish("priced");
    await until(() => events.done.length === 1, "done");
    expect(events.done[0]?.job.costUsd).toBe(0.04);
    engine.delivered(priced.job.id);
    expect(store.jobs.getJob(priced.job.id)).toMatchObject({ state: "delivered", costUsd: 0.04 });
    backend.costUsd = undefined;
    const free = engine.submit("e-free", request("free"));
    if (!free.ok) throw new Error(free.message);
    await until(() => backend.running.has("free"), "start");
    backend.finish("free");
    await until(() => events.done.length === 2, "done");
    expect(store.jobs.getJob(free.job.id)?.costUsd).toBeUndefined();
  });

  it("makes one job of the same platform event delivered twice", async () => {
    const { engine, backend, events, store } = setup();
    await engine.start();
    const first = engine.submit("same-event", request("once"));
    const second = engine.submit("same-event", request("once"));
    expect(first.ok && second.ok).toBe(true);
    if (first.ok && second.ok) {
      expect(second.job.id).toBe(first.job.id);
      expect(second.duplicate).toBe(true);
    }
    await until(() => backend.running.has("once"), "start");
    backend.finish("once");
    await until(() => events.done.length === 1, "done");
    expect(backend.started).toEqual(["once"]);
    // One row: nothing is left behind to render a second time.
    expect(store.jobs.listJobs({})).toHaveLength(1);
    expect(engine.activeJobs()).toEqual([]);
  });

  it("refuses a user's fourth job, a full server and a full queue, naming the limit", async () => {
    const { engine } = setup({ limits: { maxQueuedPerUser: 3, maxQueuedPerWorkspace: 5, maxQueued: 7 } });
    await engine.start();
    for (let i = 0; i < 3; i++) expect(engine.submit(`a${i}`, request(`a${i}`, "A")).ok).toBe(true);
    const fourth = engine.submit("a3", request("a3", "A"));
    expect(fourth).toMatchObject({ ok: false, code: "limit_reached" });
    if (!fourth.ok) expect(fourth.message).toContain("3");
    for (let i = 0; i < 2; i++) expect(engine.submit(`b${i}`, request(`b${i}`, "B")).ok).toBe(true);
    const server = engine.submit("c0", request("c0", "C"));
    expect(server).toMatchObject({ ok: false, code: "limit_reached" });
    if (!server.ok) expect(server.message).toContain("5");
    for (let i = 0; i < 2; i++) expect(engine.submit(`d${i}`, request(`d${i}`, "D", "g2")).ok).toBe(true);
    const full = engine.submit("e0", request("e0", "E", "g3"));
    expect(full).toMatchObject({ ok: false, code: "queue_full" });
    if (!full.ok) expect(full.message).toContain("7");
  });

  it("applies a guild's lower per-member limit given at submit", async () => {
    const { engine } = setup();
    await engine.start();
    expect(engine.submit("x1", request("x1", "A"), { maxQueuedPerUser: 1 }).ok).toBe(true);
    const second = engine.submit("x2", request("x2", "A"), { maxQueuedPerUser: 1 });
    expect(second).toMatchObject({ ok: false, code: "limit_reached" });
    if (!second.ok) expect(second.message).toContain("1 job");
  });

  it("weighs each model's ETA by its family's cost (an SDXL job counts more per pixel and step)", async () => {
    const weights: Record<string, number> = { sdxl: 1.25, tiny: 1 };
    const { engine } = setup({ costWeight: (r) => weights[r.model] ?? 1 });
    await engine.start();
    engine.submit("w0", request("w0", "A"));
    const sd1 = engine.submit("w1", request("w1", "B"));
    const sdxl = engine.submit("w2", request("w2", "C", "g1", { model: "sdxl" }));
    const sd1After = engine.submit("w3", request("w3", "D"));
    if (!sd1.ok || !sdxl.ok || !sd1After.ok) throw new Error("refused");
    // Each ETA is the jobs ahead plus its own: the SDXL job's own share is 1.25 × the same SD 1.x job's.
    const own = (after: { etaMs: number }, before: { etaMs: number }) => after.etaMs - before.etaMs;
    expect(own(sdxl, sd1) / own(sd1After, sdxl)).toBeCloseTo(1.25, 2);
  });

  it("reports position and ETA for every waiting job, and again when it changes", async () => {
    const { engine, backend, events } = setup();
    await engine.start();
    engine.submit("e1", request("p1", "A"));
    engine.submit("e2", request("p2", "B"));
    engine.submit("e3", request("p3", "C"));
    const last = (prompt: string) => events.queued.filter((e) => e.job.request.prompt === prompt).at(-1);
    expect(last("p2")?.position).toBe(1);
    expect(last("p3")?.position).toBe(2);
    expect(last("p3")?.etaMs ?? 0).toBeGreaterThan(last("p2")?.etaMs ?? 0);
    await until(() => backend.running.has("p1"), "p1");
    backend.finish("p1");
    await until(() => backend.running.has("p2"), "p2");
    expect(last("p3")?.position).toBe(1);
  });

  it("cancels a queued job at once and a running one through its signal, freeing the slot only when it stopped", async () => {
    // The backend's stop after an abort takes 60 ms of a fake clock: "not yet stopped" is a moment, not a race.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval"] });
    const { engine, backend, events, store } = setup();
    backend.abortDelayMs = 60;
    await engine.start();
    const running = engine.submit("e1", request("slow", "A"));
    const waiting = engine.submit("e2", request("next", "B"));
    const cancelMe = engine.submit("e3", request("never", "C"));
    if (!running.ok || !waiting.ok || !cancelMe.ok) throw new Error("refused");
    expect(engine.cancel(cancelMe.job.id)).toBe(true);
    expect(store.jobs.getJob(cancelMe.job.id)?.state).toBe("cancelled");
    await until(() => backend.running.has("slow"), "slow");
    expect(engine.cancel(running.job.id)).toBe(true);
    await vi.advanceTimersByTimeAsync(59);
    // Aborted but not yet stopped: the next job must still wait.
    expect(backend.running.has("slow")).toBe(true);
    expect(backend.started).toEqual(["slow"]);
    await vi.advanceTimersByTimeAsync(1);
    await until(() => backend.running.has("next"), "next after the slot freed");
    expect(backend.running.has("slow")).toBe(false);
    expect(events.cancelled.map((e) => e.job.request.prompt).sort()).toEqual(["never", "slow"]);
    expect(backend.started).not.toContain("never");
  });

  it("retries transient failures up to the cap and never retries a content-policy refusal", async () => {
    const { engine, backend, events } = setup({ limits: { maxAttempts: 3 } });
    backend.failures.set("flaky", [
      new EaselError("worker_crashed", "boom"),
      new EaselError("timeout", "slow"),
    ]);
    backend.failures.set(
      "doomed",
      [1, 2, 3].map(() => new EaselError("worker_hung", "stuck")),
    );
    backend.failures.set("naughty", [
      new EaselError("content_policy", "Rejected by the provider's safety system."),
    ]);
    await engine.start();
    engine.submit("e1", request("flaky", "A"));
    engine.submit("e2", request("doomed", "B"));
    engine.submit("e3", request("naughty", "C"));
    await until(() => backend.running.has("flaky"), "third attempt of flaky");
    backend.finish("flaky");
    await until(() => events.failed.length === 2 && events.done.length === 1, "outcomes");
    expect(backend.started.filter((p) => p === "flaky")).toHaveLength(3);
    expect(backend.started.filter((p) => p === "doomed")).toHaveLength(3);
    expect(backend.started.filter((p) => p === "naughty")).toHaveLength(1);
    const failed = Object.fromEntries(events.failed.map((e) => [e.job.request.prompt, e]));
    expect(failed.doomed?.code).toBe("worker_hung");
    expect(failed.naughty?.code).toBe("content_policy");
    expect(failed.naughty?.message).toContain("safety system");
    expect(events.queued.some((e) => e.retry && e.job.request.prompt === "flaky")).toBe(true);
  });

  it("aborts a render that exceeds the backend's timeout and retries it", async () => {
    // The timeout on a fake clock: each attempt gets exactly its minute, and the backend stops 10 ms after
    // the abort.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval"] });
    const TIMEOUT_MS = 60_000;
    const { engine, backend, events } = setup({
      backendLimits: { ldm: { timeoutMs: TIMEOUT_MS } },
      limits: { maxAttempts: 2 },
    });
    backend.abortDelayMs = 10;
    await engine.start();
    engine.submit("e1", request("stuck"));
    const aborted = () => backend.running.get("stuck")?.context.signal.aborted;
    await until(() => backend.running.has("stuck"), "the first attempt");
    await vi.advanceTimersByTimeAsync(TIMEOUT_MS - 1);
    expect(aborted()).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(aborted()).toBe(true);
    await vi.advanceTimersByTimeAsync(10);
    await until(() => backend.started.length === 2 && backend.running.has("stuck"), "the second attempt");
    expect(events.failed).toEqual([]);
    await vi.advanceTimersByTimeAsync(TIMEOUT_MS - 1);
    expect(aborted()).toBe(false);
    expect(events.failed).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(aborted()).toBe(true);
    await vi.advanceTimersByTimeAsync(10);
    await until(() => events.failed.length === 1, "timeout failure");
    expect(backend.started).toEqual(["stuck", "stuck"]);
    expect(events.failed[0]?.code).toBe("timeout");
  });

  it("after a restart runs queued jobs in order, retries the running one and hands the rendered one to delivery without rendering or loading its images", async () => {
    const first = setup();
    await first.engine.start();
    const a = first.engine.submit("e1", request("was-rendered", "A"));
    first.engine.submit("e2", request("was-running", "B"));
    first.engine.submit("e3", request("was-queued-1", "C"));
    first.engine.submit("e4", request("was-queued-2", "D"));
    await until(() => first.backend.running.has("was-rendered"), "first job");
    first.backend.finish("was-rendered");
    await until(() => first.backend.running.has("was-running"), "second job");
    // The process dies here: nothing is delivered, one job is mid-render (the engine is simply abandoned).
    engines.splice(engines.indexOf(first.engine), 1);
    stores.splice(stores.indexOf(first.store), 1);
    first.store.close();

    const second = setup({}, first.dir);
    second.backend.autoFinishMs = 1;
    await second.engine.start();
    // The old start re-emitted `done` with every rendered job's images read into memory at once (S3): the
    // relay now delivers resumed jobs one at a time and reads each one's images when its turn comes.
    expect(second.events.done).toEqual([]);
    const resumed = second.events.resumed.map((e) => [e.job.request.prompt, e.job.state]);
    expect(resumed).toEqual([
      ["was-rendered", "rendered"],
      ["was-running", "queued"],
      ["was-queued-1", "queued"],
      ["was-queued-2", "queued"],
    ]);
    expect(Object.keys(second.events.resumed[0] ?? {})).toEqual(["job"]);
    await until(() => second.events.done.length === 3, "all rendered");
    expect(second.backend.started).toEqual(["was-running", "was-queued-1", "was-queued-2"]);
    if (a.ok) expect(second.engine.delivered(a.job.id)?.state).toBe("delivered");
  });

  it("shows a failure that was not shown before the restart", async () => {
    const first = setup({ limits: { maxAttempts: 1 } });
    first.backend.failures.set("bad", [new EaselError("invalid_argument", "steps must be from 1 to 150")]);
    await first.engine.start();
    first.engine.submit("e1", request("bad"));
    await until(() => first.events.failed.length === 1, "failure");
    stores.splice(stores.indexOf(first.store), 1);
    first.store.close();
    const second = setup({}, first.dir);
    await second.engine.start();
    expect(second.events.failed.map((e) => e.message)).toEqual(["steps must be from 1 to 150"]);
    second.engine.failureShown(second.events.failed[0]?.job.id ?? "");
    const third = setup({}, first.dir);
    await third.engine.start();
    expect(third.events.failed).toEqual([]);
  });

  it("passes progress through and stops taking work on stop, requeueing what runs", async () => {
    const { engine, backend, events, store } = setup();
    await engine.start();
    const job = engine.submit("e1", request("long"));
    await until(() => events.progress.length === 1, "progress");
    expect(events.progress[0]?.progress).toEqual({ step: 1, total: 2 });
    await engine.stop(20);
    expect(engine.submit("e2", request("late"))).toMatchObject({ ok: false, code: "shutting_down" });
    if (job.ok) expect(store.jobs.getJob(job.job.id)?.state).toBe("queued");
    expect(backend.running.size).toBe(0);
  });
});
