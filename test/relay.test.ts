import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Engine } from "../src/core/engine.ts";
import type { Job } from "../src/core/job.ts";
import type { MessageModel } from "../src/core/presenter.ts";
import { type JobOutlet, JobRelay, type OutgoingFile } from "../src/core/relay.ts";
import type { GenerationRequest } from "../src/core/request.ts";
import { encodeJobImages } from "../src/render/encode-job.ts";
import { prepareImage } from "../src/render/prepare-image.ts";
import { SqliteEngineStore } from "../src/store/engine-store.ts";
import { Store } from "../src/store/index.ts";
import { FakeBackend } from "./fakes/fake-backend.ts";

/** The relay from engine events to a platform outlet: throttled status edits, ordered, results exactly once. */

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

class RecordingOutlet implements JobOutlet {
  readonly calls: {
    kind: "status" | "result" | "failure";
    jobId: string;
    at: number;
    model: MessageModel;
    files?: number;
  }[] = [];
  /** Result posts to fail before one succeeds. */
  failResults = 0;
  async status(job: Job, model: MessageModel) {
    this.calls.push({ kind: "status", jobId: job.id, at: performance.now(), model });
  }
  async result(job: Job, model: MessageModel, files: OutgoingFile[]) {
    if (this.failResults > 0) {
      this.failResults--;
      throw new Error("platform down");
    }
    this.calls.push({ kind: "result", jobId: job.id, at: performance.now(), model, files: files.length });
  }
  async failure(job: Job, model: MessageModel) {
    this.calls.push({ kind: "failure", jobId: job.id, at: performance.now(), model });
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

function setup(relayOptions: ConstructorParameters<typeof JobRelay>[2] = {}, dir?: string) {
  const dataDir = dir ?? mkdtempSync(join(tmpdir(), "easel-relay-"));
  const store = Store.open(dataDir);
  const backend = new FakeBackend();
  const engine = new Engine({
    store: new SqliteEngineStore(store),
    backends: { ldm: backend },
    encoder: encodeJobImages,
    loadImage: async (id, as) => prepareImage(await store.images.readImage(id), id, as),
  });
  const jobs = {
    get: (id: string) => store.jobs.getJob(id),
    images: (id: string) => new SqliteEngineStore(store).loadImages(id),
    imageBytes: (id: string) => store.images.readImage(id),
  };
  const relay = new JobRelay(engine, jobs, { log: () => {}, ...relayOptions });
  const outlet = new RecordingOutlet();
  relay.register("discord", outlet);
  relay.attach();
  cleanups.push(async () => {
    await engine.stop(0);
    await relay.detach();
    store.close();
    if (!dir) rmSync(dataDir, { recursive: true, force: true });
  });
  return { store, backend, engine, relay, outlet, dataDir };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("JobRelay", () => {
  it("edits a status at most once per interval, the latest state winning, and posts the result once", async () => {
    const { backend, engine, relay, outlet, store } = setup({ minEditIntervalMs: 150 });
    await engine.start();
    const submitted = engine.submit("e1", request("p", 2));
    if (!submitted.ok) throw new Error(submitted.message);
    await sleep(20);
    const call = backend.running.get("p");
    if (!call) throw new Error("not running");
    for (let step = 1; step <= 20; step++) {
      call.context.onProgress({ step, total: 20 });
      await sleep(25);
    }
    await sleep(200);
    backend.finish("p");
    await sleep(50);
    await relay.idle();
    const statuses = outlet.calls.filter((c) => c.kind === "status");
    // 20 steps over ~500 ms: a handful of edits, not 20.
    expect(statuses.length).toBeGreaterThanOrEqual(3);
    expect(statuses.length).toBeLessThanOrEqual(6);
    for (let i = 1; i < statuses.length; i++) {
      expect((statuses[i]?.at ?? 0) - (statuses[i - 1]?.at ?? 0)).toBeGreaterThanOrEqual(140);
    }
    expect(statuses.at(-1)?.model.content).toBe("Rendering… step 20/20");
    const results = outlet.calls.filter((c) => c.kind === "result");
    expect(results).toHaveLength(1);
    expect(results[0]?.files).toBe(3); // the grid and both images
    expect(outlet.calls.at(-1)?.kind).toBe("result");
    expect(store.jobs.getJob(submitted.job.id)?.state).toBe("delivered");
  });

  it("retries a failed post, and leaves the job rendered for the next start when the platform stays down", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "easel-relay-"));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const first = setup({ retryDelayMs: 5, deliveryAttempts: 2 }, dataDir);
    first.backend.autoFinishMs = 5;
    await first.engine.start();
    first.outlet.failResults = 1;
    const a = first.engine.submit("e1", request("a"));
    if (!a.ok) throw new Error(a.message);
    await sleep(300);
    await first.relay.idle();
    expect(first.outlet.calls.filter((c) => c.kind === "result")).toHaveLength(1);
    expect(first.store.jobs.getJob(a.job.id)?.state).toBe("delivered");

    first.outlet.failResults = 5;
    const b = first.engine.submit("e2", request("b"));
    if (!b.ok) throw new Error(b.message);
    await sleep(300);
    await first.relay.idle();
    expect(first.store.jobs.getJob(b.job.id)?.state).toBe("rendered");
    await cleanups.pop()?.();

    const second = setup({}, dataDir);
    await second.engine.start();
    await sleep(100);
    await second.relay.idle();
    expect(second.outlet.calls.filter((c) => c.kind === "result").map((c) => c.jobId)).toEqual([b.job.id]);
    expect(second.store.jobs.getJob(b.job.id)?.state).toBe("delivered");
  });
});
