import { createHash } from "node:crypto";
import { join } from "node:path";
import { LdmModel } from "../src/backends/ldm/ldm-model.ts";
import { readModelFolder } from "../src/backends/ldm/model-folder.ts";
import { SessionFactory } from "../src/backends/ldm/onnx-session.ts";
import { type GenerateParams, generate, type RgbPixels } from "../src/backends/ldm/pipeline.ts";
import { SCHEDULER_NAMES } from "../src/backends/ldm/schedulers/index.ts";
import { type TinyModelOptions, writeTinyModel } from "../src/backends/ldm/tiny-model.ts";
import { CLIP_BPE_DIR } from "../src/backends/ldm/tokenizer/clip-tokenizer.ts";

/**
 * Fixed renders whose pixels must not change when the pipeline gets faster: every sampler, guidance on and off,
 * several images per call, img2img, fp16, v-prediction, LCM's timestep_cond, SDXL's added inputs, the Turbo
 * models, and the previews. The models are `arithmetic: "exact"` tiny models, whose graphs give the same bits on
 * every CPU, so a hash recorded on one machine holds on CI: any change is easel's own arithmetic.
 * `npx tsx scripts/record-pipeline-hashes.ts` rewrites test/golden/vectors/pipeline-hashes.json; do that only
 * for a change that is meant to change pixels, and say why in the commit.
 */

export const BIT_MODELS = {
  sd1: { family: "sd1", timestep: "int64[1]", inputIds: "int32" },
  "sd1-fp16": { family: "sd1", dtype: "float16", timestep: "float16", inputIds: "int64" },
  "sd2-v": { family: "sd2-v", timestep: "float32[1]" },
  lcm: { family: "lcm", timestep: "float32[]" },
  sdxl: { family: "sdxl", timestep: "float32[]", inputIds: "int64" },
  "sdxl-turbo": { family: "sdxl-turbo", timestep: "int64[1]", inputIds: "int64" },
  turbo: { family: "turbo" },
} as const satisfies Record<string, TinyModelOptions>;

type BitModel = keyof typeof BIT_MODELS;

const SAMPLERS = SCHEDULER_NAMES;

/** A fixed RGB start image for img2img: stripes and a gradient, so every latent position differs. */
export function initImage(width: number, height: number): RgbPixels {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + Math.floor(i / (3 * width)) * 11) & 255;
  return { width, height, data };
}

const BASE: GenerateParams = {
  prompt: "a lighthouse in a storm",
  negativePrompt: "blurry",
  seed: 7,
  steps: 6,
  guidance: 7.5,
  scheduler: "euler_ancestral",
  width: 64,
  height: 48,
  count: 1,
  previewEvery: 2,
};

export interface BitCase {
  name: string;
  model: BitModel;
  params: GenerateParams;
}

const { negativePrompt: _, ...WITHOUT_NEGATIVE } = BASE;

const img2img = (strength: number) => ({ init: { image: initImage(64, 48), strength } });

/** Every case, named `<model> <what>`. */
export const BIT_CASES: BitCase[] = [
  ...SAMPLERS.map((scheduler) => ({
    name: `sd1 ${scheduler} cfg`,
    model: "sd1" as const,
    params: { ...BASE, scheduler },
  })),
  ...(["euler_ancestral", "dpmpp_2m", "pndm", "lcm"] as const).map((scheduler) => ({
    name: `sd1 ${scheduler} no-cfg`,
    model: "sd1" as const,
    params: { ...BASE, scheduler, guidance: 1 },
  })),
  ...(["euler_ancestral", "ddim"] as const).map((scheduler) => ({
    name: `sd1 ${scheduler} two images`,
    model: "sd1" as const,
    params: { ...BASE, scheduler, count: 2, seed: 100 },
  })),
  ...SAMPLERS.map((scheduler) => ({
    name: `sd1 ${scheduler} img2img`,
    model: "sd1" as const,
    params: { ...BASE, scheduler, steps: 10, ...img2img(0.6) },
  })),
  { name: "sd1-fp16 euler_ancestral cfg", model: "sd1-fp16", params: BASE },
  { name: "sd1-fp16 ddim no-cfg", model: "sd1-fp16", params: { ...BASE, scheduler: "ddim", guidance: 1 } },
  {
    name: "sd1-fp16 dpmpp_2m img2img",
    model: "sd1-fp16",
    params: { ...BASE, scheduler: "dpmpp_2m", steps: 8, ...img2img(0.75) },
  },
  ...(["euler", "euler_ancestral", "ddim", "pndm", "dpmpp_2m", "lcm"] as const).map((scheduler) => ({
    name: `sd2-v ${scheduler} cfg`,
    model: "sd2-v" as const,
    params: { ...BASE, scheduler },
  })),
  { name: "lcm lcm", model: "lcm", params: { ...BASE, scheduler: "lcm", steps: 4, guidance: 8 } },
  { name: "lcm lcm img2img", model: "lcm", params: { ...BASE, scheduler: "lcm", steps: 4, ...img2img(0.5) } },
  { name: "sdxl euler cfg", model: "sdxl", params: { ...BASE, scheduler: "euler", steps: 5 } },
  {
    name: "sdxl euler zero negative",
    model: "sdxl",
    params: { ...WITHOUT_NEGATIVE, scheduler: "euler", steps: 5 },
  },
  {
    name: "sdxl euler_ancestral img2img",
    model: "sdxl",
    params: { ...BASE, steps: 8, ...img2img(0.5) },
  },
  { name: "sdxl-turbo one step", model: "sdxl-turbo", params: { ...BASE, steps: 1, guidance: 0 } },
  {
    name: "turbo euler_trailing two steps",
    model: "turbo",
    params: { ...BASE, scheduler: "euler_trailing", steps: 2, guidance: 0 },
  },
];

const sha = (parts: Uint8Array[]): string => {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part);
  return hash.digest("hex");
};

/**
 * Renders every case (each model written once under `dir`) → case name → the sha256 of the final latents' float32
 * bits (where a one-ulp change shows; pixels round most of them away), of the pixels and of the previews.
 */
export async function renderBitCases(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const model of Object.keys(BIT_MODELS) as BitModel[]) {
    const cases = BIT_CASES.filter((c) => c.model === model);
    if (cases.length === 0) continue;
    const folder = join(dir, model);
    await writeTinyModel(
      folder,
      { ...BIT_MODELS[model], arithmetic: "exact", vaeEncoderOutput: "latent_parameters" },
      CLIP_BPE_DIR,
    );
    const loaded = await LdmModel.load(readModelFolder(folder), new SessionFactory({ device: "cpu" }));
    try {
      for (const c of cases) {
        const previews: Uint8Array[] = [];
        const latents: Uint8Array[] = [];
        const result = await generate(loaded, c.params, {
          onProgress: (p) => {
            for (const preview of p.previews ?? []) previews.push(preview.data);
          },
          onFinalLatents: (final) => {
            for (const l of final) latents.push(new Uint8Array(l.buffer, l.byteOffset, l.byteLength).slice());
          },
        });
        out[c.name] = [
          `latents ${sha(latents)}`,
          `pixels ${sha(result.images.map((i) => i.pixels.data))}`,
          `previews ${sha(previews)} (${previews.length})`,
        ].join(" ");
      }
    } finally {
      await loaded.release();
    }
  }
  return out;
}
