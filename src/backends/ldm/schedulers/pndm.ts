import { EaselError } from "../../../core/errors.ts";
import { SIMD_KERNELS } from "../simd-kernels.ts";
import type { TorchGenerator } from "../torch-random.ts";
import { BaseScheduler, spacedTimesteps } from "./base.ts";
import type { SchedulerConfig } from "./config.ts";
import { weightedSum } from "./kernels.ts";
import { roundHalfEven, torchAt } from "./math.ts";
import type { SchedulerName, StepOutput } from "./types.ts";

// A module-local alias: an imported function is called through a module binding getter under tsx, too
// slow for per-element loops.
const f32 = Math.fround;

/**
 * diffusers' PNDMScheduler in its PLMS form (`skip_prk_steps`, what Stable Diffusion ships): linear multistep
 * over the last four model outputs. The second timestep is repeated: the second call re-does the first step
 * with the average of both outputs (a Heun-like warm-up), so there are steps + 1 UNet calls.
 * The Runge–Kutta warm-up (`skip_prk_steps: false`) is not implemented; easel always runs PLMS.
 */
export class PndmScheduler extends BaseScheduler {
  readonly timestepKind = "int";
  readonly initNoiseSigma = 1;
  private readonly finalAlphaCumprod: number;
  private stepsRequested = 0;
  /** Past model outputs, newest last (diffusers' `ets`), at most four: copies in buffers reused oldest first. */
  private ets: Float32Array[] = [];
  private spareEts: Float32Array[] = [];
  /** The sample the first step started from, re-used by the repeated second call. */
  private firstSample: Float32Array | undefined;
  private counter = 0;

  constructor(name: SchedulerName, config: SchedulerConfig) {
    if (config.prediction_type === "sample") {
      throw new EaselError("not_supported", 'PNDMScheduler: prediction_type "sample" is not supported');
    }
    super(name, config);
    this.finalAlphaCumprod = config.set_alpha_to_one ? 1 : (this.schedule.alphasCumprod[0] as number);
  }

  protected computeTimesteps(steps: number): void {
    this.stepsRequested = steps;
    const ascending = spacedTimesteps(this.config, steps).map(roundHalfEven).reverse();
    // concat(ts[:-1], ts[-2:-1], ts[-1:])[::-1]: the second-to-last ascending entry appears twice.
    const plms = [...ascending.slice(0, -1), ...ascending.slice(-2, -1), ...ascending.slice(-1)].reverse();
    this.timestepList = Object.freeze(plms);
    this.spareEts.push(...this.ets);
    this.ets = [];
    this.firstSample = undefined;
    this.counter = 0;
  }

  protected stepAt(
    modelOutput: Float32Array,
    stepIndex: number,
    sample: Float32Array,
    _generator: TorchGenerator | undefined,
  ): StepOutput {
    const ratio = Math.floor(this.config.num_train_timesteps / this.stepsRequested);
    let timestep = this.timestepList[stepIndex] as number;
    let prevTimestep = timestep - ratio;
    const n = sample.length;
    if (this.counter !== 1) {
      // Keep the last three and add a copy of this output (the caller reuses its array).
      let slot = this.ets.length > 3 ? this.ets.shift() : this.spareEts.pop();
      if (slot?.length !== n) slot = new Float32Array(n);
      slot.set(modelOutput);
      this.ets.push(slot);
    } else {
      // The repeated call: redo the step from the first timestep with the averaged output.
      prevTimestep = timestep;
      timestep = timestep + ratio;
    }

    let eps: Float32Array;
    let start = sample;
    const e = this.ets;
    if (e.length === 1 && this.counter === 0) {
      eps = modelOutput;
      this.firstSample = this.buffer("first sample", n);
      this.firstSample.set(sample);
    } else if (e.length === 1 && this.counter === 1) {
      const e1 = e[0] as Float32Array;
      eps = this.buffer("eps", n);
      averageInto(modelOutput, e1, eps);
      start = this.firstSample ?? sample;
      this.firstSample = undefined;
    } else {
      eps = plmsCombination(e, this.buffer("eps", n));
    }

    const prev = this.previousSample(start, timestep, prevTimestep, eps, this.prevOut(sample, modelOutput));
    this.counter++;
    return { prevSample: prev };
  }

