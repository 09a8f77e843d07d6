import { readFileSync } from "node:fs";
import { join } from "node:path";
import { EaselError } from "../../core/errors.ts";
import type { ModelFamily } from "./model-family.ts";
import type { ModelFolder } from "./model-folder.ts";
import { ort, type SessionFactory } from "./onnx-session.ts";
import { findSafetyChecker, SafetyChecker, type SafetyCheckerFiles } from "./safety-checker.ts";
import { type SchedulerName, schedulerNameForClass } from "./schedulers/index.ts";
import { ClipTokenizer } from "./tokenizer/clip-tokenizer.ts";
import { drawsInGraph, exposePosteriorParameters } from "./vae-encoder-graph.ts";

/**
 * One Stable Diffusion model loaded into onnxruntime sessions, with what its exports look like. Input names,
 * dtypes and ranks are read from session metadata (never assumed from a model family), because real exports
 * differ: int32 or int64 `input_ids`; int64 [1], float [1] / [batch], float scalar or float16 timesteps; fp16
 * graphs; `latent_sample` or `latent_parameters` from the VAE encoder.
 */

/** One text encoder's interface. */
export interface TextEncoderInterface {
  inputIdsType: "int32" | "int64";
  /** A batch size fixed by the export (static shapes), else undefined. */
  batch: number | undefined;
  /** The output the UNet reads: `last_hidden_state` (SD 1.x / 2.x) or the penultimate `hidden_states.N` (SDXL). */
  hiddenOutput: string;
  hidden: number | undefined;
  /** SDXL's text_encoder_2: its pooled, projected `text_embeds` output. */
  pooledOutput: string | undefined;
}

/** SDXL's added UNet conditions. */
export interface AddedConditions {
  /** time_ids per row: 6 (original size, crop, target size) or 5 (original size, crop, aesthetic score: refiners). */
  timeIdsLength: 5 | 6;
  textEmbedsType: FloatType;
  timeIdsType: FloatType;
  /** model_index.json's `force_zeros_for_empty_prompt` (diffusers' default: true). */
  zeroEmptyNegative: boolean;
}

/** Float element types the graphs use for latents and embeddings. */
export type FloatType = "float32" | "float16";

/** How the UNet wants its timestep. */
export interface TimestepInput {
  type: "int64" | "float32" | "float16";
  /** `scalar`: shape []; `one`: shape [1] (broadcast over the batch); `batch`: one value per batch row. */
  shape: "scalar" | "one" | "batch";
}

/** Everything the pipeline needs to know about a loaded model's interfaces. */
export interface ModelInterface {
  family: ModelFamily;
  /** The UNet's float type (what `easel models` shows). */
  floatType: FloatType;
  /** Each float input's own type: exports may mix an fp16 UNet with an fp32 VAE. */
  floatTypes: {
    sample: FloatType;
    hiddenStates: FloatType;
    timestepCond: FloatType;
    vaeDecoder: FloatType;
    vaeEncoder: FloatType;
    /** The UNet's prediction (the pipeline preallocates it). */
    unetOutput: FloatType;
  };
  /** The text encoder, and SDXL's second one (its hidden states are concatenated after the first's). */
  text: TextEncoderInterface;
  text2: TextEncoderInterface | undefined;
  /** SDXL's text_embeds and time_ids; undefined for other families. */
  added: AddedConditions | undefined;
  unetOutput: string;
  timestep: TimestepInput;
  /** LCM's guidance embedding size, when the UNet takes `timestep_cond`. */
  timestepCondDim: number | undefined;
  /** A batch size fixed by the export (static shapes), else undefined; calls are split or padded to it. */
  unetBatch: number | undefined;
  /** Latent height and width fixed by the export (it renders only one size), else undefined. */
  unetLatentSize: [number, number] | undefined;
  vaeDecoderInput: string;
  vaeDecoderOutput: string;
  vaeEncoderInput: string | undefined;
  /** `latent_sample`: the graph samples itself; `latent_parameters`: mean‖logvar, sampled with the seeded generator. */
  vaeEncoderOutput: "latent_sample" | "latent_parameters" | undefined;
}

/** Settings a model is best run with when a request does not say. */
export interface ModelDefaults {
  scheduler: SchedulerName;
  steps: number;
  guidance: number;
}

