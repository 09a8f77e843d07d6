import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { LdmModel } from "../backends/ldm/ldm-model.ts";
import {
  listModelNames,
  MODEL_NAME,
  readModelFolder,
  resolveModelDir,
} from "../backends/ldm/model-folder.ts";
import { SessionFactory } from "../backends/ldm/onnx-session.ts";
import {
  TINY_MODEL_VARIANTS,
  type TinyModelVariantName,
  writeTinyModel,
} from "../backends/ldm/tiny-model.ts";
import { CLIP_BPE_DIR } from "../backends/ldm/tokenizer/clip-tokenizer.ts";
import type { Config } from "../config.ts";
import { EaselError } from "../core/errors.ts";
import { pullCommand } from "./pull.ts";

/** `easel models …`: list model folders, make a tiny test model, pull a known export. */

/** The model a command uses when none is named: EASEL_MODEL, else the only folder in the models folder. */
export function defaultModelName(config: Config): string {
  if (config.model) return config.model;
  const names = listModelNames(config.modelsDir);
  if (names.length === 1 && names[0] !== undefined) return names[0];
  throw new EaselError(
    "invalid_argument",
    names.length === 0
      ? `no model in ${config.modelsDir}: run \`easel models make-tiny tiny\` for a test model or \`easel models pull NAME\``
      : `several models in ${config.modelsDir} (${names.join(", ")}): pass --model NAME or set EASEL_MODEL`,
  );
}

/** Where the project's tokenizer fixture lives: tiny models need a real CLIP vocabulary. */
const TOKENIZER_FIXTURE = CLIP_BPE_DIR;

async function listModels(config: Config): Promise<void> {
  const names = listModelNames(config.modelsDir);
  if (names.length === 0) {
    console.log(
      `no models in ${config.modelsDir} (see models/README.md, \`easel models pull\`, \`easel models make-tiny\`)`,
    );
    return;
  }
  const factory = new SessionFactory({ device: "cpu" });
  for (const name of names) {
    try {
      const model = await LdmModel.load(readModelFolder(join(config.modelsDir, name), name), factory);
      const io = model.io;
      const t = io.timestep;
      console.log(
        `${name}: ${io.family}, ${io.floatType}, loads: yes; input_ids ${io.inputIdsType}, timestep ${t.type} ${t.shape === "scalar" ? "[]" : t.shape === "one" ? "[1]" : "[batch]"}` +
          `${io.timestepCondDim ? `, timestep_cond ${io.timestepCondDim}` : ""}, text hidden ${io.textHidden ?? "?"}, ` +
          `img2img: ${model.vaeEncoder ? io.vaeEncoderOutput : "no (no vae_encoder)"}; defaults: ${model.defaults.scheduler}, ${model.defaults.steps} steps, cfg ${model.defaults.guidance}`,
      );
      await model.release();
    } catch (err) {
      console.log(`${name}: loads: no — ${(err as Error).message}`);
    }
  }
}

async function makeTiny(args: string[], config: Config): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { variant: { type: "string", default: "sd1" }, tokenizer: { type: "string" } },
  });
  const name = positionals[0];
  const variants = Object.keys(TINY_MODEL_VARIANTS);
  if (!name) throw new EaselError("invalid_argument", "easel models make-tiny NAME [--variant V]");
  if (!MODEL_NAME.test(name)) {
    throw new EaselError("invalid_argument", `"${name}" is not a model name (letters, digits, . _ -)`);
  }
  if (!variants.includes(values.variant)) {
    throw new EaselError(
      "invalid_argument",
      `unknown variant "${values.variant}"; variants: ${variants.join(", ")}`,
    );
  }
  const dir = join(config.modelsDir, name);
  const tokenizer = values.tokenizer ?? TOKENIZER_FIXTURE;
  if (!existsSync(join(tokenizer, "vocab.json")) || !existsSync(join(tokenizer, "merges.txt"))) {
    throw new EaselError(
      "invalid_argument",
      `a tiny model needs a CLIP tokenizer folder (vocab.json, merges.txt); none at ${tokenizer}: pass --tokenizer DIR`,
    );
  }
  await writeTinyModel(dir, TINY_MODEL_VARIANTS[values.variant as TinyModelVariantName], tokenizer);
  resolveModelDir(config.modelsDir, name);
  console.log(
    `wrote ${dir} (tiny ${values.variant} model: random weights, for tests; its images are noise patterns)`,
  );
}

export async function modelsCommand(args: string[], config: Config): Promise<void> {
  const [sub, ...rest] = args;
  switch (sub) {
    case undefined:
    case "list":
      return listModels(config);
    case "make-tiny":
      return makeTiny(rest, config);
    case "pull":
      return pullCommand(rest, config);
    default:
      throw new EaselError("invalid_argument", `unknown "easel models ${sub}"; use list, make-tiny or pull`);
  }
}
