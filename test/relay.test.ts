import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { DeliveryError } from "../src/core/delivery-error.ts";
import { Engine, type StoredImage } from "../src/core/engine.ts";
import type { Job } from "../src/core/job.ts";
import type { MessageModel } from "../src/core/presenter.ts";
import { type JobOutlet, JobRelay, type OutgoingFile, type RelayOptions } from "../src/core/relay.ts";
import type { GenerationRequest } from "../src/core/request.ts";
import { encodeJobImages } from "../src/render/encode-job.ts";
import { prepareImage } from "../src/render/prepare-image.ts";
import { SqliteEngineStore } from "../src/store/engine-store.ts";
import { Store } from "../src/store/index.ts";
import { FakeBackend } from "./fakes/fake-backend.ts";

/**
 * The relay from engine events to a platform outlet: throttled status edits on a handle the adapter binds,
 * results in order, and the delivery state machine (attempts, waits, give-up, resuming one job at a time).
 * Time is vitest's fake clock; the store is real SQLite.
 */

type Call = {
  kind: "status" | "result" | "failure" | "undeliverable";
  jobId: string;
  at: number;
  handle?: unknown;
  model: MessageModel;
  files?: number;
};

class RecordingOutlet implements JobOutlet<string> {
  readonly calls: Call[] = [];
  /** What result() throws, one per call (undefined: it posts). */
  readonly resultErrors: (Error | undefined)[] = [];
  /** Every result() throws this when set. */
  alwaysFail: Error | undefined;
  /** While set, result() waits for it (a slow platform). */
  gate: Promise<void> | undefined;
  inFlight = 0;
  maxInFlight = 0;
  recordedHandles = new Map<string, string>();

  recorded(job: Job): string | undefined {
    return this.recordedHandles.get(job.id);
  }
  async status(job: Job, handle: string, model: MessageModel): Promise<undefined> {
    this.calls.push({ kind: "status", jobId: job.id, at: Date.now(), handle, model });
    return undefined;
  }
  async result(job: Job, handle: string | undefined, model: MessageModel, files: OutgoingFile[]) {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await this.gate;
      const err = this.alwaysFail ?? this.resultErrors.shift();
      if (err) throw err;
      this.calls.push({ kind: "result", jobId: job.id, at: Date.now(), handle, model, files: files.length });
    } finally {
      this.inFlight--;
    }
  }
  async failure(job: Job, handle: string | undefined, model: MessageModel) {
    this.calls.push({ kind: "failure", jobId: job.id, at: Date.now(), handle, model });
  }
  async undeliverable(job: Job, model: MessageModel) {
    this.calls.push({ kind: "undeliverable", jobId: job.id, at: Date.now(), model });
  }
  of(kind: Call["kind"]): Call[] {
    return this.calls.filter((c) => c.kind === kind);
  }
}

function request(prompt: string, count = 1): GenerationRequest {
  return {
    prompt,
    negativePrompt: "",
    seed: 42,
    steps: 20,
    guidance: 7.5,
    sampler: "euler",
    width: 64,
    height: 64,
    count,
    backend: "ldm",
    model: "m",
    requester: { platform: "discord", workspaceId: "g", channelId: "c", userId: "u" },
  };
}

