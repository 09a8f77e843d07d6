/**
 * Builder of tiny, deterministic, Stable-Diffusion-shaped ONNX model folders for tests and benchmarks.
 *
 * No real weights can be downloaded where the tests run, yet the loader and pipeline must be exercised against the
 * interfaces real exports have. The folders written here copy those interfaces (input/output names, dtypes, ranks,
 * dynamic dimension names, the diffusers/optimum folder layout, the JSON configs) while the graphs inside are a few
 * cheap ops that still use every input, so a test notices when an input is dropped or mis-fed.
 * It mirrors the real export layouts of models/README.md.
 */
import { copyFile, mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import onnxProto, { type onnx as OnnxTypes } from "onnx-proto";
import { EaselError } from "../../core/errors.ts";
import { float32ToFloat16 } from "./float16.ts";

// onnx-proto is CommonJS; Node's ESM loader cannot see its named export, so take it off the default export.
const { onnx } = onnxProto;

/** Model family whose configs and extra inputs a tiny folder imitates. */
export type TinyModelFamily = "sd1" | "sd2" | "sd2-v" | "turbo" | "lcm" | "sdxl" | "sdxl-turbo";

/** SDXL and SDXL-Turbo share the architecture: two text encoders, text_embeds and time_ids. */
const twoEncoders = (family: TinyModelFamily): boolean => family === "sdxl" || family === "sdxl-turbo";

/**
 * UNet timestep input as real exports declare it:
 * `int64[1]` (optimum ≤ 1.23, SD-Turbo web export), `float32[1]`, `float32[batch]` (diffusers' legacy script),
 * `float32[]` (optimum ≥ 1.24, a scalar), `float16` ([1], fp16 exports), `float16[]` (optimum ≥ 1.24 fp16 scalar).
 */
export type TinyTimestepForm =
  | "int64[1]"
  | "float32[1]"
  | "float32[batch]"
  | "float32[]"
  | "float16"
  | "float16[]";

/** What to build; every field has a default (see {@link resolveTinyModelOptions}). */
export interface TinyModelOptions {
  /** Which real model's configs, scheduler and extra UNet inputs to imitate. */
  family?: TinyModelFamily;
  /** UNet `timestep` dtype and rank. `float32[batch]` also switches to the legacy diffusers dimension names. */
  timestep?: TinyTimestepForm;
  /** Text encoder `input_ids` dtype. */
  inputIds?: "int32" | "int64";
  /** dtype of every float input, output and weight of text encoder, UNet and VAE. */
  dtype?: "float32" | "float16";
  /**
   * VAE encoder output: `latent_sample` [B,4,h,w], drawn at random inside the graph as real legacy exports do, or
   * the Gaussian's mean‖logvar `latent_parameters` [B,8,h,w].
   */
  vaeEncoderOutput?: "latent_sample" | "latent_parameters";
  /** Put the UNet weights in `unet/weights.pb` (ONNX external data), as the diffusers exporter does. */
  externalWeights?: boolean;
  /** Text hidden size (the real ones are 768/1024); small by default. */
  hidden?: number;
  /** UNet internal width; the compute per UNet run grows with its square. */
  channels?: number;
  /**
   * Add `safety_checker/model.onnx` and `feature_extractor/preprocessor_config.json` in the interface of the
   * hub's SD 1.x exports. The tiny checker flags an image when the mean of its `clip_input` is above
   * `safetyThreshold` (so tests can choose which images it flags).
   */
  safetyChecker?: boolean;
  safetyThreshold?: number;
  /**
   * `exact`: every graph built only from operators whose float results are exactly rounded, one operation at a
   * time (Gather, Slice, Concat, Tile, Add, Mul, Cast, DepthToSpace), so outputs are the same bits on every CPU
   * and in every onnxruntime build. Hash tests of easel's own arithmetic use it; `mixed` (the default) has the
   * convolutions, reductions and tanh of the interface tests.
   */
  arithmetic?: "mixed" | "exact";
}

/** {@link TinyModelOptions} with every default filled in. */
export type ResolvedTinyModelOptions = Required<TinyModelOptions>;

/** Defaults of a tiny model; `hidden` is per family unless given (see {@link resolveTinyModelOptions}). */
export const DEFAULT_TINY_MODEL_OPTIONS = {
  family: "sd1",
  timestep: "int64[1]",
  inputIds: "int32",
  dtype: "float32",
  vaeEncoderOutput: "latent_sample",
  externalWeights: false,
  channels: 8,
  safetyChecker: false,
  safetyThreshold: 0,
  arithmetic: "mixed",
} as const satisfies Omit<ResolvedTinyModelOptions, "hidden">;

/** Text hidden sizes differ per family (like 768 vs 1024) so code that hard-codes one is caught. */
const DEFAULT_HIDDEN: Record<TinyModelFamily, number> = {
  sd1: 32,
  lcm: 32,
  sdxl: 32,
  "sdxl-turbo": 32,
  sd2: 48,
  "sd2-v": 48,
  turbo: 48,
};

/**
 * Named variants that together cover every timestep form, both dtypes, both `input_ids` dtypes, both VAE encoder
 * outputs, external weights, each family, and a larger `bench` model for timing.
 */
export const TINY_MODEL_VARIANTS = {
  sd1: { family: "sd1" },
  "sd1-float-timestep": { family: "sd1", timestep: "float32[1]" },
  "sd1-legacy": { family: "sd1", timestep: "float32[batch]", inputIds: "int32", externalWeights: true },
  "sd1-optimum": {
    family: "sd1",
    timestep: "float32[]",
    inputIds: "int64",
    vaeEncoderOutput: "latent_parameters",
  },
  "sd1-fp16": { family: "sd1", dtype: "float16", timestep: "float16" },
  "sd1-optimum-fp16": {
    family: "sd1",
    dtype: "float16",
    timestep: "float16[]",
    inputIds: "int64",
    vaeEncoderOutput: "latent_parameters",
  },
  sd2: { family: "sd2" },
  "sd2-v": { family: "sd2-v" },
  turbo: { family: "turbo" },
  lcm: { family: "lcm" },
  sdxl: { family: "sdxl", timestep: "float32[]", inputIds: "int64", vaeEncoderOutput: "latent_parameters" },
  "sdxl-turbo": { family: "sdxl-turbo", timestep: "int64[1]", inputIds: "int64" },
  "sd1-safety": { family: "sd1", safetyChecker: true },
  bench: { family: "sd1", hidden: 64, channels: 96 },
  "sdxl-bench": {
    family: "sdxl",
    hidden: 64,
    channels: 96,
    timestep: "float32[]",
    inputIds: "int64",
    vaeEncoderOutput: "latent_parameters",
  },
} as const satisfies Record<string, TinyModelOptions>;

/** Name of one of {@link TINY_MODEL_VARIANTS}. */
export type TinyModelVariantName = keyof typeof TINY_MODEL_VARIANTS;

const FAMILIES: readonly TinyModelFamily[] = ["sd1", "sd2", "sd2-v", "turbo", "lcm", "sdxl", "sdxl-turbo"];
const TIMESTEPS: readonly TinyTimestepForm[] = [
  "int64[1]",
  "float32[1]",
  "float32[batch]",
  "float32[]",
  "float16",
  "float16[]",
];

/** Fills defaults and rejects values the graphs cannot be built with, with a message naming the field. */
export function resolveTinyModelOptions(options: TinyModelOptions = {}): ResolvedTinyModelOptions {
  const family = options.family ?? DEFAULT_TINY_MODEL_OPTIONS.family;
  const resolved: ResolvedTinyModelOptions = {
    family,
    timestep: options.timestep ?? DEFAULT_TINY_MODEL_OPTIONS.timestep,
    inputIds: options.inputIds ?? DEFAULT_TINY_MODEL_OPTIONS.inputIds,
    dtype: options.dtype ?? DEFAULT_TINY_MODEL_OPTIONS.dtype,
    vaeEncoderOutput: options.vaeEncoderOutput ?? DEFAULT_TINY_MODEL_OPTIONS.vaeEncoderOutput,
    externalWeights: options.externalWeights ?? DEFAULT_TINY_MODEL_OPTIONS.externalWeights,
    hidden: options.hidden ?? DEFAULT_HIDDEN[family] ?? 32,
    channels: options.channels ?? DEFAULT_TINY_MODEL_OPTIONS.channels,
    safetyChecker: options.safetyChecker ?? DEFAULT_TINY_MODEL_OPTIONS.safetyChecker,
    safetyThreshold: options.safetyThreshold ?? DEFAULT_TINY_MODEL_OPTIONS.safetyThreshold,
    arithmetic: options.arithmetic ?? DEFAULT_TINY_MODEL_OPTIONS.arithmetic,
  };
  const fail = (message: string): never => {
    throw new EaselError("invalid_argument", `tiny model: ${message}`);
  };
  if (!FAMILIES.includes(resolved.family)) fail(`unknown family "${String(resolved.family)}"`);
  if (!TIMESTEPS.includes(resolved.timestep)) fail(`unknown timestep form "${String(resolved.timestep)}"`);
  if (resolved.inputIds !== "int32" && resolved.inputIds !== "int64") fail("inputIds must be int32 or int64");
  if (resolved.dtype !== "float32" && resolved.dtype !== "float16") fail("dtype must be float32 or float16");
  if (resolved.vaeEncoderOutput !== "latent_sample" && resolved.vaeEncoderOutput !== "latent_parameters") {
    fail("vaeEncoderOutput must be latent_sample or latent_parameters");
  }
  if (typeof resolved.safetyChecker !== "boolean") fail("safetyChecker must be true or false");
  if (!Number.isFinite(resolved.safetyThreshold)) fail("safetyThreshold must be a number");
  if (resolved.arithmetic !== "mixed" && resolved.arithmetic !== "exact")
    fail("arithmetic must be mixed or exact");
  if (resolved.arithmetic === "exact" && resolved.vaeEncoderOutput !== "latent_parameters") {
    // The in-graph draw of latent_sample is onnxruntime's own random stream: not the same bits everywhere.
    fail("arithmetic exact needs vaeEncoderOutput latent_parameters");
  }
  if (resolved.arithmetic === "exact" && resolved.hidden < 4) fail("arithmetic exact needs hidden ≥ 4");
  for (const key of ["hidden", "channels"] as const) {
    const value = resolved[key];
    if (!Number.isInteger(value) || value < 1 || value > 1024)
      fail(`${key} must be an integer in 1..1024, got ${value}`);
  }
  return resolved;
}

// ---------------------------------------------------------------------------------------------------------------
// A small ONNX graph builder over onnx-proto's plain-object interfaces.

/** ONNX TensorProto.DataType codes used here. */
const DT = { FLOAT: 1, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10 } as const;
type FloatCode = typeof DT.FLOAT | typeof DT.FLOAT16;
/** A dimension: a fixed size or a symbolic (dim_param) name. */
type Dim = number | string;
type Attr = OnnxTypes.IAttributeProto;

const OPSET = 17;
const IR_VERSION = 8;
/** CLIP's context length; real text encoders have exactly 77 position embeddings. */
const SEQUENCE = 77;
/** Rows of the hashed token table: ids are taken mod this, so files stay small while every id has an embedding. */
const TOKEN_TABLE_ROWS = 1024;
/** onnx.save_model's default size_threshold: smaller tensors stay inside model.onnx even with external data. */
const EXTERNAL_THRESHOLD_BYTES = 1024;
const LATENT_CHANNELS = 4;
const SDXL_TEXT_EMBEDS = 1280;
const SDXL_TIME_IDS = 6;
const LCM_TIME_COND_DIM = 256;

const attrInt = (name: string, i: number): Attr => ({ name, type: onnx.AttributeProto.AttributeType.INT, i });
const attrInts = (name: string, ints: number[]): Attr => ({
  name,
  type: onnx.AttributeProto.AttributeType.INTS,
  ints,
});
const attrString = (name: string, s: string): Attr => ({
  name,
  type: onnx.AttributeProto.AttributeType.STRING,
  s: new TextEncoder().encode(s),
});

/** FNV-1a: turns a tensor's name into a seed, so a tensor's values do not depend on build order. */
function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** xorshift32 uniforms in [-1, 1): a fixed, platform-independent stream (Math.random is neither). */
function uniforms(seedText: string, count: number): Float64Array {
  let state = hashString(seedText) || 0x9e3779b9;
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    out[i] = state / 2 ** 31 - 1;
  }
  return out;
}

