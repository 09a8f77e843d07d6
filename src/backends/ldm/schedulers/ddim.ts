import { EaselError } from "../../../core/errors.ts";
import type { TorchGenerator } from "../torch-random.ts";
import { BaseScheduler, spacedTimesteps } from "./base.ts";
import type { SchedulerConfig } from "./config.ts";
import { clipInto, ddpmPrediction, weightedSum } from "./kernels.ts";
import { roundHalfEven, torchAt } from "./math.ts";
import type { SchedulerName, StepOutput } from "./types.ts";

// A module-local alias: an imported function is called through a module binding getter under tsx, too
// slow for per-element loops.
const f32 = Math.fround;

/** Options of DDIM's `step` that diffusers passes per call; easel fixes them per scheduler. */
export interface DdimOptions {
  /** η: 0 is deterministic DDIM (the default), 1 is DDPM-like ancestral noise. */
  eta?: number;
}

/** diffusers' DDIMScheduler (Song et al. 2020), deterministic with the default η = 0. */
export class DdimScheduler extends BaseScheduler {
  readonly timestepKind = "int";
  readonly initNoiseSigma = 1;
  private readonly eta: number;
  override readonly noisePerStep: boolean;
  private readonly finalAlphaCumprod: number;
  private stepsRequested = 0;

  constructor(name: SchedulerName, config: SchedulerConfig, options: DdimOptions = {}) {
    const eta = options.eta ?? 0;
    if (!(eta >= 0 && eta <= 1))
      throw new EaselError("invalid_argument", `DDIM eta must be in 0..1 (got ${eta})`);
    super(name, config);
    this.eta = eta;
    this.noisePerStep = eta > 0;
    // The "previous" ᾱ after the last step: 1 (fully clean), or ᾱ[0] as SD's configs ask.
    this.finalAlphaCumprod = config.set_alpha_to_one ? 1 : (this.schedule.alphasCumprod[0] as number);
  }

  protected computeTimesteps(steps: number): void {
    this.stepsRequested = steps;
    this.timestepList = Object.freeze(spacedTimesteps(this.config, steps).map(roundHalfEven));
  }

  protected stepAt(
    modelOutput: Float32Array,
    stepIndex: number,
    sample: Float32Array,
    generator: TorchGenerator | undefined,
  ): StepOutput {
    const ac = this.schedule.alphasCumprod;
    const t = this.timestepList[stepIndex] as number;
    // diffusers steps back by N // steps whatever the spacing, so linspace/trailing runs can skip or repeat.
    const prevT = t - Math.floor(this.config.num_train_timesteps / this.stepsRequested);
    const alphaT = torchAt(ac, t);
    const alphaPrev = prevT >= 0 ? torchAt(ac, prevT) : this.finalAlphaCumprod;
    const betaT = f32(1 - alphaT);
    const sqrtAlphaT = f32(Math.sqrt(alphaT));
    const sqrtBetaT = f32(Math.sqrt(betaT));
    const n = sample.length;

    const x0 = this.buffer("denoised", n);
    const eps = this.buffer("eps", n);
    ddpmPrediction(this.config.prediction_type, sample, modelOutput, sqrtAlphaT, sqrtBetaT, x0, eps);
    if (this.config.clip_sample) clipInto(x0, this.config.clip_sample_range);

    const betaPrev = f32(1 - alphaPrev);
    const variance = f32(f32(betaPrev / betaT) * f32(1 - f32(alphaT / alphaPrev)));
    const std = f32(this.eta * f32(Math.sqrt(variance)));
    const directionScale = f32(Math.sqrt(f32(f32(1 - alphaPrev) - f32(std * std))));
    const sqrtAlphaPrev = f32(Math.sqrt(alphaPrev));
    const prev = this.prevOut(sample, modelOutput);
    weightedSum(x0, sqrtAlphaPrev, eps, directionScale, prev);
    if (this.eta > 0) {
      const noise = this.requireGenerator(generator).randnInto(this.buffer("noise", n));
      weightedSum(prev, 1, noise, std, prev);
    }
    return { prevSample: prev, denoised: x0 };
  }
}
