import { SAMPLER_NAMES } from "../../../core/prompt-flags.ts";
import type { TorchGenerator } from "../torch-random.ts";
import type { SchedulerConfig } from "./config.ts";

/** Scheduler names users can pick (`--sampler`): core's list, since core validates requests without backends. */
export const SCHEDULER_NAMES = SAMPLER_NAMES;

/** A scheduler name easel knows (see SCHEDULER_NAMES). */
export type SchedulerName = (typeof SCHEDULER_NAMES)[number];

/**
 * What one denoising step produces. The arrays belong to the scheduler and are reused, so that a step allocates
 * nothing: `denoised` is overwritten by the next step, `prevSample` by the step after it (the next step may take
 * it as its sample). Copy what must outlive that.
 */
export interface StepOutput {
  /** The latents for the next step (x_{t-1}); after the last step, the final latents. */
  prevSample: Float32Array;
  /** The model's current estimate of the clean latents (x0, LCM's `denoised`), for previews; not for PNDM. */
  denoised?: Float32Array;
}

/**
 * A diffusion sampler that reproduces one diffusers scheduler. Usage, as diffusers pipelines do:
 * `setTimesteps(n)`, `latents = noise * initNoiseSigma`, then for each `i` in `timesteps`:
 * `eps = unet(scaleModelInput(latents, i), timestepForUnet(i))`, `latents = step(eps, i, latents, g).prevSample`.
 * Steps go by index because PNDM repeats a timestep. After `setTimesteps` the first step may be any index
 * (img2img starts part-way, like diffusers' begin index); later steps must follow in order.
 */
export interface Scheduler {
  /** The easel name this scheduler was created under. */
  readonly name: SchedulerName;
  /** The resolved diffusers config it runs with. */
  readonly config: Readonly<SchedulerConfig>;
  /** Computes the timesteps (and sigmas) for `steps` inference steps, 1..150; resets the run. */
  setTimesteps(steps: number): void;
  /** diffusers' `scheduler.timesteps`: one UNet call each (PNDM has steps+1; odd spacings can add one). */
  readonly timesteps: readonly number[];
  /** `"float"` for the Euler family, whose timesteps are float32 and may be fractional; `"int"` otherwise. */
  readonly timestepKind: "int" | "float";
  /** diffusers' `scheduler.sigmas` (float32, with the final sigma) where the scheduler has them. */
  readonly sigmas: Float32Array | undefined;
  /** Whether every step draws fresh noise from the generator (Euler ancestral, LCM, DDIM with η > 0). */
  readonly noisePerStep: boolean;
  /** Scale for the initial standard-normal noise (diffusers' `init_noise_sigma`), as a float32 value. */
  readonly initNoiseSigma: number;
  /** The timestep value to feed the UNet at step `stepIndex`. */
  timestepForUnet(stepIndex: number): number;
  /** What the UNet input is divided by at step `stepIndex`: √(σ²+1) for the Euler family, 1 for the others. */
  modelInputDivisor(stepIndex: number): number;
  /** The UNet input for step `stepIndex`: a new array, `sample / modelInputDivisor(stepIndex)`. */
  scaleModelInput(sample: Float32Array, stepIndex: number): Float32Array;
  /**
   * One denoising step from the model output at step `stepIndex`; never mutates its inputs (see StepOutput for
   * how long the arrays it returns stay valid). `generator` is
   * required by schedulers that add noise (Euler ancestral, LCM before its last step, DDIM with eta > 0) and
   * is the same generator that drew the initial latents, as in diffusers pipelines.
   */
  step(
    modelOutput: Float32Array,
    stepIndex: number,
    sample: Float32Array,
    generator?: TorchGenerator,
  ): StepOutput;
  /**
   * diffusers' `add_noise`: clean latents noised to the level of step `stepIndex`, where an img2img run
   * starts (its first `step` may then be `stepIndex`). Returns a new array.
   */
  addNoise(original: Float32Array, noise: Float32Array, stepIndex: number): Float32Array;
}
