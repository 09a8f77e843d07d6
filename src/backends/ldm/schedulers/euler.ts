import { SIMD_KERNELS } from "../simd-kernels.ts";
import type { TorchGenerator } from "../torch-random.ts";
import { BaseScheduler, sigmaTable, spacedTimesteps } from "./base.ts";
import type { SchedulerConfig } from "./config.ts";
import { weightedSum } from "./kernels.ts";
import { karrasSigmas, npInterpIndex, sigmaToT } from "./math.ts";
import type { SchedulerName, StepOutput } from "./types.ts";

// A module-local alias: an imported function is called through a module binding getter under tsx, too
// slow for per-element loops.
const f32 = Math.fround;

/**
 * What diffusers' EulerDiscrete and EulerAncestralDiscrete share: float timesteps, sigmas interpolated from the
 * training sigma table (optionally re-spaced as Karras sigmas), the init-noise rule and √(σ²+1) input scaling.
 */
export abstract class SigmaScheduler extends BaseScheduler {
  readonly timestepKind = "float";
  /** σ(t) for every training timestep, float32. */
  private readonly table: Float32Array;
  private readonly logTable: Float32Array;
  /** The current sigmas, always set: before setTimesteps diffusers has the whole table (so init σ is σmax). */
  protected sigmaValues: Float32Array;

  constructor(name: SchedulerName, config: SchedulerConfig) {
    super(name, config);
    let alphasCumprod = this.schedule.alphasCumprod;
    if (config.rescale_betas_zero_snr) {
      // diffusers keeps the last ᾱ slightly above zero so σ stays finite.
      alphasCumprod = alphasCumprod.slice();
      alphasCumprod[alphasCumprod.length - 1] = 2 ** -24;
    }
    this.table = sigmaTable(alphasCumprod);
    this.logTable = this.table.map((s) => Math.log(s));
    this.sigmaValues = Float32Array.from([...this.table].reverse().concat(0));
  }

  /** σmax for linspace/trailing spacing, √(σmax²+1) for leading, in float32 as diffusers computes it. */
  get initNoiseSigma(): number {
    let max = 0;
    for (const s of this.sigmaValues) max = Math.max(max, s);
    if (this.config.timestep_spacing === "linspace" || this.config.timestep_spacing === "trailing")
      return max;
    return f32(Math.sqrt(f32(f32(max * max) + 1)));
  }

  protected computeTimesteps(steps: number): void {
    const config = this.config;
    // np.float32 timesteps, then np.interp in float64 between integer training timesteps.
    let timesteps = spacedTimesteps(config, steps).map(f32);
    let sigmas = timesteps.map((t) => npInterpIndex(t, this.table));
    if (config.use_karras_sigmas) {
      const sigmaMin = config.sigma_min ?? (sigmas[sigmas.length - 1] as number);
      const sigmaMax = config.sigma_max ?? (sigmas[0] as number);
      sigmas = karrasSigmas(sigmaMin, sigmaMax, steps);
      timesteps = sigmas.map((s) => f32(sigmaToT(s, this.logTable)));
    }
    const last = config.final_sigmas_type === "sigma_min" ? (this.table[0] as number) : 0;
    this.sigmaValues = Float32Array.from([...sigmas, last]);
    this.sigmaList = this.sigmaValues;
    if (config.timestep_type === "continuous" && config.prediction_type === "v_prediction") {
      // EDM-style conditioning: the UNet takes c_noise = ¼·ln σ instead of a training timestep.
      timesteps = [...this.sigmaValues.subarray(0, -1)].map((s) => f32(0.25 * f32(Math.log(s))));
    }
    this.timestepList = Object.freeze(timesteps);
  }

  override modelInputDivisor(stepIndex: number): number {
    this.checkIndex(stepIndex);
    const sigma = this.sigmaValues[stepIndex] as number;
    return f32(Math.sqrt(f32(f32(sigma * sigma) + 1)));
  }

