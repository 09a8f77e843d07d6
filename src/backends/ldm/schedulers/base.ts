import { EaselError } from "../../../core/errors.ts";
import type { TorchGenerator } from "../torch-random.ts";
import { MAX_STEPS, type SchedulerConfig } from "./config.ts";
import { npArange, npLinspace, roundHalfEven, torchAt, torchCumprodF32, torchLinspaceF32 } from "./math.ts";
import type { Scheduler, SchedulerName, StepOutput } from "./types.ts";

// A module-local alias: an imported function is called through a module binding getter under tsx, too
// slow for per-element loops.
const f32 = Math.fround;

/** The training noise schedule every scheduler derives from, all float32 as diffusers keeps it. */
export interface NoiseSchedule {
  readonly betas: Float32Array;
  readonly alphasCumprod: Float32Array;
}

/** `betas` and `alphas_cumprod` exactly as diffusers' constructors build them in torch float32. */
export function noiseSchedule(config: SchedulerConfig): NoiseSchedule {
  const n = config.num_train_timesteps;
  let betas: Float32Array;
  if (config.trained_betas !== null) {
    betas = Float32Array.from(config.trained_betas);
  } else if (config.beta_schedule === "linear") {
    betas = torchLinspaceF32(config.beta_start, config.beta_end, n);
  } else if (config.beta_schedule === "scaled_linear") {
    // Latent diffusion's schedule: linear in sqrt(beta).
    betas = torchLinspaceF32(config.beta_start ** 0.5, config.beta_end ** 0.5, n).map((b) => f32(b * b));
  } else {
    betas = cosineBetas(n);
  }
  if (config.rescale_betas_zero_snr) betas = rescaleZeroTerminalSnr(betas);
  return { betas, alphasCumprod: torchCumprodF32(betas.map((b) => f32(1 - b))) };
}

/** diffusers' `betas_for_alpha_bar` with the cosine transform (Nichol & Dhariwal), in float64, then float32. */
function cosineBetas(n: number): Float32Array {
  const alphaBar = (t: number): number => Math.cos((((t + 0.008) / 1.008) * Math.PI) / 2) ** 2;
  const betas = new Float32Array(n);
  for (let i = 0; i < n; i++) betas[i] = Math.min(1 - alphaBar((i + 1) / n) / alphaBar(i / n), 0.999);
  return betas;
}

/** diffusers' `rescale_zero_terminal_snr` (Lin et al. 2023): zero SNR at the last step, in float32 ops. */
function rescaleZeroTerminalSnr(betas: Float32Array): Float32Array {
  const sqrtBar = torchCumprodF32(betas.map((b) => f32(1 - b))).map((a) => f32(Math.sqrt(a)));
  const first = sqrtBar[0] as number;
  const last = sqrtBar[sqrtBar.length - 1] as number;
  const scale = f32(first / f32(first - last));
  const bar = sqrtBar.map((s) => {
    const shifted = f32(f32(s - last) * scale);
    return f32(shifted * shifted);
  });
  const out = new Float32Array(bar.length);
  for (let i = 0; i < bar.length; i++) {
    const alpha = i === 0 ? (bar[0] as number) : f32((bar[i] as number) / (bar[i - 1] as number));
    out[i] = f32(1 - alpha);
  }
  return out;
}

/** `sqrt((1 - ᾱ) / ᾱ)` per training timestep, in torch float32: the k-diffusion sigma table. */
export function sigmaTable(alphasCumprod: Float32Array): Float32Array {
  return alphasCumprod.map((a) => f32(Math.sqrt(f32(f32(1 - a) / a))));
}

/**
 * The descending inference timesteps shared by DDIM, Euler and Euler ancestral (PNDM reverses them), before
 * any rounding to int: linspace keeps fractions, leading multiplies by `N // steps` and adds `steps_offset`,
 * trailing rounds `arange(N, 0, -N/steps)` half-to-even and subtracts 1.
 */
export function spacedTimesteps(config: SchedulerConfig, steps: number): number[] {
  const n = config.num_train_timesteps;
  switch (config.timestep_spacing) {
    case "linspace":
      return npLinspace(0, n - 1, steps).reverse();
    case "leading": {
      const ratio = Math.floor(n / steps);
      return Array.from({ length: steps }, (_, i) => (steps - 1 - i) * ratio + config.steps_offset);
    }
    case "trailing":
      return npArange(n, 0, -n / steps).map((t) => roundHalfEven(t) - 1);
  }
}

/** Throws the user-facing error for a step count outside 1..`max` (150 unless the scheduler allows fewer). */
export function checkSteps(steps: number, max = MAX_STEPS): void {
  if (!Number.isInteger(steps) || steps < 1 || steps > max) {
    throw new EaselError("invalid_argument", `steps must be a whole number in 1..${max} (got ${steps})`);
  }
}

/**
 * What all schedulers share: the noise schedule, the step-count check, index bookkeeping and input checks.
 * Subclasses compute timesteps in `computeTimesteps` and do the maths in `stepAt`.
 */
export abstract class BaseScheduler implements Scheduler {
  readonly name: SchedulerName;
  readonly config: Readonly<SchedulerConfig>;
  abstract readonly timestepKind: "int" | "float";
  readonly noisePerStep: boolean = false;
  protected readonly schedule: NoiseSchedule;
  protected timestepList: readonly number[] = [];
  protected sigmaList: Float32Array | undefined;
  /** The index the next step must have; undefined until the first step after setTimesteps. */
  private nextStep: number | undefined;
  /** prevSample buffers, used in turn: the caller hands one back as the next step's sample. */
  private prevBuffers: [Float32Array, Float32Array] = [new Float32Array(0), new Float32Array(0)];
  private readonly scratch = new Map<string, Float32Array>();

