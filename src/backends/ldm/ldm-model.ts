import { readFileSync } from "node:fs";
import { EaselError } from "../../core/errors.ts";
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

/** The model families easel recognises; SDXL is recognised only to say it is not supported yet. */
export type ModelFamily = "sd1" | "sd2" | "sd2-v" | "turbo" | "lcm";

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
  };
  inputIdsType: "int32" | "int64";
  textHidden: number | undefined;
  textOutput: string;
  unetOutput: string;
  timestep: TimestepInput;
  /** LCM's guidance embedding size, when the UNet takes `timestep_cond`. */
  timestepCondDim: number | undefined;
  /** A batch size fixed by the export (static shapes), else undefined; calls are split or padded to it. */
  unetBatch: number | undefined;
  textBatch: number | undefined;
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

/** Reads the interfaces of the four sessions and checks they form a model easel can run. */
export function describeInterfaces(
  folder: ModelFolder,
  sessions: {
    textEncoder: InferenceSession;
    unet: InferenceSession;
    vaeDecoder: InferenceSession;
    vaeEncoder?: InferenceSession;
  },
  padId: number,
): ModelInterface {
  const { textEncoder, unet, vaeDecoder, vaeEncoder } = sessions;
  const unsupported = unet.inputNames.filter(
    (n: string) => !["sample", "timestep", "encoder_hidden_states", "timestep_cond"].includes(n),
  );
  if (unsupported.length > 0) {
    const sdxl = unsupported.includes("text_embeds") || unsupported.includes("time_ids");
    throw new EaselError(
      "not_supported",
      `${folder.unet}: ${sdxl ? "SDXL models are" : "this UNet is"} not supported yet (extra inputs: ${unsupported.join(", ")})`,
    );
  }
  for (const required of ["sample", "timestep", "encoder_hidden_states"]) {
    if (!unet.inputNames.includes(required)) {
      throw new EaselError("model_file", `${folder.unet}: the UNet has no "${required}" input`);
    }
  }
  const idsMeta = meta(textEncoder, "input", "input_ids");
  if (idsMeta === undefined)
    throw new EaselError("model_file", `${folder.textEncoder}: no "input_ids" input`);
  if (idsMeta.type !== "int32" && idsMeta.type !== "int64") {
    throw new EaselError(
      "not_supported",
      `${folder.textEncoder}: input_ids of type ${idsMeta.type} (expected int32 or int64)`,
    );
  }
  const textOutput = firstName(textEncoder.outputNames, "last_hidden_state", folder.textEncoder);
  const hiddenDim = meta(textEncoder, "output", textOutput)?.shape?.[2];

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
  // Only a UNet that takes the guidance embedding is an LCM model proper; an LCM-LoRA merged into SD 1.x keeps
  // the plain interface (and classifier-free guidance) with an LCMScheduler config.
  const family: ModelFamily =
    timestepCondDim !== undefined
      ? "lcm"
      : config.prediction_type === "v_prediction"
        ? "sd2-v"
        : config.timestep_spacing === "trailing" && padId === 0
          ? "turbo"
          : padId === 0
            ? "sd2"
            : "sd1";

  return {
    family,
    floatType: floatTypeOf(meta(unet, "input", "sample"), folder.unet),
    floatTypes: {
      sample: floatTypeOf(meta(unet, "input", "sample"), folder.unet),
      hiddenStates: floatTypeOf(meta(unet, "input", "encoder_hidden_states"), folder.unet),
      timestepCond: floatTypeOf(condMeta, folder.unet),
      vaeDecoder: floatTypeOf(meta(vaeDecoder, "input", vaeDecoderInput), folder.vaeDecoder),
      vaeEncoder: vaeEncoder
        ? floatTypeOf(
            meta(vaeEncoder, "input", firstName(vaeEncoder.inputNames, "sample", folder.vaeEncoder ?? "")),
            folder.vaeEncoder ?? "",
          )
        : "float32",
    },
    inputIdsType: idsMeta.type,
    textHidden: typeof hiddenDim === "number" ? hiddenDim : undefined,
    textOutput,
    unetOutput: firstName(unet.outputNames, "out_sample", folder.unet),
    unetBatch: fixedDim(meta(unet, "input", "sample")?.shape?.[0]),
    textBatch: fixedDim(idsMeta.shape?.[0]),
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

/** Defaults per family: SD-Turbo takes 1 step without guidance, LCM 4 steps with embedded guidance. */
export function modelDefaults(folder: ModelFolder, family: ModelFamily): ModelDefaults {
  const className =
    typeof folder.schedulerConfig._class_name === "string" ? folder.schedulerConfig._class_name : "";
  const own = schedulerNameForClass(className, folder.schedulerConfig);
  switch (family) {
    case "turbo":
      return { scheduler: own ?? "euler_trailing", steps: 1, guidance: 0 };
    case "lcm":
      return { scheduler: "lcm", steps: 4, guidance: 8 };
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

/** A model's sessions, tokenizer and interfaces, loaded once and reused for every job. */
export class LdmModel {
  private constructor(
    readonly folder: ModelFolder,
    readonly tokenizer: ClipTokenizer,
    readonly textEncoder: InferenceSession,
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
    const checkerFiles = findSafetyChecker(folder.dir) ?? lentChecker(options.lentSafetyChecker);
    const textEncoder = await factory.create(folder.textEncoder);
    const unet = await factory.create(folder.unet);
    const vaeDecoder = await factory.create(folder.vaeDecoder);
    const vaeEncoder = folder.vaeEncoder ? await loadVaeEncoder(folder.vaeEncoder, factory) : undefined;
    let safetyChecker: SafetyChecker | undefined;
    try {
      safetyChecker = checkerFiles ? await SafetyChecker.load(checkerFiles, factory) : undefined;
      const io = describeInterfaces(
        folder,
        { textEncoder, unet, vaeDecoder, ...(vaeEncoder ? { vaeEncoder } : {}) },
        tokenizer.config.padId,
      );
      return new LdmModel(
        folder,
        tokenizer,
        textEncoder,
        unet,
        vaeDecoder,
        vaeEncoder,
        io,
        modelDefaults(folder, io.family),
        factory.provider,
        safetyChecker,
      );
    } catch (err) {
      await Promise.all([textEncoder, unet, vaeDecoder, vaeEncoder, safetyChecker].map((s) => s?.release()));
      throw err;
    }
  }

  /** Frees the sessions (idle unload, model switch, shutdown). */
  async release(): Promise<void> {
    await Promise.all(
      [this.textEncoder, this.unet, this.vaeDecoder, this.vaeEncoder, this.safetyChecker].map((s) =>
        s?.release(),
      ),
    );
  }
}

export { ort };
