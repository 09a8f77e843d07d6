import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { isAbsolute, join, relative, resolve } from "node:path";
import { EaselError } from "../../core/errors.ts";

/**
 * Model folders in the diffusers / optimum ONNX export layout (`models/NAME/text_encoder/model.onnx`, …).
 * A model is named by its folder; names are checked so that no request can reach outside the models folder.
 */

/** A model name: a folder name, letters, digits, `.`, `_`, `-`; no path separators, no leading dot. */
export const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** The SD VAE's latent scale when a folder's VAE config does not say (SD 1.x / 2.x). */
export const DEFAULT_VAE_SCALING_FACTOR = 0.18215;

/** The files of one model folder that the pipeline uses. */
export interface ModelFolder {
  name: string;
  dir: string;
  textEncoder: string;
  /** SDXL's second text encoder (OpenCLIP bigG, with projection) and its tokenizer; absent for SD 1.x / 2.x. */
  textEncoder2?: string;
  tokenizer2Dir?: string;
  /** `text_encoder_2/config.json` where present (its `vocab_size` is checked against tokenizer_2). */
  textEncoder2Config: Record<string, unknown>;
  unet: string;
  vaeDecoder: string;
  /** Absent in txt2img-only exports: img2img, variations and upscales then say so. */
  vaeEncoder?: string;
  tokenizerDir: string;
  schedulerConfig: Record<string, unknown>;
  vaeScalingFactor: number;
  /** `unet/config.json` where present (LCM's `time_cond_proj_dim`). */
  unetConfig: Record<string, unknown>;
  /** `model_index.json` where present. */
  modelIndex: Record<string, unknown>;
  /** The VAE config's `force_upcast` (SDXL's VAE: it overflows in float16); false when absent. */
  vaeForceUpcast: boolean;
}

/** Checks a model name and returns its folder inside `modelsDir`, or a clear error listing what exists. */
export function resolveModelDir(modelsDir: string, name: string): string {
  const known = listModelNames(modelsDir);
  if (!MODEL_NAME.test(name) || name.includes("..")) {
    throw new EaselError(
      "invalid_argument",
      `"${name.replace(/[^\x20-\x7e]/g, "?").slice(0, 64)}" is not a model name (letters, digits, . _ -); known: ${known.join(", ") || "none"}`,
    );
  }
  const dir = resolve(modelsDir, name);
  const rel = relative(resolve(modelsDir), dir);
  if (rel === "" || rel.startsWith("..") || isAbsolute(rel)) {
    throw new EaselError("invalid_argument", `model "${name}" is outside the models folder`);
  }
  if (!known.includes(name)) {
    throw new EaselError(
      "invalid_argument",
      `unknown model "${name}"; models in ${modelsDir}: ${known.join(", ") || "none (see models/README.md)"}`,
    );
  }
  return dir;
}

/** The model folders in `modelsDir` (subfolders with a `unet/`), sorted by name. */
export function listModelNames(modelsDir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(modelsDir);
  } catch {
    return [];
  }
  return entries
    .filter((entry) => MODEL_NAME.test(entry) && isDirectory(join(modelsDir, entry, "unet")))
    .sort();
}

/**
 * The model a command or the bot uses when none is named: `configured` (EASEL_MODEL) when it is one of the
 * folders, else the only folder. Several folders and no EASEL_MODEL is refused rather than guessed, naming the
 * folders: the CLI and `npm start` follow this one rule.
 */
export function chooseDefaultModel(modelsDir: string, configured: string | undefined): string {
  const names = listModelNames(modelsDir);
  if (configured !== undefined) {
    if (names.includes(configured)) return configured;
    throw new EaselError(
      "config",
      `EASEL_MODEL=${configured} is not a model folder in ${modelsDir} (found: ${names.join(", ") || "none"})`,
    );
  }
  if (names.length === 1 && names[0] !== undefined) return names[0];
  throw new EaselError(
    "config",
    names.length === 0
      ? `no model in ${modelsDir}: run \`easel models make-tiny tiny\` for a test model or \`easel models pull NAME\``
      : `several models in ${modelsDir} (${names.join(", ")}): set EASEL_MODEL to the one to use by default (or pass --model NAME to the CLI)`,
  );
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function readJson(path: string, required: boolean): Record<string, unknown> | undefined {
  if (!existsSync(path)) {
    if (required) throw new EaselError("model_file", `model file ${path} is missing`);
    return undefined;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (cause) {
    throw new EaselError("model_file", `model file ${path} is not valid JSON`, { cause });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new EaselError("model_file", `model file ${path} must hold a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

function requireFile(path: string, what: string): string {
  if (!existsSync(path)) throw new EaselError("model_file", `model file ${path} is missing (${what})`);
  return path;
}

/** Reads the layout of one model folder; every missing or malformed required part is named. */
export function readModelFolder(dir: string, name = dir.split(/[\\/]/).pop() ?? dir): ModelFolder {
  if (!isDirectory(dir)) throw new EaselError("model_file", `model folder ${dir} does not exist`);
  const vaeEncoderPath = join(dir, "vae_encoder", "model.onnx");
  const tokenizerDir = join(dir, "tokenizer");
  requireFile(join(tokenizerDir, "vocab.json"), "the CLIP tokenizer");
  requireFile(join(tokenizerDir, "merges.txt"), "the CLIP tokenizer");
  const textEncoder2Path = join(dir, "text_encoder_2", "model.onnx");
  const tokenizer2Dir = join(dir, "tokenizer_2");
  if (existsSync(textEncoder2Path)) {
    requireFile(join(tokenizer2Dir, "vocab.json"), "the second CLIP tokenizer, for text_encoder_2");
    requireFile(join(tokenizer2Dir, "merges.txt"), "the second CLIP tokenizer, for text_encoder_2");
  }
  const vaeConfig =
    readJson(join(dir, "vae_decoder", "config.json"), false) ??
    readJson(join(dir, "vae", "config.json"), false);
  const scaling = vaeConfig?.scaling_factor;
  return {
    name,
    dir,
    textEncoder: requireFile(join(dir, "text_encoder", "model.onnx"), "the text encoder"),
    ...(existsSync(textEncoder2Path) ? { textEncoder2: textEncoder2Path, tokenizer2Dir } : {}),
    textEncoder2Config: readJson(join(dir, "text_encoder_2", "config.json"), false) ?? {},
    unet: requireFile(join(dir, "unet", "model.onnx"), "the UNet"),
    vaeDecoder: requireFile(join(dir, "vae_decoder", "model.onnx"), "the VAE decoder"),
    ...(existsSync(vaeEncoderPath) ? { vaeEncoder: vaeEncoderPath } : {}),
    tokenizerDir,
    schedulerConfig: readJson(join(dir, "scheduler", "scheduler_config.json"), true) ?? {},
    vaeScalingFactor:
      typeof scaling === "number" && Number.isFinite(scaling) && scaling > 0
        ? scaling
        : DEFAULT_VAE_SCALING_FACTOR,
    unetConfig: readJson(join(dir, "unet", "config.json"), false) ?? {},
    vaeForceUpcast: vaeConfig?.force_upcast === true,
    modelIndex: readJson(join(dir, "model_index.json"), false) ?? {},
  };
}
