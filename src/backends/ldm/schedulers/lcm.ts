import { EaselError } from "../../../core/errors.ts";
import type { TorchGenerator } from "../torch-random.ts";
import { BaseScheduler, checkSteps } from "./base.ts";
import { clipInto, ddpmPrediction, weightedSum } from "./kernels.ts";
import { npLinspace, torchAt } from "./math.ts";
import type { StepOutput } from "./types.ts";

// A module-local alias: an imported function is called through a module binding getter under tsx, too
// slow for per-element loops.
const f32 = Math.fround;

/** The boundary-condition σ of consistency models (σ_data), fixed at 0.5 by diffusers. */
const SIGMA_DATA = 0.5;

/**
 * diffusers' LCMScheduler (latent consistency models, also LCM-LoRA): each step predicts the clean latents
 * (`denoised`) and, except on the last step, re-noises them to the next timestep with fresh noise from the
 * pipeline's generator. Timesteps are picked from the distillation grid of `original_inference_steps`, so at
 * most that many steps (50 by default) are possible.
 */
export class LcmScheduler extends BaseScheduler {
  override readonly noisePerStep = true;
  readonly timestepKind = "int";
  readonly initNoiseSigma = 1;
  private stepsRequested = 0;

  override setTimesteps(steps: number): void {
    checkSteps(steps);
    const original = this.config.original_inference_steps;
    if (steps > original) {
      // diffusers refuses this too: LCM picks its timesteps from a grid of `original_inference_steps`.
      throw new EaselError(
        "invalid_argument",
        `LCM takes 1..${original} steps (its original_inference_steps); got ${steps}`,
      );
    }
    super.setTimesteps(steps);
  }

  protected computeTimesteps(steps: number): void {
    this.stepsRequested = steps;
    const original = this.config.original_inference_steps;
    // The distillation grid: k = N // original, timesteps k·i − 1 for i = original..1.
    const k = Math.floor(this.config.num_train_timesteps / original);
    const grid = Array.from({ length: original }, (_, i) => (original - i) * k - 1);
    const picks = npLinspace(0, grid.length, steps, false).map(Math.floor);
    this.timestepList = Object.freeze(picks.map((i) => grid[i] as number));
  }

  protected stepAt(
    modelOutput: Float32Array,
    stepIndex: number,
    sample: Float32Array,
    generator: TorchGenerator | undefined,
  ): StepOutput {
    const ac = this.schedule.alphasCumprod;
    const t = this.timestepList[stepIndex] as number;
    const isLast = stepIndex === this.stepsRequested - 1;
    const prevT = stepIndex + 1 < this.timestepList.length ? (this.timestepList[stepIndex + 1] as number) : t;
    const alphaT = torchAt(ac, t);
    const betaT = f32(1 - alphaT);
    const sqrtAlphaT = f32(Math.sqrt(alphaT));
    const sqrtBetaT = f32(Math.sqrt(betaT));

    // c_skip and c_out from the int64 timestep times a Python float: torch promotes to float32.
    const scaled = f32(t * this.config.timestep_scaling);
    const scaledSqPlus = f32(f32(scaled * scaled) + SIGMA_DATA ** 2);
    const cSkip = f32(SIGMA_DATA ** 2 / scaledSqPlus);
    const cOut = f32(scaled / f32(Math.sqrt(scaledSqPlus)));

    const n = sample.length;
    const denoised = this.buffer("denoised", n);
    ddpmPrediction(
      this.config.prediction_type,
      sample,
      modelOutput,
      sqrtAlphaT,
      sqrtBetaT,
      denoised,
      undefined,
    );
    if (this.config.clip_sample) clipInto(denoised, this.config.clip_sample_range);
    weightedSum(denoised, cOut, sample, cSkip, denoised);
    const prev = this.prevOut(sample, modelOutput);
    if (isLast) {
      prev.set(denoised);
      return { prevSample: prev, denoised };
    }

    const alphaPrev = torchAt(ac, prevT);
    const sqrtAlphaPrev = f32(Math.sqrt(alphaPrev));
    const sqrtBetaPrev = f32(Math.sqrt(f32(1 - alphaPrev)));
    const noise = this.requireGenerator(generator).randnInto(this.buffer("noise", n));
    weightedSum(denoised, sqrtAlphaPrev, noise, sqrtBetaPrev, prev);
    return { prevSample: prev, denoised };
  }
}
