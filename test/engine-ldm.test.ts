import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { LdmBackend } from "../src/backends/ldm/ldm-backend.ts";
import { TINY_MODEL_VARIANTS, writeTinyModel } from "../src/backends/ldm/tiny-model.ts";
import { CLIP_BPE_DIR } from "../src/backends/ldm/tokenizer/clip-tokenizer.ts";
import { LdmWorkerSupervisor } from "../src/backends/ldm/worker-supervisor.ts";
import { Engine, type EngineEvents } from "../src/core/engine.ts";
import { buildRequest } from "../src/core/request.ts";
import { encodeJobImages } from "../src/render/encode-job.ts";
import { readPngText } from "../src/render/png.ts";
import { prepareImage } from "../src/render/prepare-image.ts";
import { SqliteEngineStore } from "../src/store/engine-store.ts";
import { Store } from "../src/store/index.ts";

const dir = mkdtempSync(join(tmpdir(), "easel-engine-ldm-"));
const modelsDir = join(dir, "models");
const workers = new Map<string, LdmWorkerSupervisor>();
let store: Store | undefined;

afterAll(async () => {
  await Promise.all([...workers.values()].map((w) => w.stop()));
  store?.close();
  rmSync(dir, { recursive: true, force: true });
});

function waitFor<K extends keyof EngineEvents>(
  engine: Engine,
  event: K,
  jobId: string,
): Promise<EngineEvents[K][0]> {
  return new Promise((resolve, reject) => {
    const listener = (e: EngineEvents[K][0]) => {
      if (e.job.id !== jobId) return;
      (engine.off as (n: string, l: unknown) => void)(event, listener);
      resolve(e);
    };
    (engine.on as (n: string, l: unknown) => void)(event, listener);
    engine.once("failed", (e) => e.job.id === jobId && reject(new Error(`${e.code}: ${e.message}`)));
  });
}

describe("the engine with the LDM pipeline in its worker process", () => {
  it("renders a prompt with flags into PNGs with their settings, then a variation from a stored image", async () => {
    await writeTinyModel(join(modelsDir, "tiny"), TINY_MODEL_VARIANTS["sd1-optimum"], CLIP_BPE_DIR);
    store = Store.open(join(dir, "data"));
    const opened = store;
    const backend = new LdmBackend((model) => {
      let worker = workers.get(model);
      if (!worker) {
        worker = new LdmWorkerSupervisor({ modelsDir, model, device: "cpu" });
        workers.set(model, worker);
      }
      return worker;
    }, 2);
    const engine = new Engine({
      store: new SqliteEngineStore(opened),
      backends: { ldm: backend },
      encoder: encodeJobImages,
      loadImage: async (id, as) => prepareImage(await opened.images.readImage(id), id, as),
    });
    const previews: number[] = [];
    engine.on("progress", (e) => e.progress.preview && previews.push(e.progress.preview.width));
    await engine.start();
    const requester = { platform: "discord" as const, workspaceId: "g", channelId: "c", userId: "u" };
    const built = buildRequest(
      { prompt: "a lighthouse in a storm --seed 7 --steps 4 --size 64x64 --n 2 --sampler euler", requester },
      { catalog: { ldm: ["tiny"] } },
    );
    if (!built.ok) throw new Error(built.reason);
    const submitted = engine.submit("event-1", built.value);
    if (!submitted.ok) throw new Error(submitted.message);
    const done = await waitFor(engine, "done", submitted.job.id);
    expect(done.images.map((i) => i.variant)).toEqual([0, 1, 2]);
    const second = readPngText(done.images[2]?.png ?? new Uint8Array()).parameters ?? "";
    expect(second).toContain("Seed: 8");
    expect(second).toContain("Size: 64x64");
    expect(second).toContain("Sampler: Euler");
    expect(previews).toContain(8);
    engine.delivered(submitted.job.id);

    const source = done.images[1];
    if (!source) throw new Error("no image 1");
    const variation = buildRequest(
      {
        prompt: "a lighthouse in a storm --seed 9 --steps 4 --size 64x64 --strength 0.5",
        requester,
        init: { imageId: source.id },
        parent: { jobId: submitted.job.id, variant: 1, kind: "variation" },
      },
      { catalog: { ldm: ["tiny"] } },
    );
    if (!variation.ok) throw new Error(variation.reason);
    const v = engine.submit("event-2", variation.value);
    if (!v.ok) throw new Error(v.message);
    const varied = await waitFor(engine, "done", v.job.id);
    expect(readPngText(varied.images[0]?.png ?? new Uint8Array()).parameters).toContain(
      "Denoising strength: 0.5",
    );
    expect(opened.jobs.getJob(v.job.id)?.request.parent?.jobId).toBe(submitted.job.id);
    await engine.stop(1000);
  }, 60_000);
});
