import { EaselError } from "../../core/errors.ts";
import { float16ToFloat32Into, float32ToFloat16, float32ToFloat16Into, fromFloat16Array } from "./float16.ts";
import type { FloatType, LdmModel, TextEncoderInterface } from "./ldm-model.ts";
import { PrefetchingGenerator } from "./noise-thread.ts";
import { floatTensor, ort } from "./onnx-session.ts";
import { createScheduler, MAX_STEPS, type Scheduler, type SchedulerName } from "./schedulers/index.ts";
import { SIMD_KERNELS } from "./simd-kernels.ts";
import type { TokenizedPrompt } from "./tokenizer/clip-tokenizer.ts";
import { MAX_USER_SEED, type TorchGenerator } from "./torch-random.ts";

/**
 * The latent diffusion pipeline: text encoder(s) → a denoising loop over the UNet driven by a scheduler → VAE
 * decoder, as diffusers' StableDiffusion(Img2Img)Pipeline and StableDiffusionXL(Img2Img)Pipeline do it, on one
 * loaded LdmModel. It produces raw RGB;
 * PNG encoding happens in src/render. Image i of a call uses seed+i alone, so any image can be reproduced by
 * itself with its own seed.
 */

/** Raw interleaved RGB pixels. */
export interface RgbPixels {
  width: number;
  height: number;
  data: Uint8Array;
}

/** One generate call. `init` turns it into img2img. */
export interface GenerateParams {
  prompt: string;
  /** Absent: none (SDXL then guides against zeros, as diffusers with negative_prompt=None); "" is encoded. */
  negativePrompt?: string;
  seed: number;
  steps: number;
  guidance: number;
  scheduler: string;
  width: number;
  height: number;
  /** Images in this call, 1..MAX_IMAGES; image i uses seed + i. */
  count: number;
  /** img2img: a start image already at width × height, and how much of it to repaint (0 < strength ≤ 1). */
  init?: { image: RgbPixels; strength: number };
  /** A preview every k steps (0: none). */
  previewEvery?: number;
  /** Run the model's safety checker when it has one (default true); false: `--no-safety-checker`, NSFW channels. */
  safetyChecker?: boolean;
}

/** Progress after each of the user's steps (`total` of them); `previews` (one per image, at latent resolution) every `previewEvery` steps. */
export interface GenerateProgress {
  step: number;
  total: number;
  previews?: RgbPixels[];
}

/** Where the time went: `sessionMs` is time inside onnxruntime's `session.run`. */
export interface GenerateTimings {
  totalMs: number;
  sessionMs: number;
  textEncoderMs: number;
  unetMs: number;
  vaeMs: number;
  previewMs: number;
  previews: number;
  /** Time in the safety checker (preprocessing and session). */
  safetyMs: number;
}

/** The settings a call really ran with (after defaults and rounding), and what was changed or cut. */
export interface GenerateResult {
  /** `flagged`: the safety checker flagged it, and its pixels are black (as diffusers returns it). */
  images: { pixels: RgbPixels; seed: number; flagged: boolean }[];
  /** Whether the safety checker ran on these images. */
  safetyChecked: boolean;
  scheduler: SchedulerName;
  steps: number;
  /** Denoising steps actually run, in the user's steps (img2img runs fewer: ⌊steps × strength⌋). */
  denoisingSteps: number;
  /** UNet calls made per image (PNDM makes one more than its steps: the PLMS warm-up repeat). */
  unetCalls: number;
  guidance: number;
  width: number;
  height: number;
  strength: number | undefined;
  tokens: { count: number; truncated: number; negativeTruncated: number };
  notes: string[];
  timings: GenerateTimings;
}

/** Hooks into a running call. */
export interface GenerateHooks {
  /** Checked before every UNet call; an aborted call stops with a `cancelled` error. */
  signal?: AbortSignal;
  onProgress?: (progress: GenerateProgress) => void;
  /** The final latents, one per image, before the VAE decodes them: for checks of every bit (pixels hide ulps). */
  onFinalLatents?: (latents: readonly Float32Array[]) => void;
}

/** Pipeline limits; the engine may apply lower ones. */
export const PIPELINE_LIMITS = {
  // The VAE's factor: the engine and the CLI keep their own, higher limit (64); reference tests render 32².
  minSize: 8,
  maxSize: 2048,
  maxImages: 8,
  maxGuidance: 50,
  /** Far above the engine's limit: a guard for direct callers (BPE cost grows with word length). */
  maxPromptChars: 10_000,
} as const;

/**
 * SD 1.x latent channels → RGB, the widely used linear approximation of the VAE decoder (used for cheap
 * previews in A1111 and ComfyUI). Rows: latent channel; columns: R, G, B.
 */
const f32 = Math.fround;

const LATENT_RGB_FACTORS = [
  [0.3512, 0.2297, 0.3227],
  [0.325, 0.4974, 0.235],
  [-0.2829, 0.1762, 0.2721],
  [-0.212, -0.2616, -0.7177],
] as const;

