import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { LdmBackend } from "../src/backends/ldm/ldm-backend.ts";
import { LdmWorkerSupervisor } from "../src/backends/ldm/worker-supervisor.ts";
import { Engine, type EngineEvents } from "../src/core/engine.ts";
import type { GenerationRequest } from "../src/core/request.ts";
import { encodeJobImages } from "../src/render/encode-job.ts";
import { prepareImage } from "../src/render/prepare-image.ts";
import { SqliteEngineStore } from "../src/store/engine-store.ts";
import { Store } from "../src/store/index.ts";

/**
 * Which failures the engine retries, through the real supervisor and worker processes (a fake worker script
 * that fails on purpose): a crash may not happen again, so it is retried; a bug or a model that cannot load
 * fails the same way every time, so it is not.
 */

const dir = mkdtempSync(join(tmpdir(), "easel-retries-"));
const store = Store.open(join(dir, "data"));
const supervisors = new Map<string, LdmWorkerSupervisor>();
const logs: string[] = [];
const engine = new Engine({
  store: new SqliteEngineStore(store),
  backends: {
    ldm: new LdmBackend((model) => {
      let s = supervisors.get(model);
      if (!s) {
        s = new LdmWorkerSupervisor(
          { modelsDir: dir, model, device: "cpu" },
          { workerEntry: resolve("test/fakes/failing-worker.ts"), log: (line) => logs.push(line) },
        );
        supervisors.set(model, s);
      }
      return s;
    }),
  },
  encoder: encodeJobImages,
  loadImage: async (id, as) => prepareImage(await store.images.readImage(id), id, as),
  limits: { maxAttempts: 3 },
});

afterAll(async () => {
  await engine.stop(0);
  await Promise.all([...supervisors.values()].map((s) => s.stop()));
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

function request(model: string): GenerationRequest {
  return {
    prompt: `a job on ${model}`,
    negativePrompt: "",
    seed: 1,
    steps: 2,
    guidance: 7.5,
    sampler: "euler",
    width: 64,
    height: 64,
    count: 1,
    backend: "ldm",
    model,
    requester: { platform: "discord", workspaceId: "g1", channelId: "c1", userId: model },
  };
}

/** Submits a job and resolves with its final failure. */
function failureOf(model: string): Promise<EngineEvents["failed"][0]> {
  const submitted = engine.submit(`ev-${model}`, request(model));
  if (!submitted.ok) throw new Error(submitted.message);
  return new Promise((done) => {
    const listener = (e: EngineEvents["failed"][0]) => {
      if (e.job.id !== submitted.job.id) return;
      engine.off("failed", listener);
      done(e);
    };
    engine.on("failed", listener);
  });
}

describe("retries of LDM worker failures", () => {
  it("does not retry a deterministic failure: an internal error in the worker, a model that cannot load", async () => {
    await engine.start();
    const [bug, broken] = await Promise.all([failureOf("buggy"), failureOf("broken")]);
    expect(bug).toMatchObject({ code: "internal", job: { attempts: 1 } });
    expect(broken).toMatchObject({ code: "internal", job: { attempts: 1 } });
    expect(supervisors.get("buggy")?.starts).toBe(1);
    expect(supervisors.get("broken")?.starts).toBe(1);
    // The member sees the generic text; the operator's log keeps the worker's own words.
    expect(bug.message).not.toContain("Cannot read");
    expect(logs.join("\n")).toContain("Cannot read properties of undefined");
    expect(logs.join("\n")).toContain("protobuf parsing failed");
  });

  it("retries a worker crash up to the cap", async () => {
    const crash = await failureOf("crashy");
    expect(crash).toMatchObject({ code: "worker_crashed", job: { attempts: 3 } });
    expect(supervisors.get("crashy")?.starts).toBe(3);
  });
});