type InferenceSession = ort.InferenceSession;
type TensorMeta = ort.InferenceSession.ValueMetadata & {
  type?: string;
  shape?: ReadonlyArray<number | string>;
};

function meta(session: InferenceSession, kind: "input" | "output", name: string): TensorMeta | undefined {
  const list = (kind === "input" ? session.inputMetadata : session.outputMetadata) as readonly TensorMeta[];
  return list.find((m) => m.name === name);
}

function firstName(names: readonly string[], preferred: string, what: string): string {
  if (names.includes(preferred)) return preferred;
  const first = names[0];
  if (first === undefined) throw new EaselError("model_file", `${what} has no ${preferred}`);
  return first;
}

function floatTypeOf(m: TensorMeta | undefined, file: string): FloatType {
  if (m?.type === "float16") return "float16";
  if (m?.type === undefined || m.type === "float32") return "float32";
  throw new EaselError(
    "not_supported",
    `${file}: input ${m.name} has type ${m.type}; easel runs float32 or float16 models`,
  );
}

/** A dimension the export fixed to a number (static shapes), or undefined for a symbolic one. */
function fixedDim(dim: number | string | undefined): number | undefined {
  return typeof dim === "number" && dim > 0 ? dim : undefined;
}

function latentSizeOf(shape: ReadonlyArray<number | string> | undefined): [number, number] | undefined {
  const h = fixedDim(shape?.[2]);
  const w = fixedDim(shape?.[3]);
  return h !== undefined && w !== undefined ? [h, w] : undefined;
}

/** The UNet inputs easel feeds; any other input is refused by name. */
const UNET_INPUTS = [
  "sample",
  "timestep",
  "encoder_hidden_states",
  "timestep_cond",
  "text_embeds",
  "time_ids",
];

function inputIdsTypeOf(session: InferenceSession, file: string): "int32" | "int64" {
  const idsMeta = meta(session, "input", "input_ids");
  if (idsMeta === undefined) throw new EaselError("model_file", `${file}: no "input_ids" input`);
  if (idsMeta.type !== "int32" && idsMeta.type !== "int64") {
    throw new EaselError(
      "not_supported",
      `${file}: input_ids of type ${idsMeta.type} (expected int32 or int64)`,
    );
  }
  return idsMeta.type;
}

/**
 * The output diffusers' SDXL pipelines take from a text encoder, `hidden_states[-2]`: the penultimate of the
 * `hidden_states.0 … hidden_states.N` outputs that optimum's exports have.
 */
function penultimateHiddenState(session: InferenceSession, file: string): string {
  const layers = session.outputNames
    .map((name: string) => /^hidden_states\.(\d+)$/.exec(name)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number);
  const last = Math.max(-1, ...layers);
  if (last < 1) {
    throw new EaselError(
      "model_file",
      `${file}: an SDXL text encoder must output its hidden states (hidden_states.0 … hidden_states.N, as optimum exports them): SDXL reads the penultimate layer`,
    );
  }
  return `hidden_states.${last - 1}`;
}

function describeTextEncoder(session: InferenceSession, file: string, sdxl: boolean): TextEncoderInterface {
  const hiddenOutput = sdxl
    ? penultimateHiddenState(session, file)
    : firstName(session.outputNames, "last_hidden_state", file);
  const hidden = meta(session, "output", hiddenOutput)?.shape?.[2];
  return {
    inputIdsType: inputIdsTypeOf(session, file),
    batch: fixedDim(meta(session, "input", "input_ids")?.shape?.[0]),
    hiddenOutput,
    hidden: typeof hidden === "number" ? hidden : undefined,
    pooledOutput: undefined,
  };
}

/** SDXL's second encoder: it must have the projection (`text_embeds`), as CLIPTextModelWithProjection exports. */
function describeSecondEncoder(session: InferenceSession, file: string): TextEncoderInterface {
  if (!session.outputNames.includes("text_embeds")) {
    throw new EaselError(
      "model_file",
      `${file}: SDXL's text_encoder_2 must output text_embeds (CLIPTextModelWithProjection); found ${session.outputNames.join(", ")}`,
    );
  }
  return { ...describeTextEncoder(session, file, true), pooledOutput: "text_embeds" };
}