  /** diffusers' `_get_prev_sample` (PNDM paper eq. 9) in float32 ops. */
  private previousSample(
    sample: Float32Array,
    timestep: number,
    prevTimestep: number,
    eps: Float32Array,
    prev: Float32Array,
  ): Float32Array {
    const ac = this.schedule.alphasCumprod;
    const alphaT = torchAt(ac, timestep);
    const alphaPrev = prevTimestep >= 0 ? torchAt(ac, prevTimestep) : this.finalAlphaCumprod;
    const betaT = f32(1 - alphaT);
    const betaPrev = f32(1 - alphaPrev);
    const n = sample.length;
    let output = eps;
    if (this.config.prediction_type === "v_prediction") {
      const sqrtAlpha = f32(Math.sqrt(alphaT));
      const sqrtBeta = f32(Math.sqrt(betaT));
      output = this.buffer("v output", n);
      weightedSum(eps, sqrtAlpha, sample, sqrtBeta, output);
    }
    const sampleCoeff = f32(Math.sqrt(f32(alphaPrev / alphaT)));
    const denom = f32(
      f32(alphaT * f32(Math.sqrt(betaPrev))) + f32(Math.sqrt(f32(f32(alphaT * betaT) * alphaPrev))),
    );
    plmsUpdate(sample, output, sampleCoeff, f32(alphaPrev - alphaT), denom, prev);
    return prev;
  }
}

/** out = (a + b) / 2 in float32. */
function averageInto(a: Float32Array, b: Float32Array, out: Float32Array): void {
  for (let i = 0; i < out.length; i++) out[i] = f32((a[i] as number) + (b[i] as number)) / 2;
}

/** prev = sampleCoeff · x − (diff · ε) / denom, each operation in float32. */
function plmsUpdate(
  sample: Float32Array,
  eps: Float32Array,
  sampleCoeff: number,
  diff: number,
  denom: number,
  prev: Float32Array,
): void {
  // The coefficients are float32 values: the SIMD kernel gives the same bits.
  if (SIMD_KERNELS && prev.length % 4 === 0) {
    SIMD_KERNELS.plmsUpdate(sample, eps, { sampleCoeff, diff, denom }, prev);
    return;
  }
  for (let i = 0; i < prev.length; i++) {
    prev[i] = f32(sampleCoeff * (sample[i] as number)) - f32(f32(diff * (eps[i] as number)) / denom);
  }
}

/** The Adams–Bashforth combination of the last 2, 3 or 4 model outputs, as diffusers writes it (float32 ops). */
function plmsCombination(e: readonly Float32Array[], out: Float32Array): Float32Array {
  const n = out.length;
  const k = e.length;
  const e1 = e[k - 1] as Float32Array;
  const e2 = e[k - 2] as Float32Array;
  if (k === 2) {
    for (let i = 0; i < n; i++) out[i] = f32(f32(3 * (e1[i] as number)) - (e2[i] as number)) / 2;
  } else if (k === 3) {
    const e3 = e[0] as Float32Array;
    for (let i = 0; i < n; i++) {
      const sum = f32(
        f32(f32(23 * (e1[i] as number)) - f32(16 * (e2[i] as number))) + f32(5 * (e3[i] as number)),
      );
      out[i] = sum / 12;
    }
  } else {
    const e3 = e[k - 3] as Float32Array;
    const e4 = e[k - 4] as Float32Array;
    if (SIMD_KERNELS && n % 4 === 0) {
      SIMD_KERNELS.plms4(e1, e2, e3, e4, out);
      return out;
    }
    const oneOver24 = f32(1 / 24);
    for (let i = 0; i < n; i++) {
      const a = f32(f32(55 * (e1[i] as number)) - f32(59 * (e2[i] as number)));
      const b = f32(f32(a + f32(37 * (e3[i] as number))) - f32(9 * (e4[i] as number)));
      out[i] = oneOver24 * b;
    }
  }
  return out;
}