/** The same approximation for SDXL's VAE, whose latent space differs (ComfyUI's published factors). */
const SDXL_LATENT_RGB_FACTORS = [
  [0.392, 0.4054, 0.4549],
  [-0.2634, -0.0196, 0.0653],
  [0.0568, 0.1687, -0.0755],
  [-0.3112, -0.2359, -0.2076],
] as const;

function refuse(message: string): never {
  throw new EaselError("invalid_argument", message);
}

function checkNumber(name: string, value: number, min: number, max: number, integer: boolean): void {
  if (
    typeof value !== "number" ||
    !Number.isFinite(value) ||
    value < min ||
    value > max ||
    (integer && !Number.isInteger(value))
  ) {
    refuse(
      `${name} must be ${integer ? "a whole number" : "a number"} from ${min} to ${max} (got ${String(value)})`,
    );
  }
}

/** Rounds a size down to a multiple of 8 (the VAE's factor), noting the change; refuses what cannot be used. */
function roundSize(name: string, value: number, notes: string[]): number {
  checkNumber(name, value, PIPELINE_LIMITS.minSize, PIPELINE_LIMITS.maxSize, true);
  const rounded = Math.floor(value / 8) * 8;
  if (rounded !== value) notes.push(`${name} ${value} rounded down to ${rounded} (a multiple of 8)`);
  return rounded;
}

/** Checks and completes the parameters; every refusal names the parameter and its valid range. */
export function validateParams(params: GenerateParams): { width: number; height: number; notes: string[] } {
  const notes: string[] = [];
  if (typeof params.prompt !== "string") refuse("prompt must be text");
  if (params.prompt.length > PIPELINE_LIMITS.maxPromptChars) {
    refuse(
      `prompt must be at most ${PIPELINE_LIMITS.maxPromptChars} characters (got ${params.prompt.length})`,
    );
  }
  checkNumber("seed", params.seed, 0, MAX_USER_SEED, true);
  checkNumber("steps", params.steps, 1, MAX_STEPS, true);
  checkNumber("guidance", params.guidance, 0, PIPELINE_LIMITS.maxGuidance, false);
  checkNumber("count", params.count, 1, PIPELINE_LIMITS.maxImages, true);
  if (params.seed + params.count - 1 > MAX_USER_SEED) {
    refuse(`seed + count - 1 must stay within 0..${MAX_USER_SEED} (image i uses seed + i)`);
  }
  if (params.previewEvery !== undefined) checkNumber("previewEvery", params.previewEvery, 0, MAX_STEPS, true);
  const width = roundSize("width", params.width, notes);
  const height = roundSize("height", params.height, notes);
  if (params.init !== undefined) {
    const { image, strength } = params.init ?? {};
    if (typeof strength !== "number" || !(strength > 0 && strength <= 1)) {
      refuse(`strength must be a number above 0 and at most 1 (got ${String(strength)})`);
    }
    if (!image || !(image.data instanceof Uint8Array)) refuse("the init image must be RGB pixel data");
    if (image.width !== width || image.height !== height || image.data.length !== width * height * 3) {
      refuse(
        `the init image must be ${width}×${height} RGB, ${width * height * 3} bytes (got ${image.width}×${image.height}, ${image.data.length} bytes)`,
      );
    }
  }
  return { width, height, notes };
}

/** onnxruntime `run` with the time spent inside it added to a counter. */
class TimedRunner {
  sessionMs = 0;

  async run(
    session: ort.InferenceSession,
    feeds: Record<string, ort.Tensor>,
    part: string,
    fetches?: Record<string, ort.Tensor>,
  ): Promise<{ outputs: ort.InferenceSession.ReturnType; ms: number }> {
    const start = performance.now();
    let outputs: ort.InferenceSession.ReturnType;
    try {
      outputs = await (fetches ? session.run(feeds, fetches) : session.run(feeds));
    } catch (cause) {
      // Deterministic for a given model and input (wrong dtype, shape, out of memory): not worth a retry.
      const reason = cause instanceof Error ? cause.message : String(cause);
      throw new EaselError("render_failed", `the ${part} failed: ${reason.slice(0, 300)}`, { cause });
    }
    const ms = performance.now() - start;
    this.sessionMs += ms;
    return { outputs, ms };
  }
}

function readFloats(value: ort.OnnxValue | undefined, what: string): Float32Array {
  const tensor = value as ort.Tensor | undefined;
  if (tensor === undefined) throw new EaselError("model_file", `${what} produced no output`);
  if (tensor.type === "float16") return fromFloat16Array(tensor.data as Uint16Array);
  if (tensor.type === "float32") return tensor.data as Float32Array;
  throw new EaselError("model_file", `${what} returned ${tensor.type}, expected float32 or float16`);
}

type FloatData = Float32Array | Uint16Array;

/** A float array in the dtype a graph input or output has: fp16 tensors hold bit patterns. */
const floatArray = (type: FloatType, length: number): FloatData =>
  type === "float16" ? new Uint16Array(length) : new Float32Array(length);