/** A fixed size that disagrees with the one expected is refused, naming both; symbolic sizes pass. */
function expectDim(actual: number | string | undefined, expected: number | undefined, what: string): void {
  const fixed = fixedDim(actual);
  if (fixed !== undefined && expected !== undefined && fixed !== expected) {
    throw new EaselError("model_file", `${what} is ${fixed}, expected ${expected}`);
  }
}

/** SDXL's added conditions, checked against the second encoder; a folder that mixes parts is refused. */
function describeAdded(
  folder: ModelFolder,
  unet: InferenceSession,
  text: TextEncoderInterface,
  text2: TextEncoderInterface,
  textEncoder2: InferenceSession,
): AddedConditions {
  const unetFile = folder.unet;
  const embedsMeta = meta(unet, "input", "text_embeds");
  const timeMeta = meta(unet, "input", "time_ids");
  const pooledDim = fixedDim(meta(textEncoder2, "output", "text_embeds")?.shape?.[1]);
  expectDim(
    embedsMeta?.shape?.[1],
    pooledDim,
    `${unetFile}: text_embeds width (text_encoder_2's text_embeds)`,
  );
  const cross = meta(unet, "input", "encoder_hidden_states")?.shape?.[2];
  const both =
    text.hidden !== undefined && text2.hidden !== undefined ? text.hidden + text2.hidden : undefined;
  expectDim(
    cross,
    both,
    `${unetFile}: encoder_hidden_states width (the two text encoders' hidden sizes together)`,
  );
  // Refiners condition on an aesthetic score instead of the target size (diffusers' requires_aesthetics_score).
  const aesthetic = folder.modelIndex.requires_aesthetics_score === true;
  const length = fixedDim(timeMeta?.shape?.[1]) ?? (aesthetic ? 5 : 6);
  if (length !== 5 && length !== 6) {
    throw new EaselError(
      "model_file",
      `${unetFile}: time_ids has ${length} values per row, expected 6 (or 5 for a refiner)`,
    );
  }
  return {
    timeIdsLength: length,
    textEmbedsType: floatTypeOf(embedsMeta, unetFile),
    timeIdsType: floatTypeOf(timeMeta, unetFile),
    zeroEmptyNegative: folder.modelIndex.force_zeros_for_empty_prompt !== false,
  };
}