/** Little-endian bytes of `values` as float32 or float16, whatever the host's byte order. */
function floatBytes(values: ArrayLike<number>, code: FloatCode): Uint8Array {
  const width = code === DT.FLOAT ? 4 : 2;
  const bytes = new Uint8Array(values.length * width);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) {
    const v = values[i] ?? 0;
    if (code === DT.FLOAT) view.setFloat32(i * 4, v, true);
    else view.setUint16(i * 2, float32ToFloat16(v), true);
  }
  return bytes;
}

function int64Bytes(values: readonly number[]): Uint8Array {
  const bytes = new Uint8Array(values.length * 8);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) view.setBigInt64(i * 8, BigInt(values[i] ?? 0), true);
  return bytes;
}

const product = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

class GraphBuilder {
  readonly nodes: OnnxTypes.INodeProto[] = [];
  readonly initializers: OnnxTypes.ITensorProto[] = [];
  readonly inputs: OnnxTypes.IValueInfoProto[] = [];
  readonly outputs: OnnxTypes.IValueInfoProto[] = [];
  private counter = 0;

  /** `prefix` names the graph and seeds its weights; `float` is the dtype of every float tensor in it. */
  constructor(
    readonly prefix: string,
    readonly float: FloatCode,
  ) {}

  input(name: string, elemType: number, dims: readonly Dim[]): string {
    this.inputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  output(name: string, elemType: number, dims: readonly Dim[]): void {
    this.outputs.push(valueInfo(name, elemType, dims));
  }

  /** Adds a node; its single output is `out` (a graph output name) or a fresh internal name. */
  op(opType: string, inputs: readonly string[], attribute: Attr[] = [], out?: string): string {
    const output = out ?? `/${opType}_${this.counter}`;
    this.nodes.push({
      name: `/${opType}_${this.counter}`,
      opType,
      input: [...inputs],
      output: [output],
      attribute,
    });
    this.counter++;
    return output;
  }

  /** A weight with seeded uniform values in [-scale, scale) plus `offset`. */
  weight(name: string, dims: readonly number[], scale: number, offset = 0): string {
    const values = uniforms(`${this.prefix}/${name}`, product(dims)).map((u) => u * scale + offset);
    return this.floats(name, dims, values);
  }

  /** A float constant in the graph's float dtype. */
  floats(name: string, dims: readonly number[], values: ArrayLike<number>): string {
    this.initializers.push({
      name,
      dims: [...dims],
      dataType: this.float,
      rawData: floatBytes(values, this.float),
    });
    return name;
  }

  scalar(name: string, value: number): string {
    return this.floats(name, [], [value]);
  }

  int64s(name: string, values: readonly number[], dims: readonly number[] = [values.length]): string {
    this.initializers.push({ name, dims: [...dims], dataType: DT.INT64, rawData: int64Bytes(values) });
    return name;
  }

  /** Serializes the graph; with `externalFile`, tensors ≥ 1 KiB move into that file as onnx.save_model does. */
  encode(docString: string, externalFile?: string): { model: Uint8Array; external?: Uint8Array } {
    let external: Uint8Array | undefined;
    let initializers = this.initializers;
    if (externalFile !== undefined) {
      const chunks: Uint8Array[] = [];
      let offset = 0;
      initializers = this.initializers.map((tensor) => {
        const raw = tensor.rawData;
        if (raw == null || raw.length < EXTERNAL_THRESHOLD_BYTES) return tensor;
        const entry: OnnxTypes.ITensorProto = {
          name: tensor.name ?? null,
          dims: tensor.dims ?? null,
          dataType: tensor.dataType ?? null,
          dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
          externalData: [
            { key: "location", value: externalFile },
            { key: "offset", value: String(offset) },
            { key: "length", value: String(raw.length) },
          ],
        };
        chunks.push(raw);
        offset += raw.length;
        return entry;
      });
      external = new Uint8Array(offset);
      let at = 0;
      for (const chunk of chunks) {
        external.set(chunk, at);
        at += chunk.length;
      }
    }
    const model: OnnxTypes.IModelProto = {
      irVersion: IR_VERSION,
      opsetImport: [{ domain: "", version: OPSET }],
      producerName: "easel-tiny-model",
      producerVersion: "1",
      docString,
      graph: {
        name: this.prefix,
        node: this.nodes,
        initializer: initializers,
        input: this.inputs,
        output: this.outputs,
      },
    };
    const bytes = onnx.ModelProto.encode(model).finish();
    return external === undefined ? { model: bytes } : { model: bytes, external };
  }
}

function valueInfo(name: string, elemType: number, dims: readonly Dim[]): OnnxTypes.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The four (five for SDXL) graphs.

/**
 * Dimension lists of every tensor. optimum names dynamic dims batch_size/height_latent/…; diffusers' legacy script
 * names them batch/channels/height/width and even leaves the latent channel dim symbolic, which a loader reading
 * `shape[1]` as a number must survive. The legacy script marks no output dynamic; those names are ours.
 */
interface Dims {
  batch: string;
  sequence: string;
  timestep: Dim[];
  /** UNet sample/out_sample. */
  latent: Dim[];
  /** VAE decoder input. */
  decoderIn: Dim[];
  /** VAE decoder output. */
  decoded: Dim[];
  /** VAE encoder input. */
  image: Dim[];
  /** VAE encoder output, without the channel dim. */
  encoded: [Dim, Dim];
}

function dimsFor(o: ResolvedTinyModelOptions): Dims {
  if (o.timestep === "float32[batch]") {
    return {
      batch: "batch",
      sequence: "sequence",
      timestep: ["batch"],
      latent: ["batch", "channels", "height", "width"],
      decoderIn: ["batch", "channels", "height", "width"],
      decoded: ["batch", 3, "image_height", "image_width"],
      image: ["batch", "channels", "height", "width"],
      encoded: ["latent_height", "latent_width"],
    };
  }
  return {
    batch: "batch_size",
    sequence: "sequence_length",
    timestep: o.timestep.endsWith("[]") ? [] : [1],
    latent: ["batch_size", LATENT_CHANNELS, "height", "width"],
    decoderIn: ["batch_size", LATENT_CHANNELS, "height_latent", "width_latent"],
    decoded: ["batch_size", 3, "height", "width"],
    image: ["batch_size", 3, "height", "width"],
    encoded: ["height_latent", "width_latent"],
  };
}

const floatCode = (o: ResolvedTinyModelOptions): FloatCode => (o.dtype === "float16" ? DT.FLOAT16 : DT.FLOAT);

/**
 * The `input_ids` input and CLIP's embeddings: a hashed token table (ids mod its rows) plus the position rows
 * sliced to the sequence length, as CLIP's position_ids buffer is sliced. Gather, Slice and Add: exact.
 */
function textEmbeddings(g: GraphBuilder, o: ResolvedTinyModelOptions, names: Dims, hidden: number): string {
  const idsType = o.inputIds === "int32" ? DT.INT32 : DT.INT64;
  const ids = g.input("input_ids", idsType, [names.batch, names.sequence]);
  const ids64 = g.op("Cast", [ids], [attrInt("to", DT.INT64)]);
  const rows = g.op("Mod", [ids64, g.int64s("token_table_rows", [TOKEN_TABLE_ROWS], [])]);
  const tokens = g.op("Gather", [
    g.weight("embeddings.token_embedding.weight", [TOKEN_TABLE_ROWS, hidden], 1),
    rows,
  ]);
  const seqLen = g.op("Shape", [ids], [attrInt("start", 1), attrInt("end", 2)]);
  const positions = g.op("Slice", [
    g.weight("embeddings.position_embedding.weight", [SEQUENCE, hidden], 0.5),
    g.int64s("slice_start", [0]),
    seqLen,
    g.int64s("slice_axes", [0]),
  ]);
  return g.op("Add", [tokens, positions]);
}

/**
 * CLIP-text-shaped encoder: hashed token embedding + position embedding, mixed with the sequence mean so every token
 * moves every output row, then MatMul + Tanh. `projection` adds CLIPTextModelWithProjection's `text_embeds` instead
 * of `pooler_output` (SDXL's second encoder).
 */
function buildTextEncoder(
  o: ResolvedTinyModelOptions,
  names: Dims,
  prefix: string,
  hidden: number,
  projection?: number,
): Uint8Array {
  const g = new GraphBuilder(prefix, floatCode(o));
  const embedded = textEmbeddings(g, o, names, hidden);
  const mean = g.op("ReduceMean", [embedded], [attrInts("axes", [1]), attrInt("keepdims", 1)]);
  const mixed = g.op("Add", [embedded, mean]);
  const projected = g.op("MatMul", [
    mixed,
    g.weight("encoder.weight", [hidden, hidden], Math.sqrt(3 / hidden)),
  ]);
  const last = g.op("Tanh", [projected], [], "last_hidden_state");
  const pooled = g.op("ReduceMean", [last], [attrInts("axes", [1]), attrInt("keepdims", 0)]);
  const states = [names.batch, names.sequence, hidden];
  if (projection === undefined) {
    g.op("Identity", [pooled], [], "pooler_output");
    g.output("last_hidden_state", g.float, states);
    g.output("pooler_output", g.float, [names.batch, hidden]);
  } else {
    const projWeight = g.weight("text_projection.weight", [hidden, projection], Math.sqrt(3 / hidden));
    g.op("MatMul", [pooled, projWeight], [], "text_embeds");
    g.output("text_embeds", g.float, [names.batch, projection]);
    g.output("last_hidden_state", g.float, states);
  }
  if (twoEncoders(o.family)) {
    // optimum's SDXL exports add every layer's hidden states (output_hidden_states); the pipeline reads the
    // penultimate, here a state distinct from the last so that taking the wrong one shows.
    g.op("Identity", [embedded], [], "hidden_states.0");
    g.op("Tanh", [mixed], [], "hidden_states.1");
    g.op("Identity", [last], [], "hidden_states.2");
    for (const layer of [0, 1, 2]) g.output(`hidden_states.${layer}`, g.float, states);
  }
  return g.encode(`easel tiny ${o.family} ${prefix}`).model;
}

/**
 * UNet-shaped noise predictor: 3×3 conv in → gain and bias from sin/cos(t/300) → + projection of the mean text state
 * (and timestep_cond / text_embeds / time_ids) → tanh → residual 3×3 conv → 3×3 conv out, added to 0.5·sample.
 * The 0.5·sample term dominates so the prediction stays order 1 through a 50-step loop.
 */
function buildUnet(
  o: ResolvedTinyModelOptions,
  names: Dims,
  crossDim: number,
): { model: Uint8Array; external?: Uint8Array } {
  const g = new GraphBuilder("unet", floatCode(o));
  const c = o.channels;
  const b = names.batch;
  const sample = g.input("sample", g.float, names.latent);
  const timestepType =
    o.timestep === "int64[1]" ? DT.INT64 : o.timestep.startsWith("float16") ? DT.FLOAT16 : DT.FLOAT;
  const timestep = g.input("timestep", timestepType, names.timestep);
  const context = g.input("encoder_hidden_states", g.float, [b, names.sequence, crossDim]);

  // [] / [1] / [B] all become [N,1,1,1] and broadcast over the batch, as ORT broadcasts a [1] timestep for CFG.
  const t = g.op("Reshape", [
    g.op("Cast", [timestep], [attrInt("to", g.float)]),
    g.int64s("t_shape", [-1, 1, 1, 1]),
  ]);
  const phase = g.op("Mul", [t, g.scalar("t_scale", 1 / 300)]);
  const gain = g.op("Add", [g.scalar("one", 1), g.op("Mul", [g.scalar("half", 0.5), g.op("Sin", [phase])])]);
  const timeBias = g.op("Mul", [g.op("Cos", [phase]), g.weight("time_embedding.weight", [1, c, 1, 1], 0.5)]);

  const contextMean = g.op("ReduceMean", [context], [attrInts("axes", [1]), attrInt("keepdims", 0)]);
  let cond = g.op("MatMul", [
    contextMean,
    g.weight("context_proj.weight", [crossDim, c], Math.sqrt(3 / crossDim)),
  ]);
  if (o.family === "lcm") {
    const timeCond = g.input("timestep_cond", g.float, [b, LCM_TIME_COND_DIM]);
    const w = g.weight("time_cond_proj.weight", [LCM_TIME_COND_DIM, c], Math.sqrt(3 / LCM_TIME_COND_DIM));
    cond = g.op("Add", [cond, g.op("MatMul", [timeCond, w])]);
  }
  if (twoEncoders(o.family)) {
    const textEmbeds = g.input("text_embeds", g.float, [b, SDXL_TEXT_EMBEDS]);
    const timeIds = g.input("time_ids", g.float, [b, SDXL_TIME_IDS]);
    const wText = g.weight("add_text_proj.weight", [SDXL_TEXT_EMBEDS, c], Math.sqrt(3 / SDXL_TEXT_EMBEDS));
    // time_ids hold pixel sizes (~1024), hence the tiny weights.
    const wTime = g.weight("add_time_proj.weight", [SDXL_TIME_IDS, c], 1 / 4096);
    cond = g.op("Add", [cond, g.op("MatMul", [textEmbeds, wText])]);
    cond = g.op("Add", [cond, g.op("MatMul", [timeIds, wTime])]);
  }
  const cond4 = g.op("Unsqueeze", [cond, g.int64s("unsqueeze_axes", [2, 3])]);

  const conv3 = (x: string, name: string, cin: number, cout: number, scale: number): string =>
    g.op(
      "Conv",
      [
        x,
        g.weight(`${name}.weight`, [cout, cin, 3, 3], scale * Math.sqrt(3 / (9 * cin))),
        g.weight(`${name}.bias`, [cout], 0.1),
      ],
      [attrInts("kernel_shape", [3, 3]), attrInts("pads", [1, 1, 1, 1])],
    );
  const convIn = conv3(sample, "conv_in", LATENT_CHANNELS, c, 1);
  const h = g.op("Tanh", [g.op("Add", [g.op("Add", [g.op("Mul", [convIn, gain]), timeBias]), cond4])]);
  const mid = g.op("Add", [h, g.op("Tanh", [conv3(h, "mid_block", c, c, 1)])]);
  const convOut = conv3(mid, "conv_out", c, LATENT_CHANNELS, 0.2);
  g.op("Add", [g.op("Mul", [sample, g.scalar("skip", 0.5)]), convOut], [], "out_sample");
  g.output("out_sample", g.float, names.latent);
  return g.encode(`easel tiny ${o.family} unet`, o.externalWeights ? "weights.pb" : undefined);
}

/** VAE-decoder-shaped upsampler: 3×3 conv 4→3·64, DepthToSpace ×8, tanh → an image in [-1, 1]. */
function buildVaeDecoder(o: ResolvedTinyModelOptions, names: Dims): Uint8Array {
  const g = new GraphBuilder("vae_decoder", floatCode(o));
  const latent = g.input("latent_sample", g.float, names.decoderIn);
  const conv = g.op(
    "Conv",
    [
      latent,
      // Latents arrive divided by the scaling factor (≈ ±5), hence the small weights.
      g.weight("conv.weight", [3 * 64, LATENT_CHANNELS, 3, 3], 0.035),
      g.weight("conv.bias", [3 * 64], 0.1),
    ],
    [attrInts("kernel_shape", [3, 3]), attrInts("pads", [1, 1, 1, 1])],
  );
  const upsampled = g.op("DepthToSpace", [conv], [attrInt("blocksize", 8), attrString("mode", "DCR")]);
  g.op("Tanh", [upsampled], [], "sample");
  g.output("sample", g.float, names.decoded);
  return g.encode(`easel tiny ${o.family} vae_decoder`).model;
}

/**
 * VAE-encoder-shaped downsampler: 8×8 average pool, 1×1 conv to the Gaussian's mean‖logvar (8 channels). With
 * `latent_parameters` those are the output (optimum ≥ 1.24); with `latent_sample` the graph draws the sample
 * itself, as legacy exports do (diffusers' DiagonalGaussianDistribution traced: split, clamp, exp, a
 * RandomNormalLike, mean + std · noise).
 */
function buildVaeEncoder(o: ResolvedTinyModelOptions, names: Dims): Uint8Array {
  const g = new GraphBuilder("vae_encoder", floatCode(o));
  const image = g.input("sample", g.float, names.image);
  const pooled = g.op(
    "AveragePool",
    [image],
    [attrInts("kernel_shape", [8, 8]), attrInts("strides", [8, 8])],
  );
  const outChannels = 2 * LATENT_CHANNELS;
  const weight = g.weight("quant_conv.weight", [outChannels, 3, 1, 1], 2);
  // The logvar half gets a bias near -6 (σ ≈ 0.05), like a trained VAE's confident posterior.
  const biasValues = uniforms("vae_encoder/quant_conv.bias", outChannels).map((u, i) =>
    i >= LATENT_CHANNELS ? -6 + 0.5 * u : 0.1 * u,
  );
  const bias = g.floats("quant_conv.bias", [outChannels], biasValues);
  if (o.vaeEncoderOutput === "latent_parameters") {
    g.op("Conv", [pooled, weight, bias], [attrInts("kernel_shape", [1, 1])], "latent_parameters");
    g.output("latent_parameters", g.float, [names.batch, outChannels, ...names.encoded]);
    return g.encode(`easel tiny ${o.family} vae_encoder`).model;
  }
  const parameters = g.op("Conv", [pooled, weight, bias], [attrInts("kernel_shape", [1, 1])]);
  const split = g.int64s("split_sizes", [LATENT_CHANNELS, LATENT_CHANNELS]);
  g.nodes.push({
    name: "/Split",
    opType: "Split",
    input: [parameters, split],
    output: ["/mean", "/logvar"],
    attribute: [attrInt("axis", 1)],
  });
  const logvar = g.op("Clip", ["/logvar", g.scalar("clamp_min", -30), g.scalar("clamp_max", 20)]);
  const std = g.op("Exp", [g.op("Mul", [logvar, g.scalar("half", 0.5)])]);
  const noise = g.op("RandomNormalLike", ["/mean"]);
  g.op("Add", ["/mean", g.op("Mul", [std, noise])], [], "latent_sample");
  g.output("latent_sample", g.float, [names.batch, LATENT_CHANNELS, ...names.encoded]);
  return g.encode(`easel tiny ${o.family} vae_encoder`).model;
}

// ---------------------------------------------------------------------------------------------------------------
// The same interfaces in exact arithmetic (`arithmetic: "exact"`): float32 inside, one correctly rounded operation
// at a time, so the bits out depend on easel's inputs alone. Convolutions, reductions and tanh are left out: their
// kernels differ between CPUs (vector width, summation order, approximations), and so would their last bits.

const INT_MAX = 2 ** 31 - 1;

/** A float32 graph with inputs and outputs in the model's dtype: casts at the edges (exact both ways). */
class ExactGraph extends GraphBuilder {
  constructor(
    prefix: string,
    readonly io: FloatCode,
  ) {
    super(prefix, DT.FLOAT);
  }