const cleanups: (() => Promise<void> | void)[] = [];
/** The last store's jobs and outlet calls, for a timeout's message. */
let debugState: () => unknown = () => undefined;
const T0 = Date.UTC(2026, 0, 1);
beforeEach(() => {
  vi.useFakeTimers({
    toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "Date"],
    now: T0,
  });
});
afterEach(async () => {
  // Real timers first: shutting the engine down waits on its backend's abort.
  vi.useRealTimers();
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Setup {
  store: Store;
  backend: FakeBackend;
  engine: Engine;
  relay: JobRelay;
  outlet: RecordingOutlet;
  /** Every images() the relay asked for, in order. */
  loads: string[];
  close: () => Promise<void>;
}

function setup(options: RelayOptions = {}, dataDir = tempDir(), attach = true): Setup {
  const store = Store.open(dataDir);
  const backend = new FakeBackend();
  const engine = new Engine({
    store: new SqliteEngineStore(store),
    backends: { ldm: backend },
    encoder: encodeJobImages,
    loadImage: async (id, as) => prepareImage(await store.images.readImage(id), id, as),
  });
  const loads: string[] = [];
  const jobs = {
    get: (id: string) => store.jobs.getJob(id),
    images: (id: string): Promise<StoredImage[]> => {
      loads.push(id);
      return new SqliteEngineStore(store).loadImages(id);
    },
    withheld: (id: string) => store.images.flaggedVariants(id),
    imageBytes: (id: string) => store.images.readImage(id),
  };
  const relay = new JobRelay(engine, jobs, options);
  const outlet = new RecordingOutlet();
  relay.register("discord", outlet);
  if (attach) relay.attach();
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await engine.stop(0);
    await relay.detach();
    store.close();
  };
  cleanups.push(close);
  debugState = () => ({
    jobs: store.jobs.listJobs().map((j) => [j.state, j.deliveryAttempts]),
    calls: outlet.calls.map((c) => c.kind),
  });
  return { store, backend, engine, relay, outlet, loads, close };
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "easel-relay-"));
  cleanups.unshift(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The real clock's timer, taken before any test fakes it: for waiting on real work (image encoding, files). */
const realSetTimeout = globalThis.setTimeout;

/**
 * Lets timers due now and real work (sharp encoding, image files) run until `check` holds; the fake clock does
 * not move. Real time passes only for the real work.
 */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2_000; i++) {
    if (check()) return;
    await vi.advanceTimersByTimeAsync(0);
    await new Promise((r) => realSetTimeout(r, 2));
  }
  throw new Error(`timed out waiting for ${what}: ${JSON.stringify(debugState())}`);
}

/** Submits and finishes a job (the backend renders it at once); returns its id. */
async function render(s: Setup, eventId: string, prompt = eventId): Promise<string> {
  s.backend.autoFinishMs = 0;
  const submitted = s.engine.submit(eventId, request(prompt));
  if (!submitted.ok) throw new Error(submitted.message);
  const id = submitted.job.id;
  await until(
    () => s.store.jobs.getJob(id)?.state !== "queued" && s.store.jobs.getJob(id)?.state !== "running",
    "rendered",
  );
  return id;
}

const transient = () =>
  new DeliveryError("Discord did not take the message (HTTPError: 503)", { permanent: false });

