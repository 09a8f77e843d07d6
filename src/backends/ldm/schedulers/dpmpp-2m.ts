import { SIMD_KERNELS } from "../simd-kernels.ts";
import type { TorchGenerator } from "../torch-random.ts";
import { BaseScheduler, sigmaTable } from "./base.ts";
import type { SchedulerConfig } from "./config.ts";
import { ddpmPrediction, weightedSum } from "./kernels.ts";
import { karrasSigmas, npArange, npInterpIndex, npLinspace, roundHalfEven, sigmaToT } from "./math.ts";
import type { SchedulerName, StepOutput } from "./types.ts";

// A module-local alias: an imported function is called through a module binding getter under tsx, too
// slow for per-element loops.
const f32 = Math.fround;

/** α_t, σ_t and λ_t = ln α_t − ln σ_t for a k-diffusion sigma, in float32 as diffusers computes them. */
function alphaSigmaLambda(sigma: number): { alpha: number; sigmaT: number; lambda: number } {
  const alpha = f32(1 / f32(Math.sqrt(f32(f32(sigma * sigma) + 1))));
  const sigmaT = f32(sigma * alpha);
  return { alpha, sigmaT, lambda: f32(f32(Math.log(alpha)) - f32(Math.log(sigmaT))) };
}

/**
 * diffusers' DPMSolverMultistepScheduler as "DPM++ 2M": data prediction (`dpmsolver++`), second order, with
 * `lower_order_final`, optionally on Karras sigmas. Its timesteps come from steps + 1 points with the last
 * dropped, and the final step (to σ = 0) is first order, landing exactly on the predicted x0.
 */
export class DpmSolverMultistepScheduler extends BaseScheduler {
  readonly timestepKind = "int";
  readonly initNoiseSigma = 1;
  private readonly table: Float32Array;
  private readonly logTable: Float32Array;
  private readonly lambdaTable: Float32Array;
  private sigmaValues = new Float32Array(0);
  /** The previous step's x0 prediction (m1 in the paper); undefined before the first step. */
  private previousX0: Float32Array | undefined;
  /** The two x0 buffers, this step's and the previous one's, swapped every step. */
  private x0Buffers: [Float32Array, Float32Array] = [new Float32Array(0), new Float32Array(0)];
  private lowerOrderNums = 0;

  constructor(name: SchedulerName, config: SchedulerConfig) {
    super(name, config);
    const ac = this.schedule.alphasCumprod;
    this.table = sigmaTable(ac);
    this.logTable = this.table.map((s) => Math.log(s));
    this.lambdaTable = ac.map((a) =>
      f32(f32(Math.log(f32(Math.sqrt(a)))) - f32(Math.log(f32(Math.sqrt(f32(1 - a)))))),
    );
  }

  protected computeTimesteps(steps: number): void {
    const config = this.config;
    const n = config.num_train_timesteps;
    // λ is clipped from below for numerical stability (matters for cosine schedules): the last usable t.
    let clipped = 0;
    for (let i = this.lambdaTable.length - 1; i >= 0; i--) {
      if ((this.lambdaTable[i] as number) < config.lambda_min_clipped) clipped++;
      else break;
    }
    const lastTimestep = n - clipped;
    let timesteps: number[];
    switch (config.timestep_spacing) {
      case "linspace":
        timesteps = npLinspace(0, lastTimestep - 1, steps + 1)
          .map(roundHalfEven)
          .reverse()
          .slice(0, -1);
        break;
      case "leading": {
        const ratio = Math.floor(lastTimestep / (steps + 1));
        timesteps = Array.from({ length: steps }, (_, i) => (steps - i) * ratio + config.steps_offset);
        break;
      }
      case "trailing":
        timesteps = npArange(lastTimestep, 0, -n / steps).map((t) => roundHalfEven(t) - 1);
        break;
    }
    let sigmas: number[];
    if (config.use_karras_sigmas) {
      // The Karras ramp spans the whole training table; timesteps are rounded back from the sigmas.
      const table = this.table;
      sigmas = karrasSigmas(table[0] as number, table[table.length - 1] as number, steps);
      timesteps = sigmas.map((s) => roundHalfEven(sigmaToT(s, this.logTable)));
    } else {
      sigmas = timesteps.map((t) => npInterpIndex(t, this.table));
    }
    const last = config.final_sigmas_type === "sigma_min" ? (this.table[0] as number) : 0;
    this.sigmaValues = Float32Array.from([...sigmas, last]);
    this.sigmaList = this.sigmaValues;
    this.timestepList = Object.freeze(timesteps);
    this.previousX0 = undefined;
    this.lowerOrderNums = 0;
  }

