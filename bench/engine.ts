import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BackendResult, ImageBackend } from "../src/core/backend.ts";
import { Engine } from "../src/core/engine.ts";
import type { GenerationRequest } from "../src/core/request.ts";
import { SqliteEngineStore } from "../src/store/engine-store.ts";
import { Store } from "../src/store/index.ts";
import { quantile, report } from "./measure.ts";

/**
 * Job engine figures with a real SQLite store (synchronous=FULL) and a no-op backend: the time from submit to
 * the backend's start on an idle queue, jobs per second through submit → run → rendered → delivered, and the
 * time a restart takes to requeue 1000 waiting jobs.
 */

const NO_IMAGES: BackendResult = { images: [], notes: [], used: {}, renderMs: 0 };

function request(i: number): GenerationRequest {
  return {
    prompt: `bench ${i}`,
    negativePrompt: "",
    seed: i,
    steps: 20,
    guidance: 7.5,
    sampler: "euler",
    width: 512,
    height: 512,
    count: 1,
    backend: "ldm",
    model: "bench",
    requester: { platform: "discord", workspaceId: `g${i % 4}`, channelId: "c", userId: `u${i % 50}` },
  };
}

function engineFor(store: Store, backend: ImageBackend): Engine {
  return new Engine({
    store: new SqliteEngineStore(store),
    backends: { ldm: backend },
    encoder: async () => [],
    loadImage: async () => {
      throw new Error("no images in benchmarks");
    },
    limits: { maxQueued: 100_000, maxQueuedPerUser: 100_000, maxQueuedPerWorkspace: 100_000 },
  });
}

async function enqueueToStart(dir: string): Promise<number> {
  const store = Store.open(join(dir, "a"));
  let startedAt = 0;
  let release: () => void = () => {};
  const backend: ImageBackend = {
    name: "ldm",
    generate: () => {
      startedAt = performance.now();
      return new Promise((resolve) => {
        release = () => resolve(NO_IMAGES);
      });
    },
  };
  const engine = engineFor(store, backend);
  await engine.start();
  const samples: number[] = [];
  for (let i = 0; i < 200; i++) {
    const done = new Promise((r) => engine.once("done", r));
    const t0 = performance.now();
    engine.submit(`e${i}`, request(i));
    await new Promise((r) => setImmediate(r));
    while (startedAt < t0) await new Promise((r) => setImmediate(r));
    samples.push(startedAt - t0);
    release();
    await done;
  }
  store.close();
  return quantile(samples.slice(20), 0.5);
}

/** Jobs per second through submit → run → rendered → delivered, the queue kept at its default bound (100). */
async function jobsPerSecond(dir: string): Promise<number> {
  const store = Store.open(join(dir, "b"));
  const backend: ImageBackend = { name: "ldm", generate: async () => NO_IMAGES };
  const engine = new Engine({
    store: new SqliteEngineStore(store),
    backends: { ldm: backend },
    encoder: async () => [],
    loadImage: async () => {
      throw new Error("no images in benchmarks");
    },
    limits: { maxQueuedPerUser: 1000, maxQueuedPerWorkspace: 1000 },
    backendLimits: { ldm: { concurrency: 4 } },
  });
  const total = 3000;
  let submitted = 0;
  let delivered = 0;
  const submitMore = () => {
    while (submitted < total) {
      const result = engine.submit(`e${submitted}`, request(submitted));
      if (!result.ok) break; // queue full: the next delivery makes room
      submitted++;
    }
  };
  const finished = new Promise<void>((resolve) => {
    engine.on("done", ({ job }) => {
      engine.delivered(job.id);
      if (++delivered === total) resolve();
      else submitMore();
    });
  });
  await engine.start();
  const t0 = performance.now();
  submitMore();
  await finished;
  const seconds = (performance.now() - t0) / 1000;
  store.close();
  return total / seconds;
}

async function crashRecovery(dir: string): Promise<number> {
  const path = join(dir, "c");
  let store = Store.open(path);
  store.transaction(() => {
    for (let i = 0; i < 1000; i++) store.jobs.createJob({ eventId: `e${i}`, request: request(i), now: i });
  });
  store.close();
  store = Store.open(path);
  const backend: ImageBackend = { name: "ldm", generate: () => new Promise(() => {}) };
  const engine = engineFor(store, backend);
  const t0 = performance.now();
  await engine.start();
  const ms = performance.now() - t0;
  const waiting = engine.activeJobs().length;
  if (waiting !== 1000) throw new Error(`recovery requeued ${waiting} jobs, not 1000`);
  store.close();
  return ms;
}

/**
 * Each figure runs on the data disk (every new job costs one fsync, as in production). The jobs-per-second
 * figure is also measured with the database in memory-backed /dev/shm, where fsync is free: the engine's and
 * SQLite's own cost, which is what a faster disk approaches.
 */
export async function benchEngine(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "easel-bench-engine-"));
  const shm = existsSync("/dev/shm") ? mkdtempSync("/dev/shm/easel-bench-") : undefined;
  try {
    report("enqueue_to_start_ms", await enqueueToStart(dir), 3);
    report("scheduler_jobs_per_s", await jobsPerSecond(dir), 0);
    if (shm) report("scheduler_jobs_per_s_no_fsync", await jobsPerSecond(shm), 0);
    report("crash_recovery_ms", await crashRecovery(dir), 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    if (shm) rmSync(shm, { recursive: true, force: true });
  }
}
