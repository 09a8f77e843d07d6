/**
 * cos and sin of float32 angles, rounded to float32, equal to `Math.fround(Math.cos(θ))` and
 * `Math.fround(Math.sin(θ))` for every input but about three times faster for the pair: Box–Muller needs both
 * for every two normal values, and V8's Math.cos and Math.sin each cost more than the rest of the draw.
 *
 * How it stays exact: θ = j·(2π/256) + δ with |δ| ≤ π/256, cos and sin from a table at j and short Taylor series
 * in δ, in float64 (error below 2^-49 absolute). Where that result ± its error bound rounds to one float32, it is
 * the float32 of the true value, which Math.cos (error below one float64 ulp) rounds to as well; where it does
 * not (about 40 of the 2^24 angles Box–Muller can produce), Math.cos and Math.sin are called. A test compares all
 * 2^24 of those angles.
 */

const f32 = Math.fround;
const TABLE = 256;
const STEP = (2 * Math.PI) / TABLE;
/** Cody–Waite split of the table step: j · STEP_HI is exact for j ≤ 2^29, STEP_LO carries the rest. */
const STEP_HI = f32(STEP);
const STEP_LO = STEP - STEP_HI;
const PER_STEP = TABLE / (2 * Math.PI);
const COS = new Float64Array(TABLE + 1);
const SIN = new Float64Array(TABLE + 1);
for (let j = 0; j <= TABLE; j++) {
  const angle = j * STEP_HI + j * STEP_LO;
  COS[j] = Math.cos(angle);
  SIN[j] = Math.sin(angle);
}
/** The float64 result's error bound: absolute, plus relative for large values (the tables' own rounding). */
const ABSOLUTE_ERROR = 2 ** -49;
const RELATIVE_ERROR = 2 ** -45;

/**
 * `cos[i] = fround(cos(theta[i]))`, `sin[i] = fround(sin(theta[i]))` for `i < count`; fast for angles in
 * [0, 2π] (Box–Muller's range), correct for any (the rest go to Math.cos and Math.sin).
 */
export function cosSinF32(
  theta: Float32Array,
  cos: Float32Array,
  sin: Float32Array,
  count = theta.length,
): void {
  for (let i = 0; i < count; i++) {
    const t = theta[i] as number;
    // Outside [0, 2π] the table read is undefined, the result NaN, and the check below calls Math.cos/Math.sin.
    const j = Math.round(t * PER_STEP);
    const d = t - j * STEP_HI - j * STEP_LO;
    const d2 = d * d;
    // |d| ≤ π/256: the next terms (d^10/10!, d^11/11!) are below 2^-80.
    const cd = 1 - d2 * (1 / 2 - d2 * (1 / 24 - d2 * (1 / 720 - d2 / 40320)));
    const sd = d * (1 - d2 * (1 / 6 - d2 * (1 / 120 - d2 * (1 / 5040 - d2 / 362880))));
    const ct = COS[j] as number;
    const st = SIN[j] as number;
    const c = ct * cd - st * sd;
    const s = st * cd + ct * sd;
    const cErr = Math.abs(c) * RELATIVE_ERROR + ABSOLUTE_ERROR;
    const sErr = Math.abs(s) * RELATIVE_ERROR + ABSOLUTE_ERROR;
    const cLow = f32(c - cErr);
    const sLow = f32(s - sErr);
    cos[i] = cLow === f32(c + cErr) ? cLow : f32(Math.cos(t));
    sin[i] = sLow === f32(s + sErr) ? sLow : f32(Math.sin(t));
  }
}