/** Reads the interfaces of the sessions and checks they form a model easel can run; what does not is named. */
export function describeInterfaces(
  folder: ModelFolder,
  sessions: {
    textEncoder: InferenceSession;
    textEncoder2?: InferenceSession;
    unet: InferenceSession;
    vaeDecoder: InferenceSession;
    vaeEncoder?: InferenceSession;
  },
  padId: number,
): ModelInterface {
  const { textEncoder, textEncoder2, unet, vaeDecoder, vaeEncoder } = sessions;
  const unsupported = unet.inputNames.filter((n: string) => !UNET_INPUTS.includes(n));
  if (unsupported.length > 0) {
    throw new EaselError(
      "not_supported",
      `${folder.unet}: this UNet is not supported (extra inputs: ${unsupported.join(", ")})`,
    );
  }
  for (const required of ["sample", "timestep", "encoder_hidden_states"]) {
    if (!unet.inputNames.includes(required)) {
      throw new EaselError("model_file", `${folder.unet}: the UNet has no "${required}" input`);
    }
  }
  const sdxl = unet.inputNames.includes("text_embeds") || unet.inputNames.includes("time_ids");
  if (sdxl && !(unet.inputNames.includes("text_embeds") && unet.inputNames.includes("time_ids"))) {
    throw new EaselError("model_file", `${folder.unet}: an SDXL UNet takes both text_embeds and time_ids`);
  }
  if (sdxl && (textEncoder2 === undefined || folder.textEncoder2 === undefined)) {
    throw new EaselError(
      "model_file",
      `${join(folder.dir, "text_encoder_2", "model.onnx")} is missing: this is an SDXL UNet (it takes text_embeds and time_ids), which needs both text encoders`,
    );
  }
  if (!sdxl && folder.textEncoder2 !== undefined) {
    throw new EaselError(
      "model_file",
      `${folder.textEncoder2}: a second text encoder, but ${folder.unet} takes no text_embeds or time_ids (not an SDXL UNet)`,
    );
  }
  const text = describeTextEncoder(textEncoder, folder.textEncoder, sdxl);
  const text2 =
    sdxl && textEncoder2 && folder.textEncoder2
      ? describeSecondEncoder(textEncoder2, folder.textEncoder2)
      : undefined;
  const added = text2 && textEncoder2 ? describeAdded(folder, unet, text, text2, textEncoder2) : undefined;

  const tMeta = meta(unet, "input", "timestep");
  const tType = tMeta?.type ?? "float32";
  if (tType !== "int64" && tType !== "float32" && tType !== "float16") {
    throw new EaselError("not_supported", `${folder.unet}: timestep of type ${tType} is not supported`);
  }
  const tShape = tMeta?.shape ?? [1];
  const timestep: TimestepInput = {
    type: tType,
    shape: tShape.length === 0 ? "scalar" : tShape[0] === 1 ? "one" : "batch",
  };
  const condMeta = meta(unet, "input", "timestep_cond");
  const condDim = condMeta?.shape?.[1];
  const configCondDim = folder.unetConfig.time_cond_proj_dim;
  const timestepCondDim =
    condMeta === undefined
      ? undefined
      : typeof condDim === "number"
        ? condDim
        : typeof configCondDim === "number"
          ? configCondDim
          : 256;

  const vaeDecoderInput = firstName(vaeDecoder.inputNames, "latent_sample", folder.vaeDecoder);
  const vaeDecoderOutput = firstName(vaeDecoder.outputNames, "sample", folder.vaeDecoder);
  let vaeEncoderOutput: ModelInterface["vaeEncoderOutput"];
  if (vaeEncoder) {
    if (vaeEncoder.outputNames.includes("latent_parameters")) vaeEncoderOutput = "latent_parameters";
    else if (vaeEncoder.outputNames.includes("latent_sample")) vaeEncoderOutput = "latent_sample";
    else
      throw new EaselError(
        "model_file",
        `${folder.vaeEncoder}: no latent_sample or latent_parameters output`,
      );
  }

  const config = folder.schedulerConfig;
  const trailing = config.timestep_spacing === "trailing";
  // Only a UNet that takes the guidance embedding is an LCM model proper; an LCM-LoRA merged into SD 1.x keeps
  // the plain interface (and classifier-free guidance) with an LCMScheduler config.
  const family: ModelFamily = sdxl
    ? trailing
      ? "sdxl-turbo"
      : "sdxl"
    : timestepCondDim !== undefined
      ? "lcm"
      : config.prediction_type === "v_prediction"
        ? "sd2-v"
        : trailing && padId === 0
          ? "turbo"
          : padId === 0
            ? "sd2"
            : "sd1";

  const vaeDecoderType = floatTypeOf(meta(vaeDecoder, "input", vaeDecoderInput), folder.vaeDecoder);
  if (sdxl && vaeDecoderType === "float16" && folder.vaeForceUpcast) {
    // diffusers decodes such a VAE in float32 (force_upcast); an fp16 graph cannot be upcast at run time.
    throw new EaselError(
      "not_supported",
      `${folder.vaeDecoder}: a float16 SDXL VAE decoder whose config says force_upcast overflows (black or NaN images); export the VAE in float32, or use the fp16-fix VAE (madebyollin/sdxl-vae-fp16-fix, force_upcast false)`,
    );
  }

  return {
    family,
    floatType: floatTypeOf(meta(unet, "input", "sample"), folder.unet),
    floatTypes: {
      sample: floatTypeOf(meta(unet, "input", "sample"), folder.unet),
      hiddenStates: floatTypeOf(meta(unet, "input", "encoder_hidden_states"), folder.unet),
      timestepCond: floatTypeOf(condMeta, folder.unet),
      vaeDecoder: vaeDecoderType,
      vaeEncoder: vaeEncoder
        ? floatTypeOf(
            meta(vaeEncoder, "input", firstName(vaeEncoder.inputNames, "sample", folder.vaeEncoder ?? "")),
            folder.vaeEncoder ?? "",
          )
        : "float32",
      unetOutput: floatTypeOf(
        meta(unet, "output", firstName(unet.outputNames, "out_sample", folder.unet)),
        folder.unet,
      ),
    },
    text,
    text2,
    added,
    unetOutput: firstName(unet.outputNames, "out_sample", folder.unet),
    unetBatch: fixedDim(meta(unet, "input", "sample")?.shape?.[0]),
    unetLatentSize: latentSizeOf(meta(unet, "input", "sample")?.shape),
    timestep,
    timestepCondDim,
    vaeDecoderInput,
    vaeDecoderOutput,
    vaeEncoderInput: vaeEncoder
      ? firstName(vaeEncoder.inputNames, "sample", folder.vaeEncoder ?? "")
      : undefined,
    vaeEncoderOutput,
  };
}