describe("JobRelay: status messages", () => {
  it("edits a status at most once per interval, the latest state winning, and posts the result once", async () => {
    const s = setup({ minEditIntervalMs: 150 });
    await s.engine.start();
    const submitted = s.engine.submit("e1", request("p", 2));
    if (!submitted.ok) throw new Error(submitted.message);
    s.relay.bind(submitted.job.id, "h1");
    await until(() => s.backend.running.has("p"), "running");
    const call = s.backend.running.get("p");
    for (let step = 1; step <= 20; step++) {
      call?.context.onProgress({ step, total: 20 });
      await vi.advanceTimersByTimeAsync(25);
    }
    await vi.advanceTimersByTimeAsync(200);
    s.backend.finish("p");
    await until(() => s.outlet.of("result").length === 1, "the result");
    await s.relay.idle();
    const statuses = s.outlet.of("status");
    // 20 steps over 500 ms with edits at most every 150 ms: 4 or 5 edits, not 20.
    expect(statuses.length).toBeGreaterThanOrEqual(4);
    expect(statuses.length).toBeLessThanOrEqual(5);
    for (let i = 1; i < statuses.length; i++) {
      expect((statuses[i]?.at ?? 0) - (statuses[i - 1]?.at ?? 0)).toBeGreaterThanOrEqual(150);
    }
    expect(statuses.every((c) => c.handle === "h1")).toBe(true);
    expect(statuses.at(-1)?.model.content).toBe("Rendering… step 20/20");
    const results = s.outlet.of("result");
    expect(results).toHaveLength(1);
    expect(results[0]?.files).toBe(3); // the grid and both images
    expect(results[0]?.handle).toBe("h1");
    expect(s.outlet.calls.at(-1)?.kind).toBe("result");
    expect(s.store.jobs.getJob(submitted.job.id)?.state).toBe("delivered");
  });

  it("edits nothing before the adapter binds the status message, then shows the latest status it held", async () => {
    const s = setup({ minEditIntervalMs: 100 });
    await s.engine.start();
    const submitted = s.engine.submit("e1", request("p"));
    if (!submitted.ok) throw new Error(submitted.message);
    await until(() => s.backend.running.has("p"), "running");
    const call = s.backend.running.get("p");
    for (let step = 1; step <= 5; step++) {
      call?.context.onProgress({ step, total: 8 });
      await vi.advanceTimersByTimeAsync(1_000);
    }
    // Thirty seconds of a slow reply: nothing was edited, whatever the wait (the old adapter gave up at 10 s).
    await vi.advanceTimersByTimeAsync(30_000);
    expect(s.outlet.of("status")).toEqual([]);
    s.relay.bind(submitted.job.id, "late");
    await until(() => s.outlet.of("status").length === 1, "the held status");
    expect(s.outlet.of("status")[0]).toMatchObject({
      handle: "late",
      model: { content: "Rendering… step 5/8" },
    });
    call?.context.onProgress({ step: 6, total: 8 });
    await vi.advanceTimersByTimeAsync(100);
    expect(s.outlet.of("status").map((c) => c.model.content)).toEqual([
      "Rendering… step 5/8",
      "Rendering… step 6/8",
    ]);
  });

  it("a result whose status message is still being posted waits for it and goes with its handle", async () => {
    const s = setup();
    await s.engine.start();
    const id = await render(s, "e1");
    await vi.advanceTimersByTimeAsync(5_000);
    expect(s.outlet.of("result")).toEqual([]);
    s.relay.bind(id, "h");
    await until(() => s.outlet.of("result").length === 1, "the result");
    expect(s.outlet.of("result")[0]?.handle).toBe("h");
    expect(s.outlet.of("status")).toEqual([]); // the result replaced the held status
  });

  it("when the adapter says the post failed it drops the held statuses and the result goes without a handle", async () => {
    const s = setup();
    await s.engine.start();
    const submitted = s.engine.submit("e1", request("p"));
    if (!submitted.ok) throw new Error(submitted.message);
    await until(() => s.backend.running.has("p"), "running");
    s.relay.unbound(submitted.job.id);
    s.backend.running.get("p")?.context.onProgress({ step: 2, total: 2 });
    await vi.advanceTimersByTimeAsync(5_000);
    s.backend.finish("p");
    await until(() => s.outlet.of("result").length === 1, "the result");
    expect(s.outlet.of("status")).toEqual([]);
    expect(s.outlet.of("result")[0]?.handle).toBeUndefined();
    expect(s.store.jobs.getJob(submitted.job.id)?.state).toBe("delivered");
  });
});

