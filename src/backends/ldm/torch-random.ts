import { randomInt } from "node:crypto";
import { EaselError } from "../../core/errors.ts";

/**
 * A port of PyTorch's CPU generator (`torch.Generator('cpu')`): MT19937 plus the two `randn` paths of
 * ATen's normal kernel, so that the initial latents for a seed equal diffusers' `torch.randn(shape,
 * generator=torch.Generator('cpu').manual_seed(seed))`. Verified against test/golden/vectors/torch_randn.json.
 */

const MT_N = 624;
const MT_M = 397;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;
const MATRIX_A = 0x9908b0df;
/** PyTorch's vectorised normal fill works on blocks of 16 (8 Box–Muller pairs). */
const BLOCK = 16;
const HALF_BLOCK = 8;
const TWO_POW_MINUS_24 = 2 ** -24;
const TWO_POW_MINUS_53 = 2 ** -53;
const TWO_POW_32 = 2 ** 32;
const TWO_PI = 2 * Math.PI;
const MAX_SEED = (1n << 64n) - 1n;

/** The largest seed easel hands out or accepts from users (PyTorch uses only the low 32 bits anyway). */
export const MAX_USER_SEED = 2 ** 32 - 1;

const f32 = Math.fround;

/**
 * Normalises a seed given as a number, bigint or decimal string to a bigint in 0..2^64-1, or throws an
 * `invalid_argument` EaselError naming the valid range.
 */
export function toSeed(seed: number | bigint | string): bigint {
  let value: bigint;
  if (typeof seed === "bigint") {
    value = seed;
  } else if (typeof seed === "number") {
    if (!Number.isSafeInteger(seed)) {
      throw new EaselError(
        "invalid_argument",
        `seed must be a whole number from 0 to 18446744073709551615 (got ${seed}); pass larger seeds as a string or bigint`,
      );
    }
    value = BigInt(seed);
  } else {
    if (!/^\d{1,20}$/.test(seed.trim())) {
      throw new EaselError(
        "invalid_argument",
        `seed must be a whole number from 0 to 18446744073709551615 (got "${seed.slice(0, 40)}")`,
      );
    }
    value = BigInt(seed.trim());
  }
  if (value < 0n || value > MAX_SEED) {
    throw new EaselError("invalid_argument", `seed must be from 0 to 18446744073709551615 (got ${value})`);
  }
  return value;
}

/** Draws a fresh random seed in 0..2^32-1, for requests that did not give one (the result reports it). */
export function randomSeed(): number {
  // randomInt's upper bound is exclusive and must be below 2^48.
  return randomInt(0, MAX_USER_SEED + 1);
}

/** PyTorch's CPU generator: MT19937 seeded with the low 32 bits of the seed, and a cached normal sample. */
export class TorchGenerator {
  private readonly state = new Uint32Array(MT_N);
  private index = MT_N;
  /** The second Box–Muller value of the double-precision path, returned by the next small draw. */
  private cachedNormal: number | undefined;

  constructor(seed: number | bigint | string) {
    this.manualSeed(seed);
  }

  /** Reseeds like `Generator.manual_seed`: the low 32 bits seed MT19937 and the cached sample is cleared. */
  manualSeed(seed: number | bigint | string): this {
    const low32 = Number(toSeed(seed) & 0xffffffffn);
    const mt = this.state;
    mt[0] = low32;
    for (let i = 1; i < MT_N; i++) {
      const prev = mt[i - 1] as number;
      mt[i] = (Math.imul(1812433253, prev ^ (prev >>> 30)) + i) >>> 0;
    }
    this.index = MT_N;
    this.cachedNormal = undefined;
    return this;
  }