  constructor(name: SchedulerName, config: SchedulerConfig) {
    this.name = name;
    this.config = Object.freeze({ ...config });
    this.schedule = noiseSchedule(config);
  }

  get timesteps(): readonly number[] {
    return this.timestepList;
  }

  get sigmas(): Float32Array | undefined {
    return this.sigmaList?.slice();
  }

  abstract get initNoiseSigma(): number;

  setTimesteps(steps: number): void {
    checkSteps(steps, Math.min(MAX_STEPS, this.config.num_train_timesteps));
    this.nextStep = undefined;
    this.computeTimesteps(steps);
  }

  timestepForUnet(stepIndex: number): number {
    return this.timestepList[this.checkIndex(stepIndex)] as number;
  }

  modelInputDivisor(stepIndex: number): number {
    this.checkIndex(stepIndex);
    return 1;
  }

  scaleModelInput(sample: Float32Array, stepIndex: number): Float32Array {
    const divisor = this.modelInputDivisor(stepIndex);
    const out = new Float32Array(sample.length);
    for (let i = 0; i < out.length; i++) out[i] = (sample[i] as number) / divisor;
    return out;
  }

  step(
    modelOutput: Float32Array,
    stepIndex: number,
    sample: Float32Array,
    generator?: TorchGenerator,
  ): StepOutput {
    this.checkIndex(stepIndex);
    // The first step may start anywhere (img2img starts part-way, like diffusers' begin index); then in order.
    if (this.nextStep !== undefined && stepIndex !== this.nextStep) {
      throw new EaselError(
        "invalid_argument",
        `${this.name}: step ${stepIndex} called out of order (expected step ${this.nextStep}; call setTimesteps to start over)`,
      );
    }
    this.checkSameLength(modelOutput, sample, "model output");
    const out = this.stepAt(modelOutput, stepIndex, sample, generator);
    this.nextStep = stepIndex + 1;
    return out;
  }

  addNoise(original: Float32Array, noise: Float32Array, stepIndex: number): Float32Array {
    this.checkIndex(stepIndex);
    this.checkSameLength(noise, original, "noise");
    const [originalScale, noiseScale] = this.noiseScales(stepIndex);
    const out = new Float32Array(original.length);
    for (let i = 0; i < out.length; i++) {
      out[i] = f32(originalScale * (original[i] as number)) + f32(noiseScale * (noise[i] as number));
    }
    return out;
  }

  /**
   * diffusers' `add_noise` coefficients at a step, [for the clean latents, for the noise]: √ᾱ_t and √(1−ᾱ_t)
   * for the DDPM-style schedulers; the sigma schedulers override this.
   */
  protected noiseScales(stepIndex: number): [number, number] {
    const alphaBar = torchAt(this.schedule.alphasCumprod, this.timestepList[stepIndex] as number);
    return [f32(Math.sqrt(alphaBar)), f32(Math.sqrt(f32(1 - alphaBar)))];
  }

  /** Sets `timestepList` (and `sigmaList`) for `steps` and resets per-run state. */
  protected abstract computeTimesteps(steps: number): void;

  /** The scheduler's step maths; indices and sizes are already checked. */
  protected abstract stepAt(
    modelOutput: Float32Array,
    stepIndex: number,
    sample: Float32Array,
    generator: TorchGenerator | undefined,
  ): StepOutput;

  /**
   * The buffer for a step's prevSample: one of two the scheduler owns, whichever is not an input of this step, so
   * a caller that passes the last prevSample back as the sample never has it overwritten while it is read.
   */
  protected prevOut(sample: Float32Array, modelOutput: Float32Array): Float32Array {
    const n = sample.length;
    if (this.prevBuffers[0].length !== n) this.prevBuffers = [new Float32Array(n), new Float32Array(n)];
    const [a, b] = this.prevBuffers;
    if (a !== sample && a !== modelOutput) return a;
    if (b !== sample && b !== modelOutput) return b;
    return new Float32Array(n);
  }

  /** A named working buffer of `n` values, kept from step to step (its contents are the caller's to manage). */
  protected buffer(name: string, n: number): Float32Array {
    let buffer = this.scratch.get(name);
    if (buffer?.length !== n) {
      buffer = new Float32Array(n);
      this.scratch.set(name, buffer);
    }
    return buffer;
  }

  /** The generator, or an error saying this step draws noise and needs the pipeline's generator. */
  protected requireGenerator(generator: TorchGenerator | undefined): TorchGenerator {
    if (generator === undefined) {
      throw new EaselError(
        "invalid_argument",
        `${this.name}: this step adds noise and needs the generator that drew the initial latents`,
      );
    }
    return generator;
  }

  private checkSameLength(values: Float32Array, sample: Float32Array, what: string): void {
    if (values.length !== sample.length) {
      throw new EaselError(
        "invalid_argument",
        `${this.name}: ${what} has ${values.length} values but the sample has ${sample.length}`,
      );
    }
  }

  /** Validates a step index against the current timesteps and returns it. */
  protected checkIndex(stepIndex: number): number {
    if (this.timestepList.length === 0) {
      throw new EaselError("invalid_argument", `${this.name}: call setTimesteps before stepping`);
    }
    if (!Number.isInteger(stepIndex) || stepIndex < 0 || stepIndex >= this.timestepList.length) {
      throw new EaselError(
        "invalid_argument",
        `${this.name}: step index must be in 0..${this.timestepList.length - 1} (got ${stepIndex})`,
      );
    }
    return stepIndex;
  }
}
