import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { LdmModel } from "../src/backends/ldm/ldm-model.ts";
import { readModelFolder } from "../src/backends/ldm/model-folder.ts";
import { noiseThreadReady, startNoiseThread } from "../src/backends/ldm/noise-thread.ts";
import { SessionFactory } from "../src/backends/ldm/onnx-session.ts";
import { type GenerateParams, generate, latentPreview } from "../src/backends/ldm/pipeline.ts";
import {
  TINY_MODEL_VARIANTS,
  type TinyModelVariantName,
  writeTinyModel,
} from "../src/backends/ldm/tiny-model.ts";
import { CLIP_BPE_DIR } from "../src/backends/ldm/tokenizer/clip-tokenizer.ts";
import { TorchGenerator } from "../src/backends/ldm/torch-random.ts";
import { LdmWorkerSupervisor } from "../src/backends/ldm/worker-supervisor.ts";
import { quantile, report, timeRuns } from "./measure.ts";

/**
 * Pipeline figures on generated models: `pipeline_overhead_ratio` (wall time of a generate ÷ time inside
 * onnxruntime's session.run, on the larger `bench` model), the same on the tiny model and on an SDXL-shaped
 * bench model at 1024² (`sdxl_pipeline_overhead_ratio`), the bot process's
 * event-loop delay while the worker generates, the cost of one preview, and `model_load_ms` (the bench model's
 * sessions and tokenizer, from its folder).
 */

const TOKENIZER = CLIP_BPE_DIR;
const PARAMS: GenerateParams = {
  prompt: "a lighthouse in a storm, dramatic light",
  negativePrompt: "blurry",
  seed: 42,
  steps: 20,
  guidance: 7.5,
  scheduler: "euler_ancestral",
  width: 512,
  height: 512,
  count: 1,
};

/** Median over 3 generates of (wall ÷ session.run time), and of the time outside ORT per UNet step. */
async function overhead(
  modelsDir: string,
  variant: TinyModelVariantName,
  params: GenerateParams = PARAMS,
): Promise<{ ratio: number; jsMsPerStep: number }> {
  const model = await LdmModel.load(
    readModelFolder(join(modelsDir, variant)),
    new SessionFactory({ device: "cpu" }),
  );
  await generate(model, { ...params, steps: 2 }); // warm-up: first runs allocate ORT's arenas
  const ratios: number[] = [];
  const perStep: number[] = [];
  for (let i = 0; i < 3; i++) {
    const { timings, denoisingSteps } = await generate(model, params);
    ratios.push(timings.totalMs / timings.sessionMs);
    perStep.push((timings.totalMs - timings.sessionMs) / denoisingSteps);
  }
  await model.release();
  return { ratio: quantile(ratios, 0.5), jsMsPerStep: quantile(perStep, 0.5) };
}

/** Median of 3 loads of a model folder (every session created, the tokenizers read), warm file cache. */
async function modelLoadMs(dir: string): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 4; i++) {
    const started = performance.now();
    const model = await LdmModel.load(readModelFolder(dir), new SessionFactory({ device: "cpu" }));
    times.push(performance.now() - started);
    await model.release();
  }
  return quantile(times.slice(1), 0.5);
}

async function eventLoopLag(modelsDir: string): Promise<number> {
  const worker = new LdmWorkerSupervisor({ modelsDir, model: "bench", device: "cpu" });
  await worker.start();
  const histogram = monitorEventLoopDelay({ resolution: 5 });
  histogram.enable();
  await worker.generate(PARAMS);
  histogram.disable();
  await worker.stop();
  return histogram.percentile(99) / 1e6;
}

export async function benchPipeline(): Promise<void> {
  const modelsDir = mkdtempSync(join(tmpdir(), "easel-bench-"));
  // As the LDM worker process does when it loads a model; its "ready" arrives as an event.
  startNoiseThread();
  for (let i = 0; i < 500 && !noiseThreadReady(); i++) await new Promise((r) => setTimeout(r, 10));
  try {
    for (const variant of ["bench", "sd1", "sdxl-bench"] as const) {
      await writeTinyModel(join(modelsDir, variant), TINY_MODEL_VARIANTS[variant], TOKENIZER);
    }
    report("model_load_ms", await modelLoadMs(join(modelsDir, "bench")), 1);
    const bench = await overhead(modelsDir, "bench");
    report("pipeline_overhead_ratio", bench.ratio, 3);
    report("pipeline_outside_ort_ms_per_step", bench.jsMsPerStep);
    report("pipeline_overhead_ratio_tiny", (await overhead(modelsDir, "sd1")).ratio, 3);
    // SDXL at its native 1024² (a 128×128×4 latent), both encoders, text_embeds and time_ids, fewer steps.
    const sdxl = await overhead(modelsDir, "sdxl-bench", { ...PARAMS, width: 1024, height: 1024, steps: 8 });
    report("sdxl_pipeline_overhead_ratio", sdxl.ratio, 3);
    report("sdxl_pipeline_outside_ort_ms_per_step", sdxl.jsMsPerStep);
    report("event_loop_lag_p99_ms", await eventLoopLag(modelsDir));
    const latent = new TorchGenerator(1).randn(4 * 64 * 64);
    const previews = timeRuns(() => latentPreview(latent, 64, 64), 200, 20);
    report("preview_ms", quantile(previews, 0.5), 3);
  } finally {
    rmSync(modelsDir, { recursive: true, force: true });
  }
}
