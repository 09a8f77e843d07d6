/**
 * The per-element loops the schedulers share, each a small function of typed arrays and numbers. Two reasons
 * they are not written inline in the step methods: V8 compiles a long loop while it runs (on-stack replacement)
 * and would then deoptimise the step method at the first line after the loop, on every call; and a function
 * that only ever sees Float32Arrays stays monomorphic. Every operation is rounded to float32 as torch does.
 */

import { SIMD_KERNELS } from "../simd-kernels.ts";

const f32 = Math.fround;

/**
 * out = f32(wa · a) + f32(wb · b), rounded as stored. `out` may be `a` or `b`. With float32 weights the SIMD kernel
 * gives the same bits: a product of two float32 values is exact in a double, and a double sum of two float32 values
 * rounded to float32 is the float32 sum (53 ≥ 2·24 + 2 bits makes the double rounding harmless).
 */
export function weightedSum(
  a: Float32Array,
  wa: number,
  b: Float32Array,
  wb: number,
  out: Float32Array,
): void {
  if (SIMD_KERNELS && out.length % 4 === 0 && f32(wa) === wa && f32(wb) === wb) {
    SIMD_KERNELS.weightedSum(a, wa, b, wb, out);
    return;
  }
  for (let i = 0; i < out.length; i++) out[i] = f32(wa * (a[i] as number)) + f32(wb * (b[i] as number));
}

/** Clamps every value to [−range, range] in place (diffusers' clip_sample). */
export function clipInto(values: Float32Array, range: number): void {
  for (let i = 0; i < values.length; i++) values[i] = Math.min(Math.max(values[i] as number, -range), range);
}

/** What a UNet predicts (a scheduler config's `prediction_type`). */
export type PredictionType = "epsilon" | "sample" | "v_prediction";

/**
 * x0 (and, when `eps` is given, ε) from the model output at a DDPM timestep with √ᾱ and √(1−ᾱ), as DDIM and LCM
 * compute `pred_original_sample` and `pred_epsilon`.
 */
export function ddpmPrediction(
  kind: PredictionType,
  sample: Float32Array,
  model: Float32Array,
  sqrtAlpha: number,
  sqrtBeta: number,
  x0: Float32Array,
  eps: Float32Array | undefined,
): void {
  const n = x0.length;
  switch (kind) {
    case "epsilon":
      if (SIMD_KERNELS && n % 4 === 0 && f32(sqrtBeta) === sqrtBeta && f32(sqrtAlpha) === sqrtAlpha) {
        SIMD_KERNELS.epsilonX0(sample, model, sqrtBeta, sqrtAlpha, x0);
      } else {
        for (let i = 0; i < n; i++)
          x0[i] = f32((sample[i] as number) - f32(sqrtBeta * (model[i] as number))) / sqrtAlpha;
      }
      eps?.set(model);
      break;
    case "sample":
      x0.set(model);
      if (eps) {
        for (let i = 0; i < n; i++)
          eps[i] = f32((sample[i] as number) - f32(sqrtAlpha * (model[i] as number))) / sqrtBeta;
      }
      break;
    case "v_prediction":
      weightedSum(sample, sqrtAlpha, model, -sqrtBeta, x0);
      if (eps) weightedSum(model, sqrtAlpha, sample, sqrtBeta, eps);
      break;
  }
}
