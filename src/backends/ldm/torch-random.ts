import { randomInt } from "node:crypto";
import { EaselError } from "../../core/errors.ts";
import { cosSinF32 } from "./sincos-f32.ts";

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

/** Length of the word array saveState fills: MT19937's state and its position. */
export const STATE_WORDS = MT_N + 1;

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
  /** Scratch for normalFill, grown to the largest draw and reused: a step's noise allocates nothing. */
  private uniformBits = new Int32Array(0);
  private angles = new Float32Array(0);
  private cosines = new Float32Array(0);
  private sines = new Float32Array(0);
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

  /**
   * Copies the whole state (MT19937's 624 words and position into `words`, 625 long; the cached normal into
   * `normal`: [1 or 0, value]), so that another generator, on another thread, can continue the stream exactly.
   */
  saveState(words: Uint32Array, normal: Float64Array): void {
    words.set(this.state);
    words[MT_N] = this.index;
    normal[0] = this.cachedNormal === undefined ? 0 : 1;
    normal[1] = this.cachedNormal ?? 0;
  }

  /** Continues from a state saveState wrote. */
  loadState(words: Uint32Array, normal: Float64Array): void {
    this.state.set(words.subarray(0, MT_N));
    this.index = words[MT_N] as number;
    this.cachedNormal = normal[0] === 1 ? normal[1] : undefined;
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
    if (this.uniformBits.length < n) this.uniformBits = new Int32Array(n);
    const bits = this.uniformBits;
    this.fillUniformBits(bits, 0, n);
    this.boxMuller(bits, out, 0, Math.floor(n / BLOCK));
    if (n % BLOCK !== 0) {
      // The tail is redone from 16 fresh uniforms over the last 16 slots, overwriting finished values.
      const start = n - BLOCK;
      this.fillUniformBits(bits, start, BLOCK);
      this.boxMuller(bits, out, start, 1);
    }
  }

  /** `count` outputs of MT19937, each cut to 24 bits (torch's float uniform is those bits × 2^-24). */
  private fillUniformBits(bits: Int32Array, from: number, count: number): void {
    let i = from;
    const end = from + count;
    while (i < end) {
      if (this.index >= MT_N) this.twist();
      const run = Math.min(MT_N - this.index, end - i);
      temperInto(this.state, this.index, bits, i, run);
      this.index += run;
      i += run;
    }
  }

  /**
   * Box–Muller over `blocks` consecutive blocks of 16 uniforms from `start`, in float32 arithmetic as the C++
   * kernel does: in each block u1 from the first 8, u2 from the last 8, radius √(−2 ln(1 − u1)), angle 2π·u2.
   * The angles' cos and sin are taken in one pass over all blocks (see sincos-f32.ts).
   */
  private boxMuller(bits: Int32Array, out: Float32Array, start: number, blocks: number): void {
    const pairs = blocks * HALF_BLOCK;
    if (this.angles.length < pairs) {
      this.angles = new Float32Array(pairs);
      this.cosines = new Float32Array(pairs);
      this.sines = new Float32Array(pairs);
    }
    radiiAndAngles(bits, out, this.angles, start, blocks);
    cosSinF32(this.angles, this.cosines, this.sines, pairs);
    scaleByRadii(out, this.cosines, this.sines, start, blocks);
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
    // The standard MT19937 recurrence, split at the wrap-around so the hot loop has no modulo; the matrix term
    // without a branch (a coin flip per value, which the CPU would mispredict half the time).
    let k = 0;
    for (; k < MT_N - MT_M; k++) {
      const y = ((mt[k] as number) & UPPER_MASK) | ((mt[k + 1] as number) & LOWER_MASK);
      mt[k] = (mt[k + MT_M] as number) ^ (y >>> 1) ^ (-(y & 1) & MATRIX_A);
    }
    for (; k < MT_N - 1; k++) {
      const y = ((mt[k] as number) & UPPER_MASK) | ((mt[k + 1] as number) & LOWER_MASK);
      mt[k] = (mt[k + MT_M - MT_N] as number) ^ (y >>> 1) ^ (-(y & 1) & MATRIX_A);
    }
    const y = ((mt[MT_N - 1] as number) & UPPER_MASK) | ((mt[0] as number) & LOWER_MASK);
    mt[MT_N - 1] = (mt[MT_M - 1] as number) ^ (y >>> 1) ^ (-(y & 1) & MATRIX_A);
    this.index = 0;
  }
}

// The loops live in small functions of their own: a loop that V8 compiles while it runs (on-stack replacement)
// would otherwise deoptimise at the first line after it, on every call.

/** MT19937's tempering of `run` state words from `index`, cut to 24 bits, into `bits` from `at`. */
function temperInto(state: Uint32Array, index: number, bits: Int32Array, at: number, run: number): void {
  for (let k = 0; k < run; k++) {
    let y = state[index + k] as number;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    bits[at + k] = y & 0xffffff;
  }
}

/** Each block's radii into its first 8 slots of `out` (until scaleByRadii) and its angles into `angles`. */
function radiiAndAngles(
  bits: Int32Array,
  out: Float32Array,
  angles: Float32Array,
  start: number,
  blocks: number,
): void {
  for (let b = 0; b < blocks; b++) {
    const base = start + b * BLOCK;
    for (let j = 0; j < HALF_BLOCK; j++) {
      const u1 = f32(1 - (bits[base + j] as number) * TWO_POW_MINUS_24);
      out[base + j] = Math.sqrt(f32(-2 * f32(Math.log(u1))));
      angles[b * HALF_BLOCK + j] = TWO_PI * ((bits[base + HALF_BLOCK + j] as number) * TWO_POW_MINUS_24);
    }
  }
}

/** radius · cos into each block's first half, radius · sin into its second (float32 products). */
function scaleByRadii(
  out: Float32Array,
  cosines: Float32Array,
  sines: Float32Array,
  start: number,
  blocks: number,
): void {
  for (let b = 0; b < blocks; b++) {
    const base = start + b * BLOCK;
    for (let j = 0; j < HALF_BLOCK; j++) {
      const radius = out[base + j] as number;
      out[base + j] = radius * (cosines[b * HALF_BLOCK + j] as number);
      out[base + HALF_BLOCK + j] = radius * (sines[b * HALF_BLOCK + j] as number);
    }
  }
}
