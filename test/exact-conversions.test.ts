import { describe, expect, it } from "vitest";
import {
  float16ToFloat32,
  float16ToFloat32Into,
  float32ToFloat16,
  float32ToFloat16Into,
} from "../src/backends/ldm/float16.ts";
import { cosSinF32 } from "../src/backends/ldm/sincos-f32.ts";

const f32 = Math.fround;

describe("cosSinF32", () => {
  it("equals fround(Math.cos) and fround(Math.sin) for every angle Box–Muller can draw (all 2^24)", () => {
    const chunk = 1 << 20;
    const theta = new Float32Array(chunk);
    const cos = new Float32Array(chunk);
    const sin = new Float32Array(chunk);
    let wrong = 0;
    for (let start = 0; start < 1 << 24; start += chunk) {
      for (let i = 0; i < chunk; i++) theta[i] = 2 * Math.PI * ((start + i) * 2 ** -24);
      cosSinF32(theta, cos, sin);
      for (let i = 0; i < chunk; i++) {
        const t = theta[i] as number;
        if (cos[i] !== f32(Math.cos(t)) || sin[i] !== f32(Math.sin(t))) wrong++;
      }
    }
    expect(wrong).toBe(0);
  });

  it("is right outside [0, 2π] too (there it falls back to Math.cos and Math.sin)", () => {
    const theta = Float32Array.from([-1, -0, 7, 100, 1e6, Number.NaN, Number.POSITIVE_INFINITY]);
    const cos = new Float32Array(theta.length);
    const sin = new Float32Array(theta.length);
    cosSinF32(theta, cos, sin);
    expect(Array.from(cos)).toEqual(Array.from(theta, (t) => f32(Math.cos(t))));
    expect(Array.from(sin)).toEqual(Array.from(theta, (t) => f32(Math.sin(t))));
  });
});

describe("float16 by table", () => {
  it("half → float gives every one of the 65 536 patterns' values", () => {
    const bits = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const out = new Float32Array(65536);
    float16ToFloat32Into(bits, out);
    for (let b = 0; b < 65536; b++)
      expect(Object.is(out[b], f32(float16ToFloat32(b))) || Number.isNaN(out[b])).toBe(true);
  });

  it("float → half rounds like float32ToFloat16 for every exponent, at and around every rounding tie", () => {
    // Every float32 exponent (and sign) with mantissas at, next to and between the ties of each shift; the whole
    // 2^32 was compared once when this was written (no difference).
    const values: number[] = [];
    const word = new Uint32Array(1);
    const float = new Float32Array(word.buffer);
    for (let sign = 0; sign < 2; sign++) {
      for (let e = 0; e < 256; e++) {
        for (let m = 0; m < 1 << 23; m += 4099) values.push(((sign << 31) | (e << 23) | m) >>> 0);
        for (let shift = 12; shift <= 25; shift++) {
          const tie = 1 << (shift - 1);
          for (const base of [0, 1 << shift, 3 << shift, (1 << 23) - (1 << shift)]) {
            for (const d of [-1, 0, 1]) {
              const m = base + tie + d;
              if (m >= 0 && m < 1 << 23) values.push(((sign << 31) | (e << 23) | m) >>> 0);
            }
          }
        }
      }
    }
    const input = new Float32Array(values.length);
    new Uint32Array(input.buffer).set(values);
    const out = new Uint16Array(values.length);
    float32ToFloat16Into(input, out);
    let wrong = 0;
    for (let i = 0; i < values.length; i++) {
      word[0] = values[i] as number;
      if (out[i] !== float32ToFloat16(float[0] as number)) wrong++;
    }
    expect(values.length).toBeGreaterThan(500_000);
    expect(wrong).toBe(0);
  });
});