  /** A float input in the model's dtype, as float32. */
  floatInput(name: string, dims: readonly Dim[]): string {
    const value = this.input(name, this.io, dims);
    return this.io === DT.FLOAT ? value : this.op("Cast", [value], [attrInt("to", DT.FLOAT)]);
  }

  /** A float32 value as the graph output `name` in the model's dtype. */
  floatOutput(value: string, name: string, dims: readonly Dim[]): void {
    if (this.io === DT.FLOAT) this.op("Identity", [value], [], name);
    else this.op("Cast", [value], [attrInt("to", this.io)], name);
    this.output(name, this.io, dims);
  }

  /** `x[..., start:end, ...]` along each of `axes` (with `steps`). */
  slice(x: string, starts: number[], ends: number[], axes: number[], steps?: number[]): string {
    const id = this.nodes.length;
    const inputs = [
      x,
      this.int64s(`slice_${id}_starts`, starts),
      this.int64s(`slice_${id}_ends`, ends),
      this.int64s(`slice_${id}_axes`, axes),
    ];
    if (steps) inputs.push(this.int64s(`slice_${id}_steps`, steps));
    return this.op("Slice", inputs);
  }

  reshape(x: string, shape: number[]): string {
    return this.op("Reshape", [x, this.int64s(`shape_${this.nodes.length}`, shape)]);
  }

