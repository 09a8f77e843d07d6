import { EaselError } from "../../../core/errors.ts";
import type { TorchGenerator } from "../torch-random.ts";
import type { SchedulerConfig } from "./config.ts";
import { SigmaScheduler } from "./euler.ts";
import type { SchedulerName, StepOutput } from "./types.ts";

// A module-local alias: an imported function is called through a module binding getter under tsx, too
// slow for per-element loops.
const f32 = Math.fround;

/**
 * diffusers' EulerAncestralDiscreteScheduler: an Euler step down to σ_down, then fresh noise of size σ_up drawn
 * from the pipeline's generator on every step (so the image depends on the whole noise stream, not just the
 * initial latents).
 */
export class EulerAncestralScheduler extends SigmaScheduler {
  override readonly noisePerStep = true;
  constructor(name: SchedulerName, config: SchedulerConfig) {
    if (config.prediction_type === "sample") {
      // diffusers raises NotImplementedError for it.
      throw new EaselError(
        "not_supported",
        'EulerAncestralDiscreteScheduler: prediction_type "sample" is not supported',
      );
    }
    super(name, config);
  }

  protected stepAt(
    modelOutput: Float32Array,
    stepIndex: number,
    sample: Float32Array,
    generator: TorchGenerator | undefined,
  ): StepOutput {
    const g = this.requireGenerator(generator);
    const sigma = this.sigmaValues[stepIndex] as number;
    const sigmaTo = this.sigmaValues[stepIndex + 1] as number;
    const fromSq = f32(sigma * sigma);
    const toSq = f32(sigmaTo * sigmaTo);
    const sigmaUp = f32(Math.sqrt(f32(f32(toSq * f32(fromSq - toSq)) / fromSq)));
    const sigmaDown = f32(Math.sqrt(f32(toSq - f32(sigmaUp * sigmaUp))));
    const dt = f32(sigmaDown - sigma);

    const noise = g.randnInto(this.buffer("noise", sample.length));
    const prev = this.prevOut(sample, modelOutput);
    return {
      prevSample: prev,
      denoised: this.eulerStep(modelOutput, sample, sigma, dt, prev, noise, sigmaUp),
    };
  }
}
