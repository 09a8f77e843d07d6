import { describe, expect, it } from "vitest";
import { TorchGenerator } from "../../src/backends/ldm/torch-random.ts";
import { loadGolden, toFloat32Array } from "./golden-dir.ts";

/** The top-level (AVX2 kernel) values: a straightforward port stays within this of them. */
const AVX2_TOLERANCE = 2e-6;

interface Values {
  values?: number[];
  first64?: number[];
  last64?: number[];
  at_indices?: Record<string, number>;
  draws?: number[][];
}
interface RandnCase extends Values {
  kind: "single" | "consecutive";
  seed: string;
  shape?: number[];
  shapes?: number[][];
  sum_f64?: number;
  sum_sq_f64?: number;
  no_avx?: Values;
}

const golden = loadGolden<{ cases: RandnCase[] }>("torch_randn.json");

/** (golden values, our values, numel of the tensor they come from) for whatever the case records. */
function recorded(want: Values, got: Float32Array[]): [Float32Array, Float32Array, number][] {
  const pairs: [Float32Array, Float32Array, number][] = [];
  const first = got[0] as Float32Array;
  if (want.values) pairs.push([toFloat32Array(want.values), first, first.length]);
  if (want.first64)
    pairs.push([toFloat32Array(want.first64), first.subarray(0, want.first64.length), first.length]);
  if (want.last64)
    pairs.push([
      toFloat32Array(want.last64),
      first.subarray(first.length - want.last64.length),
      first.length,
    ]);
  if (want.at_indices) {
    const entries = Object.entries(want.at_indices);
    pairs.push([
      toFloat32Array(entries.map(([, v]) => v)),
      Float32Array.from(entries, ([i]) => first[Number(i)] as number),
      first.length,
    ]);
  }
  want.draws?.forEach((draw, k) => {
    const tensor = got[k] as Float32Array;
    pairs.push([toFloat32Array(draw), tensor, tensor.length]);
  });
  return pairs;
}

function draw(c: RandnCase): Float32Array[] {
  const generator = new TorchGenerator(c.seed);
  const shapes = c.kind === "consecutive" ? (c.shapes ?? []) : [c.shape ?? []];
  return shapes.map((shape) => generator.randn(shape));
}

function caseName(c: RandnCase): string {
  const shapes = c.kind === "consecutive" ? JSON.stringify(c.shapes) : JSON.stringify(c.shape);
  return `${c.kind} seed=${c.seed} ${shapes}`;
}

describe("seeded noise matches torch.randn (torch_randn.json)", () => {
  it("has cases to check", () => {
    expect(golden.cases.length).toBeGreaterThan(0);
  });

  it.each(golden.cases.map((c) => [caseName(c), c] as const))("%s", (_name, c) => {
    const got = draw(c);
    for (const [want, have, numel] of recorded(c, got)) {
      expect(have.length).toBe(want.length);
      for (let i = 0; i < want.length; i++) {
        const w = want[i] as number;
        const h = have[i] as number;
        // The double-precision path (fewer than 16 values) is bit-exact with every kernel.
        if (numel < 16) expect(h).toBe(w);
        else expect(Math.abs(h - w)).toBeLessThanOrEqual(AVX2_TOLERANCE);
      }
    }
    if (c.no_avx) {
      // The scalar kernel, which this port follows: equal but for rare float32 rounding of log/sin/cos.
      for (const [want, have] of recorded(c.no_avx, got)) {
        let exact = 0;
        for (let i = 0; i < want.length; i++) {
          expect(Math.abs((have[i] as number) - (want[i] as number))).toBeLessThanOrEqual(3e-7);
          if (have[i] === want[i]) exact++;
        }
        expect(exact / want.length).toBeGreaterThan(0.9);
      }
    }
    if (c.sum_f64 !== undefined && c.sum_sq_f64 !== undefined) {
      let sum = 0;
      let sumSq = 0;
      for (const v of got[0] as Float32Array) {
        sum += v;
        sumSq += v * v;
      }
      const n = (got[0] as Float32Array).length;
      expect(Math.abs(sum - c.sum_f64)).toBeLessThanOrEqual(n * AVX2_TOLERANCE);
      expect(Math.abs(sumSq - c.sum_sq_f64)).toBeLessThanOrEqual(n * 4 * 5 * AVX2_TOLERANCE);
    }
  });
});