/**
 * One UNet call of every step, its tensors made once over arrays that each step rewrites in place: no tensor or
 * array is allocated per step. A float32 UNet reads its rows of the scaled input and writes its rows of the
 * prediction directly; an fp16 one, or a static-batch export that needs padding rows, goes through its own
 * arrays. onnxruntime writes into the preallocated output (run's `fetches`).
 */
class UnetCall {
  readonly feeds: Record<string, ort.Tensor>;
  readonly fetches: Record<string, ort.Tensor>;
  /** The sample feed's data, when it is not a view of the scaled input. */
  private readonly sample: FloatData | undefined;
  private readonly output: FloatData | undefined;
  private readonly timestep: BigInt64Array | FloatData;
  private lastTimestep = Number.NaN;

  constructor(
    private readonly shape: { first: number; rows: number; unetRows: number; latentSize: number },
    types: { sample: FloatType; output: FloatType; timestep: "int64" | FloatType },
    inputs: {
      rowFeeds: Record<string, ort.Tensor>;
      outputName: string;
      timestepDims: number[];
      dims: number[];
    },
    views: { scaled: Float32Array; prediction: Float32Array },
  ) {
    const { first, rows, unetRows, latentSize } = shape;
    const direct = rows === unetRows;
    const rowsOf = (data: Float32Array) => data.subarray(first * latentSize, (first + rows) * latentSize);
    this.sample =
      direct && types.sample === "float32" ? undefined : floatArray(types.sample, unetRows * latentSize);
    this.output =
      direct && types.output === "float32" ? undefined : floatArray(types.output, unetRows * latentSize);
    const count = inputs.timestepDims.length === 0 ? 1 : (inputs.timestepDims[0] as number);
    this.timestep = types.timestep === "int64" ? new BigInt64Array(count) : floatArray(types.timestep, count);
    this.feeds = {
      ...inputs.rowFeeds,
      sample: new ort.Tensor(types.sample, this.sample ?? rowsOf(views.scaled), inputs.dims),
      timestep: new ort.Tensor(types.timestep, this.timestep, inputs.timestepDims),
    };
    this.fetches = {
      [inputs.outputName]: new ort.Tensor(types.output, this.output ?? rowsOf(views.prediction), inputs.dims),
    };
  }

  /** Writes this step's timestep and, where the feed has its own array, this call's rows of the scaled input. */
  prepare(scaled: Float32Array, t: number): void {
    if (t !== this.lastTimestep) {
      this.lastTimestep = t;
      const timestep = this.timestep;
      // numpy's astype(int64) truncates, which is what diffusers feeds int64 UNets for fractional Euler timesteps.
      if (timestep instanceof BigInt64Array) timestep.fill(BigInt(Math.trunc(t)));
      else if (timestep instanceof Uint16Array) timestep.fill(float32ToFloat16(t));
      else timestep.fill(t);
    }
    const sample = this.sample;
    if (sample === undefined) return;
    const { first, rows, unetRows, latentSize } = this.shape;
    const start = first * latentSize;
    if (sample instanceof Uint16Array)
      float32ToFloat16Into(scaled.subarray(start), sample, rows * latentSize);
    else sample.set(scaled.subarray(start, start + rows * latentSize));
    // A static batch larger than the rows left repeats the last row.
    for (let r = rows; r < unetRows; r++)
      sample.copyWithin(r * latentSize, (rows - 1) * latentSize, rows * latentSize);
  }

  /** Copies (or converts) this call's rows of the output into the prediction, where it has its own array. */
  collect(prediction: Float32Array): void {
    const output = this.output;
    if (output === undefined) return;
    const { first, rows, latentSize } = this.shape;
    const target = prediction.subarray(first * latentSize, (first + rows) * latentSize);
    if (output instanceof Uint16Array) float16ToFloat32Into(output, target, rows * latentSize);
    else target.set(output.subarray(0, rows * latentSize));
  }
}

/** The UNet calls of one step: the whole batch at once, or chunks of a static-batch export's size. */
function unetCallsFor(
  model: LdmModel,
  rowInputs: RowInput[],
  layout: {
    batch: number;
    latentSize: number;
    latentH: number;
    latentW: number;
    scaled: Float32Array;
    prediction: Float32Array;
  },
): UnetCall[] {
  const { io } = model;
  const { batch, latentSize } = layout;
  const unetRows = io.unetBatch ?? batch;
  const timestepDims = io.timestep.shape === "scalar" ? [] : [io.timestep.shape === "batch" ? unetRows : 1];
  const calls: UnetCall[] = [];
  for (let first = 0; first < batch; first += unetRows) {
    const rows = Math.min(unetRows, batch - first);
    const rowFeeds: Record<string, ort.Tensor> = {};
    for (const input of rowInputs) {
      const size = input.shape.reduce((a, b) => a * b, 1);
      rowFeeds[input.name] = floatTensor(input.type, takeRows(input.rows, first, rows, unetRows, size), [
        unetRows,
        ...input.shape,
      ]);
    }
    calls.push(
      new UnetCall(
        { first, rows, unetRows, latentSize },
        { sample: io.floatTypes.sample, output: io.floatTypes.unetOutput, timestep: io.timestep.type },
        {
          rowFeeds,
          outputName: io.unetOutput,
          timestepDims,
          dims: [unetRows, 4, layout.latentH, layout.latentW],
        },
        layout,
      ),
    );
  }
  return calls;
}