/** Defaults per family: SD-Turbo and SDXL-Turbo take 1 step without guidance, LCM 4 steps with embedded guidance. */
export function modelDefaults(folder: ModelFolder, family: ModelFamily): ModelDefaults {
  const className =
    typeof folder.schedulerConfig._class_name === "string" ? folder.schedulerConfig._class_name : "";
  const own = schedulerNameForClass(className, folder.schedulerConfig);
  switch (family) {
    case "turbo":
      return { scheduler: own ?? "euler_trailing", steps: 1, guidance: 0 };
    case "lcm":
      return { scheduler: "lcm", steps: 4, guidance: 8 };
    case "sdxl-turbo":
      // Distilled for 1–4 steps without guidance; its own scheduler config (Euler ancestral, trailing).
      return { scheduler: own ?? "euler_ancestral", steps: 1, guidance: 0 };
    case "sdxl":
      // 30 steps and cfg 7: the settings SDXL bots and UIs (Fooocus, A1111) start from; diffusers' 50 and 5.0 are
      // slower for little gain.
      return { scheduler: own ?? "euler", steps: 30, guidance: 7 };
    default:
      // An LCM-LoRA merged model: few steps and little or no guidance, as its authors recommend.
      if (own === "lcm") return { scheduler: "lcm", steps: 4, guidance: 1 };
      return { scheduler: own ?? "euler_ancestral", steps: 25, guidance: 7.5 };
  }
}

/**
 * The VAE encoder's session; one that draws its sample inside the graph is loaded with the draw cut away, so
 * that the sample follows the seed (vae-encoder-graph.ts).
 */
async function loadVaeEncoder(path: string, factory: SessionFactory): Promise<InferenceSession> {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch {
    return factory.create(path); // says that the file is missing
  }
  // The bytes already read go to onnxruntime as they are: the file is not read a second time.
  return factory.create(path, drawsInGraph(bytes) ? exposePosteriorParameters(bytes, path) : bytes);
}

/** The checker files of the folder lent with EASEL_SAFETY_CHECKER; one without them is refused, naming it. */
function lentChecker(dir: string | undefined): SafetyCheckerFiles | undefined {
  if (dir === undefined) return undefined;
  const files = findSafetyChecker(dir);
  if (!files) {
    throw new EaselError(
      "model_file",
      `EASEL_SAFETY_CHECKER=${dir} has no safety_checker/model.onnx and feature_extractor/preprocessor_config.json`,
    );
  }
  return files;
}

/**
 * SDXL's second tokenizer, checked against its encoder: a tokenizer_2 from another model (another vocabulary,
 * another context length) would feed ids the encoder's table does not hold.
 */
function loadSecondTokenizer(folder: ModelFolder, first: ClipTokenizer): ClipTokenizer | undefined {
  if (folder.tokenizer2Dir === undefined || folder.textEncoder2 === undefined) return undefined;
  const second = ClipTokenizer.fromFolder(folder.tokenizer2Dir);
  const where = join(folder.tokenizer2Dir, "vocab.json");
  // optimum's exports carry text_encoder_2/config.json; without one there is nothing to check against.
  const vocabSize = folder.textEncoder2Config.vocab_size;
  if (typeof vocabSize === "number" && vocabSize !== second.vocabSize) {
    throw new EaselError(
      "model_file",
      `${where}: tokenizer_2 has ${second.vocabSize} tokens, but ${join(folder.dir, "text_encoder_2", "config.json")} says text_encoder_2 has ${vocabSize}: the tokenizer does not match its encoder`,
    );
  }
  if (second.config.contextLength !== first.config.contextLength) {
    throw new EaselError(
      "model_file",
      `${join(folder.tokenizer2Dir, "tokenizer_config.json")}: tokenizer_2 pads to ${second.config.contextLength} tokens, tokenizer to ${first.config.contextLength}: SDXL joins the two encoders token by token, so they must match`,
    );
  }
  return second;
}

