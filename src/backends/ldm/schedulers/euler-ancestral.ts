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
  /** Reused noise buffer: a [2,4,128,128] step should not allocate twice. */
  private noise = new Float32Array(0);

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

    const x0 = this.predictOriginal(modelOutput, sample, sigma);
    if (this.noise.length !== sample.length) this.noise = new Float32Array(sample.length);
    const noise = g.randnInto(this.noise);
    const prev = new Float32Array(sample.length);
    for (let i = 0; i < prev.length; i++) {
      const x = sample[i] as number;
      const derivative = f32(f32(x - (x0[i] as number)) / sigma);
      const euler = f32(x + f32(derivative * dt));
      prev[i] = euler + f32((noise[i] as number) * sigmaUp);
    }
    return { prevSample: prev, denoised: x0 };
  }
}