/** latent / divisor into row `k` of every branch (rows b·count + k) of the UNet input, as float32. */
function divideIntoRows(
  latent: Float32Array,
  divisor: number,
  scaled: Float32Array,
  k: number,
  count: number,
  branches: number,
): void {
  const size = latent.length;
  const start = k * size;
  const row = scaled.subarray(start, start + size);
  if (SIMD_KERNELS && size % 4 === 0 && f32(divisor) === divisor) SIMD_KERNELS.divide(latent, divisor, row);
  else for (let j = 0; j < size; j++) row[j] = (latent[j] as number) / divisor;
  for (let b = 1; b < branches; b++) scaled.copyWithin((b * count + k) * size, start, start + size);
}

/** Classifier-free guidance, eps_u + w · (eps_c − eps_u), each operation in float32 as torch computes it. */
function guide(uncond: Float32Array, cond: Float32Array, guidance: number, out: Float32Array): void {
  if (SIMD_KERNELS && out.length % 4 === 0 && f32(guidance) === guidance) {
    SIMD_KERNELS.guide(uncond, cond, guidance, out);
    return;
  }
  for (let j = 0; j < out.length; j++) {
    const u = uncond[j] as number;
    out[j] = f32(u + f32(guidance * f32((cond[j] as number) - u)));
  }
}

/** LCM's guidance embedding (diffusers `get_guidance_scale_embedding`, float32 as torch) for w = guidance − 1. */
export function guidanceEmbedding(guidance: number, dim: number): Float32Array {
  const w = f32(f32(guidance - 1) * 1000);
  const half = Math.floor(dim / 2);
  const out = new Float32Array(dim);
  const base = f32(f32(Math.log(10000)) / (half - 1));
  for (let j = 0; j < half; j++) {
    const arg = f32(w * f32(Math.exp(f32(j * -base))));
    out[j] = Math.sin(arg);
    out[half + j] = Math.cos(arg);
  }
  return out;
}

/** One latent (channels-first, [4, h, w]) → a small RGB preview by the fixed linear map (SD's, or SDXL's). */
export function latentPreview(
  latent: Float32Array,
  latentWidth: number,
  latentHeight: number,
  factors: readonly (readonly number[])[] = LATENT_RGB_FACTORS,
): RgbPixels {
  const plane = latentWidth * latentHeight;
  const data = new Uint8Array(plane * 3);
  for (let c = 0; c < 3; c++) {
    const weight = (k: number) => factors[k]?.[c] ?? 0;
    previewChannel(latent, plane, weight(0), weight(1), weight(2), weight(3), data, c);
  }
  return { width: latentWidth, height: latentHeight, data };
}

/** One RGB channel of a preview: Σ latent_k · w_k over the four channels, mapped from [-1, 1] to bytes. */
function previewChannel(
  latent: Float32Array,
  plane: number,
  w0: number,
  w1: number,
  w2: number,
  w3: number,
  data: Uint8Array,
  c: number,
): void {
  for (let p = 0; p < plane; p++) {
    const v =
      (latent[p] as number) * w0 +
      (latent[plane + p] as number) * w1 +
      (latent[2 * plane + p] as number) * w2 +
      (latent[3 * plane + p] as number) * w3;
    data[p * 3 + c] = Math.max(0, Math.min(255, Math.round((v + 1) * 127.5)));
  }
}

function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new EaselError("cancelled", "generation cancelled");
}