  /** The next raw 32-bit output of MT19937 (tempered), as an unsigned number. */
  nextUint32(): number {
    if (this.index >= MT_N) this.twist();
    let y = this.state[this.index++] as number;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /**
   * `torch.randn(shape, generator=g, dtype=torch.float32)`, flattened row-major. Accepts a shape or an
   * element count. The stream continues across calls, as it does in PyTorch.
   */
  randn(shape: readonly number[] | number): Float32Array {
    const count = typeof shape === "number" ? shape : shape.reduce((a, b) => a * b, 1);
    if (!Number.isSafeInteger(count) || count < 0) {
      throw new EaselError(
        "invalid_argument",
        `randn needs a non-negative whole element count (got ${count})`,
      );
    }
    const out = new Float32Array(count);
    this.randnInto(out);
    return out;
  }

  /** Fills `out` with standard normal float32 values exactly as `torch.randn` would for its size. */
  randnInto(out: Float32Array): Float32Array {
    const n = out.length;
    if (n >= BLOCK) {
      this.normalFill(out);
    } else {
      for (let i = 0; i < n; i++) out[i] = this.nextDoubleNormal();
    }
    return out;
  }

  /** ATen's `normal_fill` for float32 tensors of 16 or more elements (the scalar kernel). */
  private normalFill(out: Float32Array): void {
    const n = out.length;
    for (let i = 0; i < n; i++) out[i] = (this.nextUint32() & 0xffffff) * TWO_POW_MINUS_24;
    for (let start = 0; start + BLOCK <= n; start += BLOCK) boxMullerBlock(out, start);
    if (n % BLOCK !== 0) {
      // The tail is redone from 16 fresh uniforms over the last 16 slots, overwriting finished values.
      const start = n - BLOCK;
      for (let i = 0; i < BLOCK; i++) out[start + i] = (this.nextUint32() & 0xffffff) * TWO_POW_MINUS_24;
      boxMullerBlock(out, start);
    }
  }

  /** ATen's `normal_distribution<double>`: one value, caching the pair's second value in the generator. */
  private nextDoubleNormal(): number {
    if (this.cachedNormal !== undefined) {
      const cached = this.cachedNormal;
      this.cachedNormal = undefined;
      return cached;
    }
    const u1 = this.nextUniform53();
    const u2 = this.nextUniform53();
    const r = Math.sqrt(-2 * Math.log(1 - u2));
    const theta = TWO_PI * u1;
    this.cachedNormal = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** A double in [0, 1) from 53 bits of `random64() = (first << 32) | second`. */
  private nextUniform53(): number {
    const hi = this.nextUint32();
    const lo = this.nextUint32();
    return ((hi & 0x1fffff) * TWO_POW_32 + lo) * TWO_POW_MINUS_53;
  }

  private twist(): void {
    const mt = this.state;
    // The standard MT19937 recurrence, split at the wrap-around so the hot loop has no modulo.
    let k = 0;
    for (; k < MT_N - MT_M; k++) {
      const y = ((mt[k] as number) & UPPER_MASK) | ((mt[k + 1] as number) & LOWER_MASK);
      mt[k] = (mt[k + MT_M] as number) ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    }
    for (; k < MT_N - 1; k++) {
      const y = ((mt[k] as number) & UPPER_MASK) | ((mt[k + 1] as number) & LOWER_MASK);
      mt[k] = (mt[k + MT_M - MT_N] as number) ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    }
    const y = ((mt[MT_N - 1] as number) & UPPER_MASK) | ((mt[0] as number) & LOWER_MASK);
    mt[MT_N - 1] = (mt[MT_M - 1] as number) ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    this.index = 0;
  }
}

/** Box–Muller over one block of 16 uniforms in place, in float32 arithmetic as the C++ kernel does. */
function boxMullerBlock(data: Float32Array, start: number): void {
  for (let j = start; j < start + HALF_BLOCK; j++) {
    const u1 = f32(1 - (data[j] as number));
    const u2 = data[j + HALF_BLOCK] as number;
    const radius = f32(Math.sqrt(f32(-2 * f32(Math.log(u1)))));
    const theta = f32(TWO_PI * u2);
    data[j] = f32(radius * f32(Math.cos(theta)));
    data[j + HALF_BLOCK] = f32(radius * f32(Math.sin(theta)));
  }
}