  /**
   * The Euler update into `prev`, returning x0 (the denoised buffer): for ε-prediction in one pass with x0,
   * otherwise after predictOriginal. `noise` and σ_up make it ancestral.
   */
  protected eulerStep(
    modelOutput: Float32Array,
    sample: Float32Array,
    sigma: number,
    dt: number,
    prev: Float32Array,
    noise?: Float32Array,
    sigmaUp = 0,
  ): Float32Array {
    const k = { sigma, dt, noise, sigmaUp };
    if (this.config.prediction_type === "epsilon") {
      const x0 = this.buffer("denoised", sample.length);
      // σ, dt and σ_up are float32 values (the SIMD kernel takes them as such); the same bits either way.
      if (SIMD_KERNELS && sample.length % 4 === 0) SIMD_KERNELS.euler(sample, modelOutput, x0, prev, k);
      else eulerUpdate(sample, modelOutput, x0, k, prev);
      return x0;
    }
    const x0 = this.predictOriginal(modelOutput, sample, sigma);
    eulerUpdate(sample, undefined, x0, k, prev);
    return x0;
  }

  /** Euler's `add_noise` is k-diffusion's x = x0 + σ·noise. */
  protected override noiseScales(stepIndex: number): [number, number] {
    return [1, this.sigmaValues[stepIndex] as number];
  }

  /**
   * x0 from the model output at σ, per prediction type (diffusers' `pred_original_sample`), float32 ops, into the
   * scheduler's denoised buffer.
   */
  protected predictOriginal(modelOutput: Float32Array, sample: Float32Array, sigma: number): Float32Array {
    const x0 = this.buffer("denoised", sample.length);
    switch (this.config.prediction_type) {
      case "epsilon":
        weightedSum(sample, 1, modelOutput, -sigma, x0);
        break;
      case "v_prediction": {
        const variance = f32(f32(sigma * sigma) + 1);
        vPredictionOriginal(sample, modelOutput, f32(-sigma / f32(Math.sqrt(variance))), variance, x0);
        break;
      }
      case "sample":
        x0.set(modelOutput);
        break;
    }
    return x0;
  }
}

/**
 * diffusers' EulerDiscreteScheduler (k-diffusion's Euler, s_churn = 0 so it never draws noise). Also serves
 * "euler_trailing", the same class with trailing spacing that SD-Turbo ships.
 */
export class EulerScheduler extends SigmaScheduler {
  protected stepAt(
    modelOutput: Float32Array,
    stepIndex: number,
    sample: Float32Array,
    _generator: TorchGenerator | undefined,
  ): StepOutput {
    const sigma = this.sigmaValues[stepIndex] as number;
    const dt = f32((this.sigmaValues[stepIndex + 1] as number) - sigma);
    const prev = this.prevOut(sample, modelOutput);
    return { prevSample: prev, denoised: this.eulerStep(modelOutput, sample, sigma, dt, prev) };
  }
}

/** x0 = model · outScale + sample / variance (k-diffusion's v-prediction at σ), in float32 operations. */
function vPredictionOriginal(
  sample: Float32Array,
  model: Float32Array,
  outScale: number,
  variance: number,
  x0: Float32Array,
): void {
  for (let i = 0; i < x0.length; i++) {
    x0[i] = f32((model[i] as number) * outScale) + f32((sample[i] as number) / variance);
  }
}

/**
 * prev = x + ((x − x0) / σ) · dt, plus noise · σ_up when `noise` is given (ancestral), each operation rounded to
 * float32 as torch does. With `epsilon` (the model's ε), x0 = x − σ·ε is computed in the same pass and written to
 * `x0`; otherwise `x0` is read.
 */
export function eulerUpdate(
  sample: Float32Array,
  epsilon: Float32Array | undefined,
  x0: Float32Array,
  k: { sigma: number; dt: number; noise: Float32Array | undefined; sigmaUp: number },
  prev: Float32Array,
): void {
  const { sigma, dt, noise, sigmaUp } = k;
  for (let i = 0; i < prev.length; i++) {
    const x = sample[i] as number;
    let original: number;
    if (epsilon === undefined) {
      original = x0[i] as number;
    } else {
      original = f32(x - f32(sigma * (epsilon[i] as number)));
      x0[i] = original;
    }
    const derivative = f32(f32(x - original) / sigma);
    prev[i] =
      noise === undefined
        ? x + f32(derivative * dt)
        : f32(x + f32(derivative * dt)) + f32((noise[i] as number) * sigmaUp);
  }
}