  times(x: string, value: number): string {
    return this.op("Mul", [x, this.scalar(`k_${this.nodes.length}`, value)]);
  }
}

/** Token + position embedding (Gather, Slice, Add), scaled copies as the hidden states, token 1 as the pooled row. */
function buildExactTextEncoder(
  o: ResolvedTinyModelOptions,
  names: Dims,
  prefix: string,
  hidden: number,
  projection?: number,
): Uint8Array {
  const g = new ExactGraph(prefix, floatCode(o));
  const embedded = textEmbeddings(g, o, names, hidden);
  const penultimate = g.times(embedded, 0.75);
  const last = g.times(embedded, 1.25);
  // Token 1 (the first word), not the start token, so the two branches' pooled rows differ.
  const pooled = g.reshape(g.slice(last, [1], [2], [1]), [-1, hidden]);
  const states = [names.batch, names.sequence, hidden];
  g.floatOutput(last, "last_hidden_state", states);
  if (projection === undefined) {
    g.floatOutput(pooled, "pooler_output", [names.batch, hidden]);
  } else {
    const padded = g.op("Pad", [pooled, g.int64s("projection_pads", [0, 0, 0, projection - hidden])]);
    g.floatOutput(padded, "text_embeds", [names.batch, projection]);
  }
  if (twoEncoders(o.family)) {
    g.floatOutput(embedded, "hidden_states.0", states);
    g.floatOutput(penultimate, "hidden_states.1", states);
    g.floatOutput(g.op("Identity", [last]), "hidden_states.2", states);
  }
  return g.encode(`easel tiny exact ${o.family} ${prefix}`).model;
}

/**
 * 0.875·sample (close to a real UNet: the noise is most of its input) + (t/4096)·sample rolled one column + the first four values of token 1's text state (and of
 * timestep_cond, text_embeds and time_ids), each branch and row its own.
 */
function buildExactUnet(o: ResolvedTinyModelOptions, names: Dims, crossDim: number): Uint8Array {
  const g = new ExactGraph("unet", floatCode(o));
  const b = names.batch;
  const sample = g.floatInput("sample", names.latent);
  const timestepType =
    o.timestep === "int64[1]" ? DT.INT64 : o.timestep.startsWith("float16") ? DT.FLOAT16 : DT.FLOAT;
  const timestep = g.input("timestep", timestepType, names.timestep);
  const t = g.reshape(g.op("Cast", [timestep], [attrInt("to", DT.FLOAT)]), [-1, 1, 1, 1]);
  const context = g.floatInput("encoder_hidden_states", [b, names.sequence, crossDim]);
  const firstFour = (x: string, axes: number[], starts: number[]) =>
    g.reshape(
      g.slice(
        x,
        starts,
        starts.map((v, i) => (i === starts.length - 1 ? v + 4 : v + 1)),
        axes,
      ),
      [-1, LATENT_CHANNELS, 1, 1],
    );
  let cond = g.times(firstFour(context, [1, 2], [1, 0]), 0.125);
  if (o.family === "lcm") {
    const timeCond = g.floatInput("timestep_cond", [b, LCM_TIME_COND_DIM]);
    cond = g.op("Add", [cond, g.times(firstFour(timeCond, [1], [0]), 0.125)]);
  }
  if (twoEncoders(o.family)) {
    const textEmbeds = g.floatInput("text_embeds", [b, SDXL_TEXT_EMBEDS]);
    const timeIds = g.floatInput("time_ids", [b, SDXL_TIME_IDS]);
    cond = g.op("Add", [cond, g.times(firstFour(textEmbeds, [1], [0]), 0.125)]);
    cond = g.op("Add", [cond, g.times(firstFour(timeIds, [1], [0]), 2 ** -13)]);
  }
  const rolled = g.op(
    "Concat",
    [g.slice(sample, [1], [INT_MAX], [3]), g.slice(sample, [0], [1], [3])],
    [attrInt("axis", 3)],
  );
  const mixed = g.op("Mul", [rolled, g.times(t, 2 ** -12)]);
  const out = g.op("Add", [g.op("Add", [g.times(sample, 0.875), mixed]), cond]);
  g.floatOutput(out, "out_sample", names.latent);
  return g.encode(`easel tiny exact ${o.family} unet`).model;
}

/** Latent channels 0..2 tiled over an 8×8 block, each position its own gain, DepthToSpace ×8. */
function buildExactVaeDecoder(o: ResolvedTinyModelOptions, names: Dims): Uint8Array {
  const g = new ExactGraph("vae_decoder", floatCode(o));
  const latent = g.floatInput("latent_sample", names.decoderIn);
  const rgb = g.times(g.slice(latent, [0], [3], [1]), 0.03125);
  const tiled = g.op("Tile", [rgb, g.int64s("tile_repeats", [1, 64, 1, 1])]);
  const gains = g.weight("block_gain", [1, 3 * 64, 1, 1], 0.5, 1);
  const blocks = g.op("Mul", [tiled, gains]);
  const image = g.op("DepthToSpace", [blocks], [attrInt("blocksize", 8), attrString("mode", "DCR")]);
  g.floatOutput(image, "sample", names.decoded);
  return g.encode(`easel tiny exact ${o.family} vae_decoder`).model;
}

/** Every 8th pixel's RGB (and R again) as the mean, a scaled copy minus 6 as the logvar: latent_parameters. */
function buildExactVaeEncoder(o: ResolvedTinyModelOptions, names: Dims): Uint8Array {
  const g = new ExactGraph("vae_encoder", floatCode(o));
  const image = g.floatInput("sample", names.image);
  const picked = g.slice(image, [0, 0], [INT_MAX, INT_MAX], [2, 3], [8, 8]);
  const mean = g.times(g.op("Concat", [picked, g.slice(picked, [0], [1], [1])], [attrInt("axis", 1)]), 0.5);
  const logvar = g.op("Add", [g.times(mean, 0.25), g.scalar("logvar_offset", -6)]);
  const parameters = g.op("Concat", [mean, logvar], [attrInt("axis", 1)]);
  g.floatOutput(parameters, "latent_parameters", [names.batch, 2 * LATENT_CHANNELS, ...names.encoded]);
  return g.encode(`easel tiny exact ${o.family} vae_encoder`).model;
}

// ---------------------------------------------------------------------------------------------------------------
// JSON files. Shapes follow the HF/diffusers files; values are reconstructions, not byte copies of hub files.

const BASE_BETAS = {
  beta_end: 0.012,
  beta_schedule: "scaled_linear",
  beta_start: 0.00085,
  num_train_timesteps: 1000,
  trained_betas: null,
};

/** scheduler_config.json per family (sd-onnx.md §1c; lcm and turbo as resolved in test/golden/vectors/schedulers.json). */
function schedulerConfig(family: TinyModelFamily): Record<string, unknown> {
  switch (family) {
    case "sd1":
      // Verbatim SD 1.x hub file: no timestep_spacing or prediction_type key, so class defaults apply.
      return {
        _class_name: "PNDMScheduler",
        _diffusers_version: "0.6.0",
        ...BASE_BETAS,
        set_alpha_to_one: false,
        skip_prk_steps: true,
        steps_offset: 1,
        clip_sample: false,
      };
    case "sd2":
      return {
        _class_name: "PNDMScheduler",
        _diffusers_version: "0.10.0",
        ...BASE_BETAS,
        clip_sample: false,
        prediction_type: "epsilon",
        set_alpha_to_one: false,
        skip_prk_steps: true,
        steps_offset: 1,
      };
    case "sd2-v":
      return {
        _class_name: "DDIMScheduler",
        _diffusers_version: "0.10.0",
        ...BASE_BETAS,
        clip_sample: false,
        prediction_type: "v_prediction",
        set_alpha_to_one: false,
        skip_prk_steps: true,
        steps_offset: 1,
      };
    case "turbo":
      return {
        _class_name: "EulerDiscreteScheduler",
        _diffusers_version: "0.24.0",
        ...BASE_BETAS,
        interpolation_type: "linear",
        prediction_type: "epsilon",
        steps_offset: 1,
        timestep_spacing: "trailing",
        use_karras_sigmas: false,
      };
    case "lcm":
      return {
        _class_name: "LCMScheduler",
        _diffusers_version: "0.22.0",
        ...BASE_BETAS,
        clip_sample: false,
        clip_sample_range: 1.0,
        dynamic_thresholding_ratio: 0.995,
        original_inference_steps: 50,
        prediction_type: "epsilon",
        rescale_betas_zero_snr: false,
        sample_max_value: 1.0,
        set_alpha_to_one: false,
        steps_offset: 1,
        thresholding: false,
        timestep_scaling: 10.0,
        timestep_spacing: "leading",
      };
    case "sdxl-turbo":
      // stabilityai/sdxl-turbo's: SDXL's with Euler ancestral and trailing spacing (its first step is t = 999).
      return {
        ...schedulerConfig("sdxl"),
        _class_name: "EulerAncestralDiscreteScheduler",
        _diffusers_version: "0.24.0.dev0",
        timestep_spacing: "trailing",
      };
    case "sdxl":
      return {
        _class_name: "EulerDiscreteScheduler",
        _diffusers_version: "0.19.0",
        ...BASE_BETAS,
        interpolation_type: "linear",
        prediction_type: "epsilon",
        sample_max_value: 1.0,
        set_alpha_to_one: false,
        skip_prk_steps: true,
        steps_offset: 1,
        timestep_spacing: "leading",
        use_karras_sigmas: false,
      };
  }
}

const addedToken = (content: string, extra: Record<string, unknown> = {}) => ({
  content,
  lstrip: false,
  normalized: true,
  rstrip: false,
  single_word: false,
  ...extra,
});

/**
 * tokenizer_config.json + special_tokens_map.json. Three real shapes of the pad token occur and a loader must read
 * all three: a plain string (SD 1.x, `<|endoftext|>`), an AddedToken object (SD 2.x, `!`), and the newer
 * transformers format with `added_tokens_decoder` (SD-Turbo, `!`).
 */
function tokenizerConfigs(
  style: "string-pad" | "object-pad" | "added-tokens",
  pad: string,
  nameOrPath: string,
): { config: Record<string, unknown>; specialTokens: Record<string, unknown> } {
  if (style === "added-tokens") {
    const padId = pad === "!" ? "0" : "49407";
    return {
      config: {
        add_prefix_space: false,
        added_tokens_decoder: {
          [padId]: { ...addedToken(pad, { special: true }), normalized: false },
          "49406": addedToken("<|startoftext|>", { special: true }),
          "49407": addedToken("<|endoftext|>", { special: true }),
        },
        bos_token: "<|startoftext|>",
        clean_up_tokenization_spaces: true,
        do_lower_case: true,
        eos_token: "<|endoftext|>",
        errors: "replace",
        model_max_length: SEQUENCE,
        pad_token: pad,
        tokenizer_class: "CLIPTokenizer",
        unk_token: "<|endoftext|>",
      },
      specialTokens: {
        bos_token: addedToken("<|startoftext|>"),
        eos_token: addedToken("<|endoftext|>"),
        pad_token: { ...addedToken(pad), normalized: false },
        unk_token: addedToken("<|endoftext|>"),
      },
    };
  }
  const typed = (content: string) => ({ __type: "AddedToken", ...addedToken(content) });
  const padValue = style === "object-pad" ? typed(pad) : pad;
  return {
    config: {
      add_prefix_space: false,
      bos_token: typed("<|startoftext|>"),
      do_lower_case: true,
      eos_token: typed("<|endoftext|>"),
      errors: "replace",
      model_max_length: SEQUENCE,
      name_or_path: nameOrPath,
      pad_token: padValue,
      special_tokens_map_file: "./special_tokens_map.json",
      tokenizer_class: "CLIPTokenizer",
      unk_token: typed("<|endoftext|>"),
    },
    specialTokens: {
      bos_token: addedToken("<|startoftext|>"),
      eos_token: addedToken("<|endoftext|>"),
      pad_token: style === "object-pad" ? addedToken(pad) : pad,
      unk_token: addedToken("<|endoftext|>"),
    },
  };
}

/** Pixel size the real model was trained at; loaders may read it from unet/config.json as the default size. */
const SAMPLE_SIZE: Record<TinyModelFamily, number> = {
  sd1: 64,
  sd2: 64,
  "sd2-v": 96,
  turbo: 64,
  lcm: 64,
  sdxl: 128,
  "sdxl-turbo": 64,
};

function textEncoderConfig(
  hidden: number,
  architecture: string,
  projection?: number,
): Record<string, unknown> {
  return {
    architectures: [architecture],
    // Real SD text encoder configs carry CLIP's placeholder ids (bos 0, pad 1, eos 2), not the tokenizer's;
    // they are kept so a loader that takes its pad id from here instead of the tokenizer config is caught.
    bos_token_id: 0,
    eos_token_id: 2,
    pad_token_id: 1,
    hidden_act: "quick_gelu",
    hidden_size: hidden,
    max_position_embeddings: SEQUENCE,
    model_type: "clip_text_model",
    num_hidden_layers: 1,
    ...(projection === undefined ? {} : { projection_dim: projection }),
    vocab_size: 49408,
  };
}

function modelIndex(o: ResolvedTinyModelOptions, legacy: boolean): Record<string, unknown> {
  const scheduler = ["diffusers", String(schedulerConfig(o.family)._class_name)];
  if (legacy) {
    // OnnxStableDiffusionPipeline.save_pretrained: every ONNX component is an OnnxRuntimeModel.
    return {
      _class_name: "OnnxStableDiffusionPipeline",
      _diffusers_version: "0.35.2",
      feature_extractor: [null, null],
      requires_safety_checker: false,
      safety_checker: [null, null],
      scheduler,
      text_encoder: ["diffusers", "OnnxRuntimeModel"],
      tokenizer: ["transformers", "CLIPTokenizer"],
      unet: ["diffusers", "OnnxRuntimeModel"],
      vae_decoder: ["diffusers", "OnnxRuntimeModel"],
      vae_encoder: ["diffusers", "OnnxRuntimeModel"],
    };
  }
  // optimum keeps the source pipeline's index, which names the torch classes and a single "vae".
  const pipeline = twoEncoders(o.family)
    ? "StableDiffusionXLPipeline"
    : o.family === "lcm"
      ? "LatentConsistencyModelPipeline"
      : "StableDiffusionPipeline";
  return {
    _class_name: pipeline,
    _diffusers_version: "0.35.2",
    feature_extractor: [null, null],
    ...(twoEncoders(o.family) ? {} : { requires_safety_checker: false, safety_checker: [null, null] }),
    scheduler,
    text_encoder: ["transformers", "CLIPTextModel"],
    ...(twoEncoders(o.family)
      ? {
          force_zeros_for_empty_prompt: true,
          text_encoder_2: ["transformers", "CLIPTextModelWithProjection"],
          tokenizer_2: ["transformers", "CLIPTokenizer"],
        }
      : {}),
    tokenizer: ["transformers", "CLIPTokenizer"],
    unet: ["diffusers", "UNet2DConditionModel"],
    vae: ["diffusers", "AutoencoderKL"],
  };
}

const json = (value: unknown): Uint8Array => new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`);

/** Every generated file (relative path → bytes), in a fixed order; tokenizer vocab/merges are copied separately. */
function buildFiles(o: ResolvedTinyModelOptions): Map<string, Uint8Array> {
  const names = dimsFor(o);
  const legacy = o.timestep === "float32[batch]";
  const sdxl = twoEncoders(o.family);
  // SDXL's UNet reads both encoders' hidden states concatenated (768 + 1280 in the real model).
  const crossDim = sdxl ? 2 * o.hidden : o.hidden;
  const files = new Map<string, Uint8Array>();
  const exact = o.arithmetic === "exact";
  const textEncoder = exact ? buildExactTextEncoder : buildTextEncoder;

  files.set("text_encoder/model.onnx", textEncoder(o, names, "text_encoder", o.hidden));
  files.set("text_encoder/config.json", json(textEncoderConfig(o.hidden, "CLIPTextModel")));
  if (sdxl) {
    files.set(
      "text_encoder_2/model.onnx",
      textEncoder(o, names, "text_encoder_2", o.hidden, SDXL_TEXT_EMBEDS),
    );
    files.set(
      "text_encoder_2/config.json",
      json(textEncoderConfig(o.hidden, "CLIPTextModelWithProjection", SDXL_TEXT_EMBEDS)),
    );
  }

  const unet: { model: Uint8Array; external?: Uint8Array } = exact
    ? { model: buildExactUnet(o, names, crossDim) }
    : buildUnet(o, names, crossDim);
  files.set("unet/model.onnx", unet.model);
  if (unet.external !== undefined) files.set("unet/weights.pb", unet.external);
  files.set(
    "unet/config.json",
    json({
      _class_name: "UNet2DConditionModel",
      _diffusers_version: "0.35.2",
      addition_embed_type: sdxl ? "text_time" : null,
      addition_time_embed_dim: sdxl ? 256 : null,
      block_out_channels: [o.channels],
      cross_attention_dim: crossDim,
      in_channels: LATENT_CHANNELS,
      out_channels: LATENT_CHANNELS,
      projection_class_embeddings_input_dim: sdxl ? SDXL_TEXT_EMBEDS + SDXL_TIME_IDS * 256 : null,
      sample_size: SAMPLE_SIZE[o.family],
      time_cond_proj_dim: o.family === "lcm" ? LCM_TIME_COND_DIM : null,
    }),
  );

  const vaeConfig = json({
    _class_name: "AutoencoderKL",
    _diffusers_version: "0.35.2",
    in_channels: 3,
    latent_channels: LATENT_CHANNELS,
    out_channels: 3,
    sample_size: SAMPLE_SIZE[o.family] * 8,
    scaling_factor: sdxl ? 0.13025 : 0.18215,
  });
  files.set("vae_decoder/model.onnx", (exact ? buildExactVaeDecoder : buildVaeDecoder)(o, names));
  files.set("vae_decoder/config.json", vaeConfig);
  files.set("vae_encoder/model.onnx", (exact ? buildExactVaeEncoder : buildVaeEncoder)(o, names));
  files.set("vae_encoder/config.json", vaeConfig);

  const openClip = o.family === "sd2" || o.family === "sd2-v" || o.family === "turbo";
  const primary =
    o.family === "turbo"
      ? tokenizerConfigs("added-tokens", "!", "stabilityai/sd-turbo")
      : openClip
        ? tokenizerConfigs("object-pad", "!", "stabilityai/stable-diffusion-2-1")
        : tokenizerConfigs("string-pad", "<|endoftext|>", "openai/clip-vit-large-patch14");
  files.set("tokenizer/tokenizer_config.json", json(primary.config));
  files.set("tokenizer/special_tokens_map.json", json(primary.specialTokens));
  if (sdxl) {
    // SDXL's second tokenizer is OpenCLIP's and pads with "!" (id 0).
    const second = tokenizerConfigs("added-tokens", "!", "laion/CLIP-ViT-bigG-14-laion2B-39B-b160k");
    files.set("tokenizer_2/tokenizer_config.json", json(second.config));
    files.set("tokenizer_2/special_tokens_map.json", json(second.specialTokens));
  }

  if (o.safetyChecker) {
    files.set("safety_checker/model.onnx", buildSafetyChecker(o));
    files.set("feature_extractor/preprocessor_config.json", json(CLIP_PREPROCESSOR_CONFIG));
  }

  files.set("scheduler/scheduler_config.json", json(schedulerConfig(o.family)));
  files.set("model_index.json", json(modelIndex(o, legacy)));
  return files;
}

/** SD 1.5's feature_extractor/preprocessor_config.json (CLIP ViT-L/14's preprocessing). */
const CLIP_PREPROCESSOR_CONFIG = {
  crop_size: 224,
  do_center_crop: true,
  do_convert_rgb: true,
  do_normalize: true,
  do_resize: true,
  feature_extractor_type: "CLIPFeatureExtractor",
  image_mean: [0.48145466, 0.4578275, 0.40821073],
  image_std: [0.26862954, 0.26130258, 0.27577711],
  resample: 3,
  size: 224,
};

/**
 * A safety checker with the real interface (clip_input [B,3,224,224], images [B,H,W,3] → out_images,
 * has_nsfw_concepts [B]) and a rule tests can steer: flagged when mean(clip_input) > threshold; a flagged
 * image comes back black, as diffusers' checker returns it. Always float32, as the hub's exports are.
 */
function buildSafetyChecker(o: ResolvedTinyModelOptions): Uint8Array {
  const g = new GraphBuilder("safety_checker", DT.FLOAT);
  const clip = g.input("clip_input", DT.FLOAT, ["batch", 3, 224, 224]);
  const images = g.input("images", DT.FLOAT, ["batch", "height", "width", 3]);
  const mean = g.op("ReduceMean", [clip], [attrInts("axes", [1, 2, 3]), attrInt("keepdims", 0)]);
  g.op("Greater", [mean, g.scalar("threshold", o.safetyThreshold)], [], "has_nsfw_concepts");
  g.output("has_nsfw_concepts", DT.BOOL, ["batch"]);
  const keep = g.op("Not", ["has_nsfw_concepts"]);
  const keepFloat = g.op("Cast", [keep], [attrInt("to", DT.FLOAT)]);
  const column = g.op("Reshape", [keepFloat, g.int64s("column", [-1, 1, 1, 1])]);
  g.op("Mul", [images, column], [], "out_images");
  g.output("out_images", DT.FLOAT, ["batch", "height", "width", 3]);
  return g.encode("easel tiny safety_checker").model;
}

/**
 * Writes a tiny model folder in the diffusers/optimum ONNX layout to `dir` (created if needed), copying vocab.json
 * and merges.txt from `tokenizerDir`. Same options give byte-identical files.
 */
export async function writeTinyModel(
  dir: string,
  options: TinyModelOptions,
  tokenizerDir: string,
): Promise<void> {
  const resolved = resolveTinyModelOptions(options);
  const files = buildFiles(resolved);
  const tokenizerFolders = twoEncoders(resolved.family) ? ["tokenizer", "tokenizer_2"] : ["tokenizer"];
  for (const [relative, bytes] of files) {
    const target = join(dir, relative);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, bytes);
  }
  for (const folder of tokenizerFolders) {
    for (const file of ["vocab.json", "merges.txt"]) {
      try {
        await copyFile(join(tokenizerDir, file), join(dir, folder, file));
      } catch (cause) {
        throw new EaselError("tokenizer_file", `tiny model: cannot copy ${file} from ${tokenizerDir}`, {
          cause,
        });
      }
    }
  }
}