/** Runs one txt2img or img2img call on `model`. */
export async function generate(
  model: LdmModel,
  params: GenerateParams,
  hooks: GenerateHooks = {},
): Promise<GenerateResult> {
  const started = performance.now();
  const { width, height, notes } = validateParams(params);
  const { io } = model;
  if (io.unetLatentSize && (io.unetLatentSize[0] !== height / 8 || io.unetLatentSize[1] !== width / 8)) {
    const [h, w] = io.unetLatentSize;
    refuse(`model ${model.folder.name} is a fixed-size export: it renders only ${w * 8}×${h * 8}`);
  }
  const runner = new TimedRunner();
  const timings: GenerateTimings = {
    totalMs: 0,
    sessionMs: 0,
    textEncoderMs: 0,
    unetMs: 0,
    vaeMs: 0,
    previewMs: 0,
    previews: 0,
    safetyMs: 0,
  };
  const count = params.count;
  const latentH = height / 8;
  const latentW = width / 8;
  const latentSize = 4 * latentH * latentW;
  // LCM embeds guidance in the UNet and the Turbo models are distilled without it: none runs the two-branch batch.
  const turbo = io.family === "turbo" || io.family === "sdxl-turbo";
  const cfg = params.guidance > 1 && io.family !== "lcm" && !turbo;
  const guidance = Math.fround(params.guidance);
  if (turbo && params.guidance > 1) {
    notes.push(
      `${io.family === "turbo" ? "SD" : "SDXL"}-Turbo runs without guidance: the cfg setting was not used`,
    );
  }

  // Text: [negative, positive] in one batch when guiding, as diffusers concatenates them.
  const positive = model.tokenizer.tokenize(params.prompt);
  const negative = model.tokenizer.tokenize(params.negativePrompt ?? "");
  if (positive.truncatedCount > 0)
    notes.push(`prompt cut: the last ${positive.truncatedCount} tokens exceed CLIP's 75`);
  if (cfg && negative.truncatedCount > 0)
    notes.push(`negative prompt cut: ${negative.truncatedCount} tokens over 75`);
  // One scheduler and one generator per image: image i is exactly what seed+i alone would give.
  const schedulers: Scheduler[] = [];
  const generators: TorchGenerator[] = [];
  for (let k = 0; k < count; k++) {
    const scheduler = createScheduler(params.scheduler, model.folder.schedulerConfig);
    scheduler.setTimesteps(params.steps);
    schedulers.push(scheduler);
    // The initial latents are drawn ahead on the noise thread while the text encoders run, and a sampler that
    // draws noise at every step gets each step's drawn while the UNet runs.
    generators.push(
      new PrefetchingGenerator(
        params.seed + k,
        latentSize,
        scheduler.noisePerStep ? "every draw" : "first draw",
      ),
    );
  }
  const text = await encodeText(model, runner, { params, positive, negative, cfg }, timings);
  const { seqLen, hidden } = text;

  // UNet batch: all unconditional rows first, then all conditional rows; every per-row input follows it.
  const branches = cfg ? 2 : 1;
  const batch = count * branches;
  const rowInputs: RowInput[] = [
    {
      name: "encoder_hidden_states",
      type: io.floatTypes.hiddenStates,
      rows: repeatBranches(text.embeddings, branches, count),
      shape: [seqLen, hidden],
    },
  ];
  if (io.timestepCondDim !== undefined) {
    const row = guidanceEmbedding(params.guidance, io.timestepCondDim);
    rowInputs.push({
      name: "timestep_cond",
      type: io.floatTypes.timestepCond,
      rows: repeatRows(row, batch),
      shape: [row.length],
    });
  }
  if (io.added && text.pooled) {
    const timeIds = addedTimeIds(io.added.timeIdsLength, width, height, cfg);
    rowInputs.push(
      {
        name: "text_embeds",
        type: io.added.textEmbedsType,
        rows: repeatBranches(text.pooled, branches, count),
        shape: [text.pooled.length / branches],
      },
      {
        name: "time_ids",
        type: io.added.timeIdsType,
        rows: repeatBranches(timeIds, branches, count),
        shape: [io.added.timeIdsLength],
      },
    );
  }
  // Every row's UNet input (uncond rows first) and prediction; the UNet calls read and write them in place.
  const scaled = new Float32Array(batch * latentSize);
  const prediction = new Float32Array(batch * latentSize);
  const unetCalls = unetCallsFor(model, rowInputs, {
    batch,
    latentSize,
    latentH,
    latentW,
    scaled,
    prediction,
  });
  const first = schedulers[0] as Scheduler;
  let startIndex = 0;
  let latents: Float32Array[];
  if (params.init) {
    const initTimesteps = Math.min(Math.floor(params.steps * params.init.strength), params.steps);
    startIndex = Math.max(params.steps - initTimesteps, 0);
    if (startIndex >= first.timesteps.length || initTimesteps < 1) {
      refuse(
        `strength ${params.init.strength} with ${params.steps} steps runs no step: raise the strength or the steps`,
      );
    }
    const encoded = await encodeInit(model, runner, params.init.image, generators, timings);
    latents = encoded.map((init, k) => {
      const noise = (generators[k] as TorchGenerator).randn(latentSize);
      return (schedulers[k] as Scheduler).addNoise(init, noise, startIndex);
    });
  } else {
    // initNoiseSigma is a getter that scans the sigmas: read it once, not per value.
    const sigma = first.initNoiseSigma;
    latents = generators.map((g) => {
      const noise = g.randn(latentSize);
      for (let i = 0; i < noise.length; i++) noise[i] = (noise[i] as number) * sigma;
      return noise;
    });
  }

  // Progress counts the user's steps, not UNet calls. Schedulers with more timesteps than steps (PNDM's PLMS
  // repeats one: its second call redoes the first step with the averaged output) have warm-up calls that
  // complete no step of their own; the first `warmup` calls report nothing, so the reports are 1..total.
  const callsPerImage = first.timesteps.length - startIndex;
  const warmup = Math.max(0, first.timesteps.length - params.steps);
  const total = callsPerImage - warmup;
  const eps = cfg ? new Float32Array(latentSize) : undefined;
  const rowOf = (row: number) => prediction.subarray(row * latentSize, (row + 1) * latentSize);
  const uncondRows = Array.from({ length: count }, (_, k) => rowOf(k));
  const condRows = Array.from({ length: count }, (_, k) => rowOf((branches - 1) * count + k));
  const previewFactors = io.added ? SDXL_LATENT_RGB_FACTORS : LATENT_RGB_FACTORS;
  let denoised: (Float32Array | undefined)[] = new Array(count).fill(undefined);
  for (let i = startIndex; i < first.timesteps.length; i++) {
    checkAbort(hooks.signal);
    for (let k = 0; k < count; k++) {
      const divisor = (schedulers[k] as Scheduler).modelInputDivisor(i);
      divideIntoRows(latents[k] as Float32Array, divisor, scaled, k, count, branches);
    }
    const t = first.timestepForUnet(i);
    for (const call of unetCalls) {
      call.prepare(scaled, t);
      const unet = await runner.run(model.unet, call.feeds, `UNet (${model.folder.unet})`, call.fetches);
      timings.unetMs += unet.ms;
      call.collect(prediction);
    }
    for (let k = 0; k < count; k++) {
      let modelOutput = condRows[k] as Float32Array;
      if (eps) {
        guide(uncondRows[k] as Float32Array, modelOutput, guidance, eps);
        modelOutput = eps;
      }
      const out = (schedulers[k] as Scheduler).step(
        modelOutput,
        i,
        latents[k] as Float32Array,
        generators[k],
      );
      latents[k] = out.prevSample;
      denoised[k] = out.denoised;
    }
    const step = i - startIndex + 1 - warmup;
    if (step < 1) continue;
    const every = params.previewEvery ?? 0;
    let previews: RgbPixels[] | undefined;
    // The last step needs no preview: the finished image follows at once.
    if (every > 0 && step % every === 0 && step < total) {
      const t0 = performance.now();
      previews = latents.map((l, k) => latentPreview(denoised[k] ?? l, latentW, latentH, previewFactors));
      timings.previewMs += performance.now() - t0;
      timings.previews += 1;
    }
    hooks.onProgress?.({ step, total, ...(previews ? { previews } : {}) });
  }
  denoised = [];
  hooks.onFinalLatents?.(latents);

  // Decode one image at a time: diffusers does so because fp16 VAE decoders misbehave with batches.
  const images: GenerateResult["images"] = [];
  for (let k = 0; k < count; k++) {
    checkAbort(hooks.signal);
    const scaled = new Float32Array(latentSize);
    const latent = latents[k] as Float32Array;
    for (let j = 0; j < latentSize; j++) scaled[j] = (latent[j] as number) / model.folder.vaeScalingFactor;
    const decoded = await runner.run(
      model.vaeDecoder,
      { [io.vaeDecoderInput]: floatTensor(io.floatTypes.vaeDecoder, scaled, [1, 4, latentH, latentW]) },
      `VAE decoder (${model.folder.vaeDecoder})`,
    );
    timings.vaeMs += decoded.ms;
    images.push({
      pixels: toRgb(readFloats(decoded.outputs[io.vaeDecoderOutput], "VAE decoder"), width, height),
      seed: params.seed + k,
      flagged: false,
    });
  }
  const checker = params.safetyChecker === false ? undefined : model.safetyChecker;
  if (checker) {
    const checkStarted = performance.now();
    const flags = await checker.flags(images.map((image) => image.pixels));
    for (const [k, flagged] of flags.entries()) {
      const image = images[k];
      if (!flagged || !image) continue;
      image.pixels.data.fill(0);
      image.flagged = true;
    }
    timings.safetyMs = performance.now() - checkStarted;
  }
  timings.sessionMs = runner.sessionMs;
  timings.totalMs = performance.now() - started;
  return {
    images,
    safetyChecked: checker !== undefined,
    scheduler: first.name,
    steps: params.steps,
    denoisingSteps: total,
    unetCalls: callsPerImage,
    guidance: params.guidance,
    width,
    height,
    strength: params.init?.strength,
    tokens: {
      count: positive.textTokenCount,
      truncated: positive.truncatedCount,
      negativeTruncated: negative.truncatedCount,
    },
    notes,
    timings,
  };
}