type Loading = Promise<InferenceSession> | undefined;

/** Every session of `loads`, or, when one fails, the first error after the others that loaded are released. */
async function allOrRelease<T extends readonly Loading[]>(
  loads: T,
): Promise<{ [K in keyof T]: Awaited<T[K]> }> {
  const settled = await Promise.allSettled(loads.map((load) => load ?? Promise.resolve(undefined)));
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) {
    await Promise.all(settled.map((r) => (r.status === "fulfilled" ? r.value?.release() : undefined)));
    throw failed.reason;
  }
  return settled.map((r) => (r as PromiseFulfilledResult<unknown>).value) as {
    [K in keyof T]: Awaited<T[K]>;
  };
}

/** A model's sessions, tokenizers and interfaces, loaded once and reused for every job. */
export class LdmModel {
  private constructor(
    readonly folder: ModelFolder,
    readonly tokenizer: ClipTokenizer,
    /** SDXL's second tokenizer (OpenCLIP's, padding with `!`); undefined for other families. */
    readonly tokenizer2: ClipTokenizer | undefined,
    readonly textEncoder: InferenceSession,
    readonly textEncoder2: InferenceSession | undefined,
    readonly unet: InferenceSession,
    readonly vaeDecoder: InferenceSession,
    readonly vaeEncoder: InferenceSession | undefined,
    readonly io: ModelInterface,
    readonly defaults: ModelDefaults,
    readonly provider: "cuda" | "cpu",
    /** The model's own safety checker, or the one lent with EASEL_SAFETY_CHECKER; undefined: none. */
    readonly safetyChecker: SafetyChecker | undefined,
  ) {}

  /**
   * Loads every part of `folder` on the factory's provider; errors name the file at fault. `lentSafetyChecker`:
   * a folder with `safety_checker/` and `feature_extractor/` used when the model has no checker of its own.
   */
  static async load(
    folder: ModelFolder,
    factory: SessionFactory,
    options: { lentSafetyChecker?: string } = {},
  ): Promise<LdmModel> {
    const tokenizer = ClipTokenizer.fromFolder(folder.tokenizerDir);
    const tokenizer2 = loadSecondTokenizer(folder, tokenizer);
    const checkerFiles = findSafetyChecker(folder.dir) ?? lentChecker(options.lentSafetyChecker);
    // The sessions load side by side (onnxruntime builds each on its own threads); if one fails, those that
    // loaded are freed before its error is passed on.
    const [textEncoder, textEncoder2, unet, vaeDecoder, vaeEncoder] = await allOrRelease([
      factory.create(folder.textEncoder),
      folder.textEncoder2 ? factory.create(folder.textEncoder2) : undefined,
      factory.create(folder.unet),
      factory.create(folder.vaeDecoder),
      folder.vaeEncoder ? loadVaeEncoder(folder.vaeEncoder, factory) : undefined,
    ] as const);
    let safetyChecker: SafetyChecker | undefined;
    try {
      safetyChecker = checkerFiles ? await SafetyChecker.load(checkerFiles, factory) : undefined;
      const io = describeInterfaces(
        folder,
        {
          textEncoder,
          unet,
          vaeDecoder,
          ...(textEncoder2 ? { textEncoder2 } : {}),
          ...(vaeEncoder ? { vaeEncoder } : {}),
        },
        tokenizer.config.padId,
      );
      return new LdmModel(
        folder,
        tokenizer,
        tokenizer2,
        textEncoder,
        textEncoder2,
        unet,
        vaeDecoder,
        vaeEncoder,
        io,
        modelDefaults(folder, io.family),
        factory.provider,
        safetyChecker,
      );
    } catch (err) {
      await Promise.all(
        [textEncoder, textEncoder2, unet, vaeDecoder, vaeEncoder, safetyChecker].map((s) => s?.release()),
      );
      throw err;
    }
  }

  /** Frees the sessions (idle unload, model switch, shutdown). */
  async release(): Promise<void> {
    await Promise.all(
      [
        this.textEncoder,
        this.textEncoder2,
        this.unet,
        this.vaeDecoder,
        this.vaeEncoder,
        this.safetyChecker,
      ].map((s) => s?.release()),
    );
  }
}

export { ort };
