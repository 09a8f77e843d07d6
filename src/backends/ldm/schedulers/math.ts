/**
 * Numerics that reproduce the exact rounding of the PyTorch (CPU, AVX2) and NumPy 1.x operations diffusers
 * uses to build its schedules, so that timesteps and sigma tables come out bit-identical to diffusers'.
 */

/** Rounds to float32; every torch float32 operation is one of these after the exact double result. */
export const f32 = Math.fround;

/** AVX2 `Vectorized<float>` width: torch.linspace restarts its formula at every vector. */
const AVX2_FLOATS = 8;

/**
 * `torch.linspace(start, end, steps, dtype=torch.float32)` as the x86 CPU kernel computes it: the first half
 * counts up from `start` and the second half down from `end`, the formula is re-based at every 8-float vector
 * (pairs of vectors, then a scalar tail), and the compiler fuses `start + step * i` into one FMA.
 * Verified bit-exact against diffusers' `betas_float32`.
 */
export function torchLinspaceF32(start: number, end: number, steps: number): Float32Array {
  const out = new Float32Array(steps);
  if (steps === 1) {
    out[0] = f32(start);
    return out;
  }
  const from = f32(start);
  const to = f32(end);
  const step = f32(f32(to - from) / (steps - 1));
  const halfway = Math.floor(steps / 2);
  // `step * i` is exact in double (24 + 31 bits at most), so one rounding to float32 models the FMA.
  const at = (i: number): number => (i < halfway ? f32(from + step * i) : f32(to - step * (steps - i - 1)));
  const vectorEnd = steps - (steps % (2 * AVX2_FLOATS));
  let i = 0;
  for (; i < vectorEnd; i += AVX2_FLOATS) {
    const base = at(i);
    for (let k = 0; k < AVX2_FLOATS; k++) out[i + k] = f32(base + k * step);
  }
  for (; i < steps; i++) out[i] = at(i);
  return out;
}

/** `torch.cumprod` of a float32 tensor on CPU: the running product is a double, each output rounded. */
export function torchCumprodF32(values: Float32Array): Float32Array {
  const out = new Float32Array(values.length);
  let product = 1;
  for (let i = 0; i < values.length; i++) {
    product *= values[i] as number;
    out[i] = product;
  }
  return out;
}

/** NumPy's `round`/`rint`: halves go to the even neighbour (2.5 → 2, 3.5 → 4), unlike `Math.round`. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** `np.linspace(start, stop, num, endpoint)` in float64: `i * step + start`, the endpoint set exactly. */
export function npLinspace(start: number, stop: number, num: number, endpoint = true): number[] {
  const div = endpoint ? num - 1 : num;
  const delta = stop - start;
  const out: number[] = [];
  for (let i = 0; i < num; i++) {
    // With a single point NumPy's step is undefined and it multiplies by delta instead: i = 0 gives start.
    out.push((div > 0 ? i * (delta / div) : i * delta) + start);
  }
  if (endpoint && num > 1) out[num - 1] = stop;
  return out;
}

/**
 * `np.arange(start, stop, step)` for a float step: the length is `ceil((stop - start) / step)`, which can be one
 * more than expected (1000 / (1000 / 61) = 61.000…01 gives 62 values), and values are `start + i * delta` with
 * `delta = (start + step) - start`, as NumPy's fill loop computes them.
 */
export function npArange(start: number, stop: number, step: number): number[] {
  const length = Math.ceil((stop - start) / step);
  const out: number[] = [];
  if (!(length > 0)) return out;
  out.push(start);
  if (length === 1) return out;
  const next = start + step;
  out.push(next);
  const delta = next - start;
  for (let i = 2; i < length; i++) out.push(start + i * delta);
  return out;
}

/** `np.interp(x, arange(len(fp)), fp)` in float64, with NumPy's exact-hit and out-of-range rules. */
export function npInterpIndex(x: number, fp: ArrayLike<number>): number {
  const last = fp.length - 1;
  if (Number.isNaN(x)) return x;
  if (x >= last) return fp[last] as number;
  if (x <= 0) return fp[0] as number;
  const j = Math.floor(x);
  const low = fp[j] as number;
  if (j === x) return low;
  const high = fp[j + 1] as number;
  const slope = high - low;
  const result = slope * (x - j) + low;
  return Number.isNaN(result) ? slope * (x - (j + 1)) + high : result;
}

/**
 * diffusers' `_sigma_to_t`: the (fractional) training timestep whose sigma is `sigma`, by linear interpolation in
 * log-sigma between neighbouring table entries. `logSigmas` is the float32 `np.log(sigma_table)`; NumPy 1.x's
 * value-based casting keeps the arithmetic on it in float32, which this mirrors.
 */
export function sigmaToT(sigma: number, logSigmas: Float32Array): number {
  const logSigma = f32(Math.log(Math.max(sigma, 1e-10)));
  // low_idx = argmax(cumsum(dists >= 0)) clipped to n - 2: the last index where the count grows.
  let count = 0;
  let best = 0;
  let lowIdx = 0;
  for (let i = 0; i < logSigmas.length; i++) {
    if (f32(logSigma - (logSigmas[i] as number)) >= 0) count++;
    if (count > best) {
      best = count;
      lowIdx = i;
    }
  }
  lowIdx = Math.min(lowIdx, logSigmas.length - 2);
  const low = logSigmas[lowIdx] as number;
  const high = logSigmas[lowIdx + 1] as number;
  let w = f32(f32(low - logSigma) / f32(low - high));
  w = Math.min(Math.max(w, 0), 1);
  return f32(1 - w) * lowIdx + w * (lowIdx + 1);
}

/**
 * diffusers' `_convert_to_karras` (ρ = 7) in float64: a ramp from `sigmaMax` to `sigmaMin` that is linear in
 * σ^(1/ρ), as in Karras et al. 2022.
 */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, steps: number): number[] {
  const rho = 7;
  const minInvRho = sigmaMin ** (1 / rho);
  const maxInvRho = sigmaMax ** (1 / rho);
  return npLinspace(0, 1, steps).map((ramp) => (maxInvRho + ramp * (minInvRho - maxInvRho)) ** rho);
}

/** A float32 tensor indexed like torch: a negative index counts from the end (`alphas_cumprod[-1]`). */
export function torchAt(values: Float32Array, index: number): number {
  const value = values[index < 0 ? values.length + index : index];
  if (value === undefined) throw new RangeError(`index ${index} is out of range for ${values.length} values`);
  return value;
}