/** A UNet input with one row per batch row (uncond rows first), `shape` being one row's. */
interface RowInput {
  name: string;
  type: FloatType;
  rows: Float32Array;
  shape: number[];
}

/** What the text encoders made of a call's prompts: one row per branch ([negative,] positive). */
interface TextConditioning {
  /** [branches, seqLen, hidden]: SDXL's two encoders' states joined per token. */
  embeddings: Float32Array;
  /** SDXL: text_encoder_2's pooled text_embeds, [branches, dim]. */
  pooled: Float32Array | undefined;
  seqLen: number;
  hidden: number;
}

/**
 * The prompts through the text encoder(s), as diffusers' encode_prompt: SD 1.x / 2.x take the last hidden state;
 * SDXL joins both encoders' penultimate hidden states and takes the second's pooled embedding. SDXL with no
 * negative prompt (`force_zeros_for_empty_prompt`) guides against zeros, not an encoded "" (which is what it
 * encodes when the member gives an empty negative prompt).
 */
async function encodeText(
  model: LdmModel,
  runner: TimedRunner,
  call: { params: GenerateParams; positive: TokenizedPrompt; negative: TokenizedPrompt; cfg: boolean },
  timings: GenerateTimings,
): Promise<TextConditioning> {
  const { io } = model;
  const { params, cfg } = call;
  const zeroNegative = cfg && io.added?.zeroEmptyNegative === true && params.negativePrompt === undefined;
  const encodeNegative = cfg && !zeroNegative;
  const first = await runTextEncoder(
    runner,
    model.textEncoder,
    io.text,
    `text encoder (${model.folder.textEncoder})`,
    encodeNegative ? [call.negative.inputIds, call.positive.inputIds] : [call.positive.inputIds],
    timings,
  );
  let embeddings = first.hidden;
  let hidden = first.width;
  let pooled: Float32Array | undefined;
  if (io.text2 && model.textEncoder2 && model.tokenizer2) {
    const tokenizer2 = model.tokenizer2;
    const texts = encodeNegative ? [params.negativePrompt ?? "", params.prompt] : [params.prompt];
    const second = await runTextEncoder(
      runner,
      model.textEncoder2,
      io.text2,
      `second text encoder (${model.folder.textEncoder2})`,
      texts.map((t) => tokenizer2.tokenize(t).inputIds),
      timings,
    );
    embeddings = joinLastAxis(first.hidden, first.width, second.hidden, second.width);
    hidden = first.width + second.width;
    pooled = second.pooled;
  }
  if (zeroNegative) {
    embeddings = withZeroRowFirst(embeddings);
    pooled = pooled && withZeroRowFirst(pooled);
  }
  return { embeddings, pooled, seqLen: call.positive.inputIds.length, hidden };
}