describe("JobRelay: the delivery state machine", () => {
  it("retries a transient error with growing waits, then ends undeliverable after 5 attempts: images kept, requester told once, no restart tries again (S3)", async () => {
    const dataDir = tempDir();
    const s = setup({}, dataDir);
    await s.engine.start();
    s.outlet.alwaysFail = transient();
    let attempts = 0;
    const times: number[] = [];
    const result = s.outlet.result.bind(s.outlet);
    s.outlet.result = async (...args) => {
      attempts++;
      times.push(Date.now());
      return result(...args);
    };
    const id = await render(s, "e1");
    s.relay.unbound(id);
    await until(() => attempts === 1, "the first attempt");
    expect(s.store.jobs.getJob(id)).toMatchObject({
      state: "delivering",
      deliveryAttempts: 1,
      deliveringSince: times[0],
    });
    for (let i = 0; i < 4; i++) {
      await vi.advanceTimersByTimeAsync(60 * 60_000);
      await until(() => attempts === i + 2, `attempt ${i + 2}`);
    }
    await until(() => s.outlet.of("undeliverable").length === 1, "the notice");
    // Waits of 5 s, 20 s, 80 s and 320 s: attempts 2–5 start when they are due, not sooner.
    const waits = times.slice(1).map((t, i) => t - (times[i] as number));
    expect(waits.every((w, i) => w >= 5_000 * 4 ** i)).toBe(true);
    const job = s.store.jobs.getJob(id);
    expect(job).toMatchObject({ state: "undeliverable", deliveryAttempts: 5, errorCode: "delivery_failed" });
    expect(job?.failureNotifiedAt).toBeDefined();
    expect(s.outlet.of("undeliverable")[0]?.model.content).toContain("5 attempts");
    expect(s.store.images.imagesForJob(id)).toHaveLength(1);
    expect(await s.store.images.readImage(s.store.images.imagesForJob(id)[0]?.sha256 ?? "")).toBeInstanceOf(
      Buffer,
    );
    await s.close();

    const again = setup({}, dataDir);
    await again.engine.start();
    await vi.advanceTimersByTimeAsync(60 * 60_000);
    await again.relay.idle();
    expect(again.outlet.calls).toEqual([]);
    expect(again.loads).toEqual([]);
    expect(again.store.jobs.getJob(id)?.state).toBe("undeliverable");
  });

  it("a permanent refusal (the bot was removed) ends delivery at once, after one attempt (S3)", async () => {
    const s = setup();
    await s.engine.start();
    s.outlet.alwaysFail = new DeliveryError("easel was removed from that workspace or server.", {
      permanent: true,
    });
    const id = await render(s, "e1");
    s.relay.unbound(id);
    await until(() => s.outlet.of("undeliverable").length === 1, "the notice");
    expect(s.store.jobs.getJob(id)).toMatchObject({ state: "undeliverable", deliveryAttempts: 1 });
    expect(s.outlet.of("undeliverable")[0]?.model.content).toContain("easel was removed from that workspace");
    await vi.advanceTimersByTimeAsync(24 * 60 * 60_000);
    expect(s.store.jobs.getJob(id)?.deliveryAttempts).toBe(1);
  });

  it("counts attempts across a restart and gives up at the next failure once the first attempt is a day old", async () => {
    const dataDir = tempDir();
    const first = setup({}, dataDir);
    await first.engine.start();
    first.outlet.alwaysFail = transient();
    const id = await render(first, "e1");
    first.relay.unbound(id);
    await until(() => first.store.jobs.getJob(id)?.deliveryAttempts === 1, "one attempt");
    await first.close(); // shut down while it waits for its second attempt

    // Back after 25 hours; the platform still fails.
    vi.setSystemTime(T0 + 25 * 60 * 60_000);
    const second = setup({}, dataDir);
    expect(second.store.jobs.getJob(id)).toMatchObject({ state: "delivering", deliveryAttempts: 1 });
    second.outlet.alwaysFail = transient();
    await second.engine.start();
    await until(() => second.outlet.of("undeliverable").length === 1, "the notice");
    expect(second.store.jobs.getJob(id)).toMatchObject({
      state: "undeliverable",
      deliveryAttempts: 2,
      deliveringSince: T0,
    });
  });

  it("resumes pending deliveries one at a time after a start, reading one job's images at a time (S3)", async () => {
    const dataDir = tempDir();
    // A process that renders three results and dies before posting any (no relay listening).
    const first = setup({}, dataDir, false);
    await first.engine.start();
    const ids = [await render(first, "e1"), await render(first, "e2"), await render(first, "e3")];
    await first.close();

    const second = setup({}, dataDir);
    let release: () => void = () => {};
    second.outlet.gate = new Promise((r) => {
      release = r;
    });
    await second.engine.start();
    await until(() => second.outlet.inFlight === 1, "the first post");
    await vi.advanceTimersByTimeAsync(1_000);
    // The old start read every job's images and posted them all at once.
    expect(second.loads).toEqual([ids[0]]);
    expect(second.outlet.inFlight).toBe(1);
    release();
    second.outlet.gate = undefined;
    await until(() => second.outlet.of("result").length === 3, "all three");
    expect(second.outlet.maxInFlight).toBe(1);
    expect(second.loads).toEqual(ids);
    expect(second.outlet.of("result").map((c) => c.jobId)).toEqual(ids);
    expect(ids.map((id) => second.store.jobs.getJob(id)?.state)).toEqual([
      "delivered",
      "delivered",
      "delivered",
    ]);
  });

  it("a job taken over at start-up gets the status message its outlet recorded", async () => {
    const dataDir = tempDir();
    const first = setup({}, dataDir, false);
    await first.engine.start();
    const id = await render(first, "e1");
    await first.close();
    const second = setup({}, dataDir);
    second.outlet.recordedHandles.set(id, "from-the-log");
    await second.engine.start();
    await until(() => second.outlet.of("result").length === 1, "the result");
    expect(second.outlet.of("result")[0]?.handle).toBe("from-the-log");
  });
});
