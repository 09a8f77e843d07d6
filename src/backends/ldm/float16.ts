/**
 * float32 ↔ float16 conversion. Node 20 has no Float16Array, and onnxruntime's 'float16' tensors are
 * Uint16Array bit patterns, so fp16 models get their inputs and outputs converted here.
 */

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE 754 half-precision bits of `value`, rounded to nearest even (what numpy's astype(float16) does). */
export function float32ToFloat16(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0] ?? 0;
  const sign = (x >>> 16) & 0x8000;
  const exp32 = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp32 === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  const exp = exp32 - 127 + 15;
  if (exp >= 0x1f) return sign | 0x7c00;
  if (exp <= 0) {
    // Subnormal half: value = m · 2^-24 with m = (1.mant) · 2^(exp - 14 + 23) / 2^23.
    if (exp < -10) return sign;
    const full = mant | 0x800000;
    const shift = 14 - exp;
    let half = full >>> shift;
    const rest = full & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rest > mid || (rest === mid && (half & 1) === 1)) half++;
    return sign | half;
  }
  let half = (exp << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half++;
  return sign | half;
}

/** The number whose IEEE 754 half-precision bits are `bits`. */
export function float16ToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

// Bulk conversions by table, one load (half → float) or a few integer operations (float → half) per value, with no
// branch per value: the pipeline converts a UNet's input and output at every step of an fp16 model.

let halfToFloat: Float32Array | undefined;

/** Every half pattern's float32 value (256 KiB), made on first use. */
function halfTable(): Float32Array {
  if (halfToFloat === undefined) {
    halfToFloat = new Float32Array(65536);
    for (let bits = 0; bits < 65536; bits++) halfToFloat[bits] = float16ToFloat32(bits);
  }
  return halfToFloat;
}

/**
 * Per float32 exponent: the half's base bits, the shift that takes the 24-bit mantissa (implicit bit included) to
 * the half's, the round-to-nearest-even bias for that shift, and whether the exponent means NaN. A shift of 25
 * rounds every mantissa to 0 (zero, infinity).
 */
const HALF_BASE = new Int32Array(256);
const HALF_SHIFT = new Int32Array(256);
const HALF_BIAS = new Int32Array(256);
const HALF_NAN = new Int32Array(256);
for (let e = 0; e < 256; e++) {
  const exp = e - 127 + 15;
  let base = 0;
  let shift = 25;
  if (e === 255) {
    base = 0x7c00;
    HALF_NAN[e] = 0x200;
  } else if (exp >= 0x1f) {
    base = 0x7c00;
  } else if (exp >= 1) {
    // The mantissa's implicit bit lands on the exponent's lowest bit: base is one exponent step lower.
    base = (exp - 1) << 10;
    shift = 13;
  } else if (exp >= -10) {
    shift = 14 - exp;
  }
  HALF_BASE[e] = base;
  HALF_SHIFT[e] = shift;
  HALF_BIAS[e] = (1 << (shift - 1)) - 1;
}

/** fp16 bits of each float32 in `values` into `out` (same rounding as float32ToFloat16). */
export function float32ToFloat16Into(values: Float32Array, out: Uint16Array, count = values.length): void {
  const words = new Uint32Array(values.buffer, values.byteOffset, count);
  for (let i = 0; i < count; i++) {
    const x = words[i] as number;
    const e = (x >>> 23) & 0xff;
    const mantissa = x & 0x7fffff;
    const full = mantissa | 0x800000;
    const shift = HALF_SHIFT[e] as number;
    const rounded = (full + (HALF_BIAS[e] as number) + ((full >>> shift) & 1)) >>> shift;
    // NaN keeps a quiet bit: (mantissa + 0x7fffff) >>> 23 is 1 exactly when the mantissa is not 0.
    const nan = (HALF_NAN[e] as number) & -((mantissa + 0x7fffff) >>> 23);
    out[i] = ((x >>> 16) & 0x8000) | ((HALF_BASE[e] as number) + rounded + nan);
  }
}

/** float32 values of the fp16 bits in `bits` into `out`. */
export function float16ToFloat32Into(bits: Uint16Array, out: Float32Array, count = bits.length): void {
  const table = halfTable();
  for (let i = 0; i < count; i++) out[i] = table[bits[i] as number] as number;
}

/** Converts a float32 array to fp16 bit patterns (for a 'float16' tensor). */
export function toFloat16Array(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  float32ToFloat16Into(values, out);
  return out;
}

/** Converts fp16 bit patterns (a 'float16' tensor's data) to float32. */
export function fromFloat16Array(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  float16ToFloat32Into(bits, out);
  return out;
}