/** One text encoder on rows of ids: its hidden-state output ([rows, seq, width]) and pooled output if it has one. */
async function runTextEncoder(
  runner: TimedRunner,
  session: ort.InferenceSession,
  spec: TextEncoderInterface,
  part: string,
  prompts: Int32Array[],
  timings: GenerateTimings,
): Promise<{ hidden: Float32Array; width: number; pooled: Float32Array | undefined }> {
  const seqLen = (prompts[0] as Int32Array).length;
  const callRows = spec.batch ?? prompts.length;
  const hiddenParts: Float32Array[] = [];
  const pooledParts: Float32Array[] = [];
  for (let r0 = 0; r0 < prompts.length; r0 += callRows) {
    // A static-shape export takes exactly its batch: pad with the last prompt and drop the extra rows.
    const ids = new Int32Array(callRows * seqLen);
    for (let r = 0; r < callRows; r++)
      ids.set(prompts[Math.min(r0 + r, prompts.length - 1)] as Int32Array, r * seqLen);
    const idsTensor =
      spec.inputIdsType === "int64"
        ? new ort.Tensor(
            "int64",
            BigInt64Array.from(ids, (v) => BigInt(v)),
            [callRows, seqLen],
          )
        : new ort.Tensor("int32", ids, [callRows, seqLen]);
    const out = await runner.run(session, { input_ids: idsTensor }, part);
    timings.textEncoderMs += out.ms;
    const kept = Math.min(callRows, prompts.length - r0);
    const states = readFloats(out.outputs[spec.hiddenOutput], part);
    hiddenParts.push(states.subarray(0, (states.length / callRows) * kept));
    if (spec.pooledOutput !== undefined) {
      const p = readFloats(out.outputs[spec.pooledOutput], part);
      pooledParts.push(p.subarray(0, (p.length / callRows) * kept));
    }
  }
  const hidden = concatFloats(hiddenParts);
  return {
    hidden,
    width: hidden.length / (prompts.length * seqLen),
    pooled: spec.pooledOutput === undefined ? undefined : concatFloats(pooledParts),
  };
}

