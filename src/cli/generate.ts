import { readFile, writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { LdmModel } from "../backends/ldm/ldm-model.ts";
import { readModelFolder, resolveModelDir } from "../backends/ldm/model-folder.ts";
import { SessionFactory } from "../backends/ldm/onnx-session.ts";
import { type GenerateParams, generate } from "../backends/ldm/pipeline.ts";
import { randomSeed } from "../backends/ldm/torch-random.ts";
import type { Config } from "../config.ts";
import { parseAspectRatio, parseSize, sizeForAspect } from "../core/aspect.ts";
import { EaselError } from "../core/errors.ts";
import { formatA1111Parameters } from "../core/parameters.ts";
import { decodeImage } from "../render/decode.ts";
import { makeGrid } from "../render/grid.ts";
import { encodePng } from "../render/png.ts";
import { defaultModelName } from "./models.ts";
import { ProgressBar } from "./progress-bar.ts";

/** `easel generate`: one txt2img or img2img call on a local model, written to PNG files with their settings. */

function numberOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n))
    throw new EaselError("invalid_argument", `--${name} must be a number (got "${value}")`);
  return n;
}

/** Native square side of a family: SD 2.x v-prediction models were trained at 768, the others at 512. */
function nativeSide(family: string): number {
  return family === "sd2-v" ? 768 : 512;
}

export async function generateCommand(args: string[], config: Config): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      model: { type: "string" },
      negative: { type: "string" },
      seed: { type: "string" },
      steps: { type: "string" },
      cfg: { type: "string" },
      sampler: { type: "string" },
      size: { type: "string" },
      ar: { type: "string" },
      n: { type: "string" },
      init: { type: "string" },
      strength: { type: "string" },
      out: { type: "string" },
      device: { type: "string" },
    },
  });
  const prompt = positionals.join(" ").trim();
  if (prompt === "")
    throw new EaselError(
      "invalid_argument",
      'easel generate needs a prompt, e.g. easel generate "a lighthouse"',
    );
  if (values.size && values.ar) throw new EaselError("invalid_argument", "give --size or --ar, not both");
  const device = values.device ?? config.device;
  if (device !== "auto" && device !== "cuda" && device !== "cpu") {
    throw new EaselError("invalid_argument", `--device must be auto, cuda or cpu (got "${device}")`);
  }
  const name = values.model ?? defaultModelName(config);
  const folder = readModelFolder(resolveModelDir(config.modelsDir, name), name);
  const factory = new SessionFactory({
    device,
    deviceId: config.cudaDevice,
    ...(config.threads === undefined ? {} : { intraOpThreads: config.threads }),
    log: (line) => console.error(line),
  });
  const model = await LdmModel.load(folder, factory);
  try {
    let width = nativeSide(model.io.family);
    let height = width;
    if (values.size) {
      const parsed = parseSize(values.size);
      if (!parsed.ok) throw new EaselError("invalid_argument", `--size: ${parsed.reason}`);
      ({ width, height } = parsed.value);
    } else if (values.ar) {
      const parsed = parseAspectRatio(values.ar);
      if (!parsed.ok) throw new EaselError("invalid_argument", `--ar: ${parsed.reason}`);
      ({ width, height } = sizeForAspect(parsed.value, width));
    }
    let init: GenerateParams["init"];
    if (values.init) {
      let bytes: Buffer;
      try {
        bytes = await readFile(values.init);
      } catch (cause) {
        throw new EaselError("invalid_argument", `--init ${values.init} cannot be read`, { cause });
      }
      if (!values.size && !values.ar) {
        // Without a size, keep the start image's shape at about the model's native pixel count.
        const source = await decodeImage(bytes, values.init);
        ({ width, height } = sizeForAspect({ w: source.width, h: source.height }, width));
      }
      const image = await decodeImage(bytes, values.init, {
        width: Math.floor(width / 8) * 8,
        height: Math.floor(height / 8) * 8,
      });
      init = { image, strength: numberOption("strength", values.strength) ?? 0.6 };
    } else if (values.strength !== undefined) {
      throw new EaselError("invalid_argument", "--strength needs --init (the image to start from)");
    }
    const params: GenerateParams = {
      prompt,
      ...(values.negative ? { negativePrompt: values.negative } : {}),
      seed: numberOption("seed", values.seed) ?? randomSeed(),
      steps: numberOption("steps", values.steps) ?? model.defaults.steps,
      guidance: numberOption("cfg", values.cfg) ?? model.defaults.guidance,
      scheduler: values.sampler ?? model.defaults.scheduler,
      width,
      height,
      count: numberOption("n", values.n) ?? 1,
      ...(init ? { init } : {}),
    };
    const bar = new ProgressBar("generating");
    const result = await generate(model, params, { onProgress: (p) => bar.update(p.step, p.total, "steps") });
    bar.finish();

    const out = values.out ?? `easel-${params.seed}.png`;
    const base = out.replace(/\.png$/i, "");
    const written: string[] = [];
    for (const [i, image] of result.images.entries()) {
      const text = formatA1111Parameters({
        prompt,
        ...(params.negativePrompt ? { negativePrompt: params.negativePrompt } : {}),
        steps: result.steps,
        sampler: result.scheduler,
        cfgScale: result.guidance,
        seed: image.seed,
        width: result.width,
        height: result.height,
        model: name,
        ...(result.strength === undefined ? {} : { denoisingStrength: result.strength }),
      });
      const file = result.images.length === 1 ? out : `${base}-${i + 1}.png`;
      await writeFile(file, await encodePng(image.pixels, { parameters: text }));
      written.push(file);
    }
    if (result.images.length > 1) {
      await writeFile(out, await encodePng(makeGrid(result.images.map((i) => i.pixels))));
      written.unshift(`${out} (grid)`);
    }
    const t = result.timings;
    const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
    for (const note of result.notes) console.log(`note: ${note}`);
    console.log(`seed: ${result.images.map((i) => i.seed).join(", ")}`);
    console.log(
      `settings: ${result.width}x${result.height}, ${result.steps} steps, ${result.scheduler}, cfg ${result.guidance}, model ${name} (${model.io.family})`,
    );
    console.log(
      `time: ${s(t.totalMs)} on ${model.provider} (text encoder ${s(t.textEncoderMs)}, UNet ${s(t.unetMs)}, VAE ${s(t.vaeMs)})`,
    );
    console.log(`saved: ${written.join(", ")}`);
  } finally {
    await model.release();
  }
}
