import { existsSync } from "node:fs";
import { join } from "node:path";
import { nativeSideOf } from "../backends/ldm/model-family.ts";
import {
  chooseDefaultModel,
  listModelNames,
  MODEL_NAME,
  readModelFolder,
} from "../backends/ldm/model-folder.ts";
import { CLIP_BPE_DIR } from "../backends/ldm/tokenizer/clip-tokenizer.ts";
import type { Config } from "../config.ts";
import type { Parsed } from "../core/aspect.ts";
import { isEaselError } from "../core/errors.ts";
import { count, UsageError } from "./usage.ts";

/**
 * `easel models …`: list model folders, make a tiny test model, pull a known export. onnxruntime and the ONNX
 * writer are imported by the sub-command that needs them, so the others (and every refusal) start without.
 */

/**
 * The model a command uses when none is named, by the rule `npm start` follows too (chooseDefaultModel):
 * EASEL_MODEL when it is a folder there, else the only folder; otherwise the reason.
 */
export function defaultModelName(config: Config): Parsed<string> {
  try {
    return { ok: true, value: chooseDefaultModel(config.modelsDir, config.model) };
  } catch (err) {
    if (isEaselError(err, "config")) return { ok: false, reason: err.message };
    throw err;
  }
}

/** `easel models` / `easel models list`: each folder's family, dtype and inputs, or why it does not load. */
export async function listModels(config: Config): Promise<void> {
  const names = listModelNames(config.modelsDir);
  if (names.length === 0) {
    console.log(
      `no models in ${config.modelsDir} (see models/README.md, \`easel models pull\`, \`easel models make-tiny\`)`,
    );
    return;
  }
  const [{ LdmModel }, { SessionFactory }] = await Promise.all([
    import("../backends/ldm/ldm-model.ts"),
    import("../backends/ldm/onnx-session.ts"),
  ]);
  const factory = new SessionFactory({ device: "cpu" });
  for (const name of names) {
    try {
      const model = await LdmModel.load(readModelFolder(join(config.modelsDir, name), name), factory);
      const io = model.io;
      const t = io.timestep;
      const d = model.defaults;
      console.log(
        `${name}: ${io.family}, ${io.floatType}, loads: yes; ${io.text2 ? "two text encoders, " : ""}input_ids ${io.text.inputIdsType}${io.text2 ? `/${io.text2.inputIdsType}` : ""}, timestep ${t.type} ${t.shape === "scalar" ? "[]" : t.shape === "one" ? "[1]" : "[batch]"}` +
          `${io.timestepCondDim ? `, timestep_cond ${io.timestepCondDim}` : ""}, text hidden ${io.text2 ? `${io.text.hidden ?? "?"}+${io.text2.hidden ?? "?"}` : (io.text.hidden ?? "?")}, native ${nativeSideOf(io.family)}², ` +
          `img2img: ${model.vaeEncoder ? io.vaeEncoderOutput : "no (no vae_encoder)"}; defaults: ${d.scheduler}, ${count(d.steps, "step")}, cfg ${d.guidance}`,
      );
      await model.release();
    } catch (err) {
      console.log(`${name}: loads: no — ${(err as Error).message}`);
    }
  }
}

/** The variant names of `make-tiny`, read from the module that writes them (it loads the ONNX writer). */
export async function tinyModelVariants(): Promise<readonly string[]> {
  const { TINY_MODEL_VARIANTS } = await import("../backends/ldm/tiny-model.ts");
  return Object.keys(TINY_MODEL_VARIANTS);
}

/** Options of `easel models make-tiny`, as commander parsed them. */
export interface MakeTinyOptions {
  variant: string;
  tokenizer?: string;
}

/** `easel models make-tiny NAME`: writes a tiny random model of one variant to the models folder. */
export async function makeTiny(name: string, options: MakeTinyOptions, config: Config): Promise<void> {
  if (!MODEL_NAME.test(name)) throw new UsageError(`"${name}" is not a model name (letters, digits, . _ -)`);
  const { TINY_MODEL_VARIANTS, writeTinyModel } = await import("../backends/ldm/tiny-model.ts");
  const variants = Object.keys(TINY_MODEL_VARIANTS);
  const variant = options.variant;
  if (!Object.hasOwn(TINY_MODEL_VARIANTS, variant))
    throw new UsageError(`--variant must be one of ${variants.join(", ")} (got "${variant}")`);
  // Tiny models need a real CLIP vocabulary; the project carries one.
  const tokenizer = options.tokenizer ?? CLIP_BPE_DIR;
  if (!existsSync(join(tokenizer, "vocab.json")) || !existsSync(join(tokenizer, "merges.txt"))) {
    throw new UsageError(
      `a tiny model needs a CLIP tokenizer folder (vocab.json, merges.txt); none at ${tokenizer}: pass --tokenizer DIR`,
    );
  }
  const dir = join(config.modelsDir, name);
  await writeTinyModel(dir, TINY_MODEL_VARIANTS[variant as keyof typeof TINY_MODEL_VARIANTS], tokenizer);
  console.log(
    `wrote ${dir} (tiny ${variant} model: random weights, for tests; its images are noise patterns)`,
  );
}