function concatFloats(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** [n, a] and [n, b] → [n, a + b] (torch.concat(..., dim=-1)). */
function joinLastAxis(left: Float32Array, a: number, right: Float32Array, b: number): Float32Array {
  const n = left.length / a;
  const out = new Float32Array(n * (a + b));
  for (let i = 0; i < n; i++) {
    out.set(left.subarray(i * a, (i + 1) * a), i * (a + b));
    out.set(right.subarray(i * b, (i + 1) * b), i * (a + b) + a);
  }
  return out;
}

/** One row of zeros before `row` (torch.zeros_like as the negative branch). */
function withZeroRowFirst(row: Float32Array): Float32Array {
  const out = new Float32Array(row.length * 2);
  out.set(row, row.length);
  return out;
}

/** [branches, size] → [branches × count, size]: each branch's row repeated for every image. */
function repeatBranches(rows: Float32Array, branches: number, count: number): Float32Array {
  const size = rows.length / branches;
  const out = new Float32Array(branches * count * size);
  for (let b = 0; b < branches; b++) {
    const source = rows.subarray(b * size, (b + 1) * size);
    for (let k = 0; k < count; k++) out.set(source, (b * count + k) * size);
  }
  return out;
}

/**
 * SDXL's time_ids per branch, as diffusers' _get_add_time_ids with its defaults: original size = target size =
 * the render size, crop (0, 0); a refiner's (5 values) ends in the aesthetic score, 6 for the positive branch and
 * 2.5 for the negative.
 */
export function addedTimeIds(length: 5 | 6, width: number, height: number, cfg: boolean): Float32Array {
  const ids = (aesthetic: number) =>
    length === 5 ? [height, width, 0, 0, aesthetic] : [height, width, 0, 0, height, width];
  return Float32Array.from(cfg ? [...ids(2.5), ...ids(6)] : ids(6));
}

/**
 * Rows `first .. first+rows` of a row-major array with `size` values per row, padded to `batchRows` rows by
 * repeating the last one (static-shape exports take exactly their batch). No copy when nothing is padded.
 */
function takeRows(
  data: Float32Array,
  first: number,
  rows: number,
  batchRows: number,
  size: number,
): Float32Array {
  const view = data.subarray(first * size, (first + rows) * size);
  if (rows === batchRows) return view;
  const out = new Float32Array(batchRows * size);
  out.set(view);
  for (let r = rows; r < batchRows; r++) out.set(view.subarray((rows - 1) * size), r * size);
  return out;
}

function repeatRows(row: Float32Array, rows: number): Float32Array {
  const out = new Float32Array(rows * row.length);
  for (let r = 0; r < rows; r++) out.set(row, r * row.length);
  return out;
}

/**
 * VAE output [1, 3, H, W] in about [-1, 1] → RGB bytes, as diffusers: clip(x/2 + 0.5, 0, 1) · 255, then numpy's
 * round-half-to-even, which is exactly what a Uint8ClampedArray store does (clamping included).
 */
function toRgb(chw: Float32Array, width: number, height: number): RgbPixels {
  const plane = width * height;
  if (chw.length !== 3 * plane) {
    throw new EaselError(
      "model_file",
      `VAE decoder returned ${chw.length} values, expected 3×${height}×${width}`,
    );
  }
  if (SIMD_KERNELS && plane % 4 === 0) return { width, height, data: SIMD_KERNELS.toRgb(chw, plane) };
  const rgb = new Uint8ClampedArray(plane * 3);
  for (let c = 0; c < 3; c++) channelToBytes(chw, c * plane, plane, rgb, c);
  return { width, height, data: new Uint8Array(rgb.buffer) };
}

/** One channel plane into every third byte: f32(f32(x / 2) + 0.5) · 255, rounded and clamped by the store. */
function channelToBytes(
  chw: Float32Array,
  offset: number,
  plane: number,
  rgb: Uint8ClampedArray,
  c: number,
): void {
  for (let p = 0; p < plane; p++) {
    // x · 0.5 is x / 2 exactly (both are the correctly rounded half).
    const v = f32(f32((chw[offset + p] as number) * 0.5) + 0.5);
    rgb[p * 3 + c] = f32(v * 255);
  }
}

/** img2img: the start image through the VAE encoder, one latent per image (each with its own generator). */
async function encodeInit(
  model: LdmModel,
  runner: TimedRunner,
  image: RgbPixels,
  generators: TorchGenerator[],
  timings: GenerateTimings,
): Promise<Float32Array[]> {
  const { io } = model;
  if (model.vaeEncoder === undefined || io.vaeEncoderInput === undefined) {
    throw new EaselError(
      "not_supported",
      `model ${model.folder.name} has no vae_encoder/model.onnx: it cannot start from an image`,
    );
  }
  const { width, height } = image;
  const plane = width * height;
  const chw = new Float32Array(3 * plane);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) chw[c * plane + p] = (image.data[p * 3 + c] as number) / 127.5 - 1;
  }
  const encoded = await runner.run(
    model.vaeEncoder,
    { [io.vaeEncoderInput]: floatTensor(io.floatTypes.vaeEncoder, chw, [1, 3, height, width]) },
    `VAE encoder (${model.folder.vaeEncoder})`,
  );
  timings.vaeMs += encoded.ms;
  const output = readFloats(encoded.outputs[io.vaeEncoderOutput ?? "latent_sample"], "VAE encoder");
  const latentSize = 4 * (width / 8) * (height / 8);
  const scale = model.folder.vaeScalingFactor;
  return generators.map((generator) => {
    const latent = new Float32Array(latentSize);
    if (io.vaeEncoderOutput === "latent_parameters") {
      // DiagonalGaussianDistribution.sample: mean + exp(0.5 · clamp(logvar, -30, 20)) · noise, noise from the seed.
      const noise = generator.randn(latentSize);
      for (let j = 0; j < latentSize; j++) {
        const logvar = Math.min(20, Math.max(-30, output[latentSize + j] as number));
        latent[j] = scale * ((output[j] as number) + Math.exp(0.5 * logvar) * (noise[j] as number));
      }
    } else {
      for (let j = 0; j < latentSize; j++) latent[j] = scale * (output[j] as number);
    }
    return latent;
  });
}
