import { EaselError } from "../../../core/errors.ts";
import type { TorchGenerator } from "../torch-random.ts";
import { BaseScheduler, checkSteps } from "./base.ts";
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
    const denoised = new Float32Array(n);
    const clip = this.config.clip_sample ? this.config.clip_sample_range : Number.POSITIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      const x = sample[i] as number;
      const m = modelOutput[i] as number;
      let x0: number;
      switch (this.config.prediction_type) {
        case "epsilon":
          x0 = f32(f32(x - f32(sqrtBetaT * m)) / sqrtAlphaT);
          break;
        case "sample":
          x0 = m;
          break;
        case "v_prediction":
          x0 = f32(f32(sqrtAlphaT * x) - f32(sqrtBetaT * m));
          break;
      }
      x0 = Math.min(Math.max(x0, -clip), clip);
      denoised[i] = f32(cOut * x0) + f32(cSkip * x);
    }
    if (isLast) return { prevSample: denoised.slice(), denoised };

    const alphaPrev = torchAt(ac, prevT);
    const sqrtAlphaPrev = f32(Math.sqrt(alphaPrev));
    const sqrtBetaPrev = f32(Math.sqrt(f32(1 - alphaPrev)));
    const noise = this.requireGenerator(generator).randn(n);
    const prev = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      prev[i] = f32(sqrtAlphaPrev * (denoised[i] as number)) + f32(sqrtBetaPrev * (noise[i] as number));
    }
    return { prevSample: prev, denoised };
  }
}
