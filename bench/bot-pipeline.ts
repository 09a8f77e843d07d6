import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LdmBackend } from "../src/backends/ldm/ldm-backend.ts";
import type { GenerateResult } from "../src/backends/ldm/pipeline.ts";
import { TINY_MODEL_VARIANTS, writeTinyModel } from "../src/backends/ldm/tiny-model.ts";
import { CLIP_BPE_DIR } from "../src/backends/ldm/tokenizer/clip-tokenizer.ts";
import { LdmWorkerSupervisor } from "../src/backends/ldm/worker-supervisor.ts";
import { Engine } from "../src/core/engine.ts";
import type { GenerationRequest } from "../src/core/request.ts";
import { encodeJobImages } from "../src/render/encode-job.ts";
import { encodePng } from "../src/render/png.ts";
import { SqliteEngineStore } from "../src/store/engine-store.ts";
import { Store } from "../src/store/index.ts";
import { quantile, report } from "./measure.ts";

/**
 * `bot_pipeline_overhead_ratio`: a job's wall time in the bot, from `engine.submit` to its `done` event (rendered:
 * PNGs encoded with their settings and stored in SQLite), ÷ the time its worker process spent inside
 * onnxruntime's `session.run`. The whole real path: engine and store, the worker process and its IPC, a preview
 * every 4 steps (each turned into a PNG in the bot, as the presenter does), the PNG encoding. On the bench model,
 * 512², 20 steps, after one job has warmed the worker; median of 5 jobs.
 */
const REQUEST: GenerationRequest = {
  prompt: "a lighthouse in a storm, dramatic light",
  negativePrompt: "blurry",
  seed: 42,
  steps: 20,
  guidance: 7.5,
  sampler: "euler_ancestral",
  width: 512,
  height: 512,
  count: 1,
  backend: "ldm",
  model: "bench",
  requester: { platform: "discord", workspaceId: "g", channelId: "c", userId: "u" },
};

/** The real supervisor, noting each job's time inside onnxruntime (the worker's own figure) as it passes. */
class SessionTimedSupervisor extends LdmWorkerSupervisor {
  readonly sessionMs: number[] = [];

  override async generate(...args: Parameters<LdmWorkerSupervisor["generate"]>): Promise<GenerateResult> {
    const result = await super.generate(...args);
    this.sessionMs.push(result.timings.sessionMs);
    return result;
  }
}

export async function benchBotPipeline(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "easel-bench-bot-"));
  const worker = new SessionTimedSupervisor({
    modelsDir: join(dir, "models"),
    model: "bench",
    device: "cpu",
  });
  const sessions = worker.sessionMs;
  const store = Store.open(join(dir, "data"));
  try {
    await writeTinyModel(join(dir, "models", "bench"), TINY_MODEL_VARIANTS.bench, CLIP_BPE_DIR);
    const engine = new Engine({
      store: new SqliteEngineStore(store),
      backends: { ldm: new LdmBackend(() => worker) },
      encoder: encodeJobImages,
      loadImage: async () => {
        throw new Error("no init images in this benchmark");
      },
    });
    engine.on("progress", ({ progress }) => {
      if (progress.preview?.format === "rgb") void encodePng(progress.preview);
    });
    await engine.start();
    const ratios: number[] = [];
    for (let i = 0; i < 6; i++) {
      const done = new Promise<void>((resolve) =>
        engine.once("done", ({ job }) => {
          engine.delivered(job.id);
          resolve();
        }),
      );
      const t0 = performance.now();
      const submitted = engine.submit(`bench-${i}`, { ...REQUEST, seed: REQUEST.seed + i });
      if (!submitted.ok) throw new Error("the engine refused the benchmark job");
      await done;
      const wall = performance.now() - t0;
      if (i > 0) ratios.push(wall / (sessions[i] as number));
    }
    report("bot_pipeline_overhead_ratio", quantile(ratios, 0.5), 3);
  } finally {
    await worker.stop();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
