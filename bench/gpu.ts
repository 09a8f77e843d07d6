import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { LdmModel } from "../src/backends/ldm/ldm-model.ts";
import { readModelFolder } from "../src/backends/ldm/model-folder.ts";
import { SessionFactory } from "../src/backends/ldm/onnx-session.ts";
import { type GenerateParams, generate } from "../src/backends/ldm/pipeline.ts";
import { quantile, report } from "./measure.ts";

/**
 * The GPU figures, on a CUDA host with a real SD 1.5 model folder (an optimum or diffusers ONNX export, fp16 or
 * fp32): `npm run bench:gpu -- /path/to/models/sd15` (or EASEL_MODELS_DIR/EASEL_MODEL). Needs
 * `npm run setup:cuda` first. Prints
 * - `model_load_ms_cuda`: every session created on the GPU, from the folder;
 * - `sd15_512_25_steps_s`: one 512² image, 25 steps, Euler ancestral, cfg 7.5 (the UNet runs a batch of 2), from
 *   the text encoder to RGB pixels, after a warm-up that lets cuDNN pick its kernels for the shape;
 * - `unet_it_per_s`: UNet calls per second inside onnxruntime in those runs;
 * - `gpu_pipeline_overhead_ratio`: wall time ÷ time inside onnxruntime (1.00 = no time of easel's own), and
 *   `gpu_pipeline_outside_ort_ms_per_step`.
 * Medians of 3 runs. It refuses to run on the CPU: these figures mean nothing there.
 */
const folderArg = process.argv[2];
const folder =
  folderArg ??
  (process.env.EASEL_MODELS_DIR && process.env.EASEL_MODEL
    ? resolve(process.env.EASEL_MODELS_DIR, process.env.EASEL_MODEL)
    : undefined);
if (folder === undefined || !existsSync(folder)) {
  console.error(
    "usage: npm run bench:gpu -- <model folder>  (an SD 1.5 ONNX export; or set EASEL_MODELS_DIR and EASEL_MODEL)",
  );
  process.exit(2);
}

const factory = new SessionFactory({ device: "cuda", deviceId: Number(process.env.EASEL_CUDA_DEVICE ?? 0) });
const loadStarted = performance.now();
const model = await LdmModel.load(readModelFolder(folder), factory).catch((err: Error) => {
  console.error(`bench:gpu: ${err.message}`);
  process.exit(1);
});
const loadMs = performance.now() - loadStarted;
if (model.provider !== "cuda") {
  console.error("bench:gpu: the model did not load on the CUDA provider");
  process.exit(1);
}
const params: GenerateParams = {
  prompt: "a lighthouse in a storm, dramatic light, detailed oil painting",
  negativePrompt: "blurry, low quality",
  seed: 42,
  steps: 25,
  guidance: 7.5,
  scheduler: "euler_ancestral",
  width: 512,
  height: 512,
  count: 1,
};
try {
  // cuDNN's exhaustive search runs on the first call at this shape.
  await generate(model, { ...params, steps: 2 });
  const seconds: number[] = [];
  const itPerS: number[] = [];
  const ratios: number[] = [];
  const outside: number[] = [];
  for (let i = 0; i < 3; i++) {
    const { timings, unetCalls, denoisingSteps } = await generate(model, {
      ...params,
      seed: params.seed + i,
    });
    seconds.push(timings.totalMs / 1000);
    itPerS.push(unetCalls / (timings.unetMs / 1000));
    ratios.push(timings.totalMs / timings.sessionMs);
    outside.push((timings.totalMs - timings.sessionMs) / denoisingSteps);
  }
  report("model_load_ms_cuda", loadMs, 0);
  report("sd15_512_25_steps_s", quantile(seconds, 0.5), 3);
  report("unet_it_per_s", quantile(itPerS, 0.5), 1);
  report("gpu_pipeline_overhead_ratio", quantile(ratios, 0.5), 3);
  report("gpu_pipeline_outside_ort_ms_per_step", quantile(outside, 0.5), 3);
} finally {
  await model.release();
}
