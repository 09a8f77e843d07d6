import { describe, expect, it } from "vitest";
import { MAX_USER_SEED, randomSeed, TorchGenerator, toSeed } from "../src/backends/ldm/torch-random.ts";
import { isEaselError } from "../src/core/errors.ts";

describe("TorchGenerator", () => {
  it("uses only the low 32 bits of a 64-bit seed, as PyTorch does", () => {
    const small = new TorchGenerator(42).randn(64);
    const big = new TorchGenerator((1n << 40n) + 42n).randn(64);
    const string = new TorchGenerator("18446744069414584362").randn(64); // 2^64 - 2^32 + 42
    expect(big).toEqual(small);
    expect(string).toEqual(small);
  });

  it("gives different noise for different seeds", () => {
    expect(new TorchGenerator(1).randn(64)).not.toEqual(new TorchGenerator(2).randn(64));
  });

  it("continues the stream across draws and restarts it on manualSeed", () => {
    const generator = new TorchGenerator(7);
    const first = generator.randn(32);
    const second = generator.randn(32);
    expect(second).not.toEqual(first);
    generator.manualSeed(7);
    expect(generator.randn(32)).toEqual(first);
  });

  it("clears the cached small-path sample on manualSeed", () => {
    const generator = new TorchGenerator(3);
    const a = generator.randn(1);
    generator.manualSeed(3);
    expect(generator.randn(1)).toEqual(a);
  });

  it("produces roughly standard normal values", () => {
    const x = new TorchGenerator(0).randn([4, 4, 64, 64]);
    let sum = 0;
    let sumSq = 0;
    for (const v of x) {
      sum += v;
      sumSq += v * v;
    }
    expect(Math.abs(sum / x.length)).toBeLessThan(0.02);
    expect(Math.abs(sumSq / x.length - 1)).toBeLessThan(0.02);
  });

  it.each([-1, Number.NaN, 1.5, 2 ** 64, Number.POSITIVE_INFINITY, "abc", "-1", "18446744073709551616", -1n])(
    "refuses the seed %s with the valid range",
    (seed) => {
      let error: unknown;
      try {
        toSeed(seed as number | bigint | string);
      } catch (err) {
        error = err;
      }
      expect(isEaselError(error, "invalid_argument")).toBe(true);
      expect((error as Error).message).toContain("18446744073709551615");
    },
  );

  it("draws a random seed in 0..2^32-1 when none is given", () => {
    const seeds = new Set(Array.from({ length: 20 }, () => randomSeed()));
    for (const seed of seeds) expect(seed >= 0 && seed <= MAX_USER_SEED && Number.isInteger(seed)).toBe(true);
    expect(seeds.size).toBeGreaterThan(1);
  });
});