  protected stepAt(
    modelOutput: Float32Array,
    stepIndex: number,
    sample: Float32Array,
    _generator: TorchGenerator | undefined,
  ): StepOutput {
    const config = this.config;
    const count = this.timestepList.length;
    const lowerOrderFinal =
      stepIndex === count - 1 &&
      (config.euler_at_final ||
        (config.lower_order_final && count < 15) ||
        config.final_sigmas_type === "zero");
    const x0 = this.dataPrediction(modelOutput, sample, this.sigmaValues[stepIndex] as number);

    const s0 = alphaSigmaLambda(this.sigmaValues[stepIndex] as number);
    const t = alphaSigmaLambda(this.sigmaValues[stepIndex + 1] as number);
    const h = f32(t.lambda - s0.lambda);
    const ratio = f32(t.sigmaT / s0.sigmaT);
    const phi = f32(t.alpha * f32(f32(Math.exp(-h)) - 1));
    const prev = this.prevOut(sample, modelOutput);
    const m1 = this.previousX0;

    if (config.solver_order === 1 || this.lowerOrderNums < 1 || lowerOrderFinal || m1 === undefined) {
      weightedSum(sample, ratio, x0, -phi, prev);
    } else {
      const s1 = alphaSigmaLambda(this.sigmaValues[stepIndex - 1] as number);
      const h0 = f32(s0.lambda - s1.lambda);
      const invR0 = f32(1 / f32(h0 / h));
      // midpoint: − ½·φ·D1; heun: + α_t((e^{−h} − 1)/h + 1)·D1.
      const d1Scale =
        config.solver_type === "midpoint"
          ? -f32(0.5 * phi)
          : f32(t.alpha * f32(f32(f32(f32(Math.exp(-h)) - 1) / h) + 1));
      const k = { ratio, phi, invR0, d1Scale };
      // The coefficients are float32 values: the SIMD kernel gives the same bits.
      if (SIMD_KERNELS && prev.length % 4 === 0) SIMD_KERNELS.dpmSecond(sample, x0, m1, k, prev);
      else secondOrderUpdate(sample, x0, m1, k, prev);
    }
    if (this.lowerOrderNums < config.solver_order) this.lowerOrderNums++;
    this.previousX0 = x0;
    return { prevSample: prev, denoised: x0 };
  }

  /** DPM-Solver's `add_noise`: α_t·x0 + σ_t·noise for the step's sigma. */
  protected override noiseScales(stepIndex: number): [number, number] {
    const { alpha, sigmaT } = alphaSigmaLambda(this.sigmaValues[stepIndex] as number);
    return [alpha, sigmaT];
  }

  /** diffusers' `convert_model_output` for dpmsolver++: the model output as a data (x0) prediction. */
  private dataPrediction(modelOutput: Float32Array, sample: Float32Array, sigma: number): Float32Array {
    const { alpha, sigmaT } = alphaSigmaLambda(sigma);
    const n = sample.length;
    if (this.x0Buffers[0].length !== n) this.x0Buffers = [new Float32Array(n), new Float32Array(n)];
    // Not the previous step's x0, which the second-order update still reads.
    const x0 = this.x0Buffers[0] === this.previousX0 ? this.x0Buffers[1] : this.x0Buffers[0];
    ddpmPrediction(this.config.prediction_type, sample, modelOutput, alpha, sigmaT, x0, undefined);
    return x0;
  }
}

/** DPM-Solver++(2M)'s update: ratio·x − φ·m0 + d1Scale · (m0 − m1)/r0, each operation in float32. */
function secondOrderUpdate(
  sample: Float32Array,
  x0: Float32Array,
  m1: Float32Array,
  k: { ratio: number; phi: number; invR0: number; d1Scale: number },
  prev: Float32Array,
): void {
  const { ratio, phi, invR0, d1Scale } = k;
  for (let i = 0; i < prev.length; i++) {
    const m0 = x0[i] as number;
    const d1 = f32(invR0 * f32(m0 - (m1[i] as number)));
    const first = f32(f32(ratio * (sample[i] as number)) - f32(phi * m0));
    prev[i] = first + f32(d1Scale * d1);
  }
}
