import { describe, expect, it } from "vitest";
import { SIMD_KERNELS } from "../src/backends/ldm/simd-kernels.ts";
import { TorchGenerator } from "../src/backends/ldm/torch-random.ts";

// The JS formulas the kernels must equal bit for bit, written out here independently of the sources.
const f32 = Math.fround;

/** Normal values with the awkward ones mixed in: subnormals, the largest floats, ±0, ±∞. */
function values(seed: number, n: number): Float32Array {
  const out = new TorchGenerator(seed).randn(n);
  const odd = [
    1e-40,
    -3e-39,
    3.4e38,
    -3.4e38,
    0,
    -0,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    1e-8,
  ];
  for (let i = 0; i < odd.length; i++) out[(i * 97) % n] = odd[i] as number;
  return out;
}

function sameBits(a: Float32Array, b: Float32Array): number {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  let differ = 0;
  for (let i = 0; i < x.length; i++) {
    // NaN's payload is the one thing the two may choose differently; both are NaN.
    if (x[i] !== y[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) differ++;
  }
  return differ;
}

describe("WebAssembly SIMD kernels", () => {
  const kernels = SIMD_KERNELS;
  it("are available on this Node (WebAssembly SIMD)", () => {
    expect(kernels).toBeDefined();
  });
  if (!kernels) return;
  const n = 4 * 64 * 64;
  const x = values(1, n);
  const e = values(2, n);
  const noise = values(3, n);

  it("guide: u + g·(c − u) in float32, the same bits", () => {
    const g = f32(7.5);
    const want = x.map((u, j) => f32(u + f32(g * f32((e[j] as number) - u))));
    const got = new Float32Array(n);
    kernels.guide(x, e, g, got);
    expect(sameBits(got, want)).toBe(0);
  });

  it("weightedSum and divide: the same bits, in place too", () => {
    const [wa, wb] = [f32(0.9131), f32(-0.4071)];
    const want = x.map((a, j) => f32(wa * a) + f32(wb * (e[j] as number)));
    const got = x.slice();
    kernels.weightedSum(got, wa, e, wb, got);
    expect(sameBits(got, want)).toBe(0);
    const d = f32(Math.sqrt(f32(14.61 * 14.61 + 1)));
    const quotient = new Float32Array(n);
    kernels.divide(x, d, quotient);
    expect(
      sameBits(
        quotient,
        x.map((v) => v / d),
      ),
    ).toBe(0);
  });

  it("toRgb: the bytes a Uint8ClampedArray store gives (ties to even, clamping, NaN and ±∞)", () => {
    const plane = 64 * 48;
    const chw = new TorchGenerator(4).randn(3 * plane).map((v) => v * 0.7);
    const odd = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, 0, 1e-40, 1, -1, 3, -3];
    odd.forEach((v, i) => {
      chw[i * 100] = v;
    });
    // Inputs whose byte value lands on k + 0.5: the ties.
    for (let k = 0; k < 255; k++) chw[plane + k] = f32(((k + 0.5) / 255 - 0.5) * 2);
    const want = new Uint8ClampedArray(3 * plane);
    for (let c = 0; c < 3; c++) {
      for (let p = 0; p < plane; p++) {
        want[p * 3 + c] = f32(f32(f32((chw[c * plane + p] as number) / 2) + 0.5) * 255);
      }
    }
    expect(Array.from(kernels.toRgb(chw, plane))).toEqual(Array.from(want));
  });

  it("epsilonX0 and dpmSecond: DDIM's, LCM's and DPM-Solver's x0 and DPM++(2M)'s update, the same bits", () => {
    const [sb, sa] = [f32(0.9981), f32(0.0613)];
    const wantX0 = x.map((v, i) => f32(v - f32(sb * (e[i] as number))) / sa);
    const x0 = new Float32Array(n);
    kernels.epsilonX0(x, e, sb, sa, x0);
    expect(sameBits(x0, wantX0)).toBe(0);
    const k = { ratio: f32(0.8123), phi: f32(-0.1742), invR0: f32(1.3371), d1Scale: f32(0.0871) };
    const m1 = noise;
    const want = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const m0 = e[i] as number;
      const d1 = f32(k.invR0 * f32(m0 - (m1[i] as number)));
      const first = f32(f32(k.ratio * (x[i] as number)) - f32(k.phi * m0));
      want[i] = first + f32(k.d1Scale * d1);
    }
    const prev = new Float32Array(n);
    kernels.dpmSecond(x, e, m1, k, prev);
    expect(sameBits(prev, want)).toBe(0);
  });

  it("plms4 and plmsUpdate: PNDM's combination and update, the same bits", () => {
    const e4 = values(5, n);
    const oneOver24 = f32(1 / 24);
    const want = x.map((e1, i) => {
      const a = f32(f32(55 * e1) - f32(59 * (e[i] as number)));
      return oneOver24 * f32(f32(a + f32(37 * (noise[i] as number))) - f32(9 * (e4[i] as number)));
    });
    const got = new Float32Array(n);
    kernels.plms4(x, e, noise, e4, got);
    expect(sameBits(got, want)).toBe(0);
    const k = { sampleCoeff: f32(1.0412), diff: f32(0.0377), denom: f32(0.1183) };
    const wantPrev = x.map((v, i) => f32(k.sampleCoeff * v) - f32(f32(k.diff * (e[i] as number)) / k.denom));
    const prev = new Float32Array(n);
    kernels.plmsUpdate(x, e, k, prev);
    expect(sameBits(prev, wantPrev)).toBe(0);
  });

  it("euler (plain and ancestral): x0 and prev, the same bits", () => {
    const [sigma, dt, sigmaUp] = [f32(14.6146), f32(-0.7311), f32(0.5123)];
    for (const withNoise of [false, true]) {
      const wantX0 = new Float32Array(n);
      const wantPrev = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const v = x[i] as number;
        const original = f32(v - f32(sigma * (e[i] as number)));
        wantX0[i] = original;
        const derivative = f32(f32(v - original) / sigma);
        wantPrev[i] = withNoise
          ? f32(v + f32(derivative * dt)) + f32((noise[i] as number) * sigmaUp)
          : v + f32(derivative * dt);
      }
      const x0 = new Float32Array(n);
      const prev = new Float32Array(n);
      kernels.euler(x, e, x0, prev, { sigma, dt, noise: withNoise ? noise : undefined, sigmaUp });
      expect(sameBits(x0, wantX0)).toBe(0);
      expect(sameBits(prev, wantPrev)).toBe(0);
    }
  });
});
