import { describe, expect, it } from "vitest";
import {
  noiseThreadReady,
  PrefetchingGenerator,
  startNoiseThread,
} from "../src/backends/ldm/noise-thread.ts";
import { TorchGenerator } from "../src/backends/ldm/torch-random.ts";

async function threadUp(): Promise<void> {
  startNoiseThread();
  for (let i = 0; i < 200 && !noiseThreadReady(); i++) await new Promise((r) => setTimeout(r, 25));
  expect(noiseThreadReady()).toBe(true);
}

describe("the noise thread", () => {
  it("draws ahead exactly the stream a generator draws here, whatever else is drawn in between", async () => {
    await threadUp();
    const n = 4 * 17 * 13; // not a multiple of 16: the tail path
    const ahead = new PrefetchingGenerator(123, n);
    const here = new TorchGenerator(123);
    const draws: [number, boolean][] = [
      [n, true],
      [n, true],
      [7, false], // the double path, with its cached value
      [n, true],
      [33, false],
      [n, true],
      [n, true],
    ];
    for (const [size] of draws) {
      await ahead.drawnAhead();
      const a = ahead.randn(size);
      const b = here.randn(size);
      expect(Array.from(a)).toEqual(Array.from(b));
    }
    await ahead.drawnAhead();
    expect(ahead.nextUint32()).toBe(here.nextUint32()); // a raw draw makes the prefetch stale too
    expect(Array.from(ahead.randn(n))).toEqual(Array.from(here.randn(n)));
    ahead.manualSeed(9);
    here.manualSeed(9);
    expect(Array.from(ahead.randn(n))).toEqual(Array.from(here.randn(n)));
    await ahead.drawnAhead();
    expect(Array.from(ahead.randn(n))).toEqual(Array.from(here.randn(n)));
    // Served from the thread: the first draw and every one after a draw of n, not those after another size
    // or a reseed.
    expect(ahead.drawsAhead).toBe(4);
  });

  it("with `first draw`, draws only the first ahead", async () => {
    await threadUp();
    const ahead = new PrefetchingGenerator(5, 256, "first draw");
    const here = new TorchGenerator(5);
    for (let i = 0; i < 4; i++) {
      await ahead.drawnAhead();
      expect(Array.from(ahead.randn(256))).toEqual(Array.from(here.randn(256)));
    }
    expect(ahead.drawsAhead).toBe(1);
  });

  it("serves several generators, each its own stream, through one doorbell", async () => {
    await threadUp();
    const n = 1024;
    const seeds = [1, 2, 3];
    const ahead = seeds.map((seed) => new PrefetchingGenerator(seed, n));
    const here = seeds.map((seed) => new TorchGenerator(seed));
    for (let round = 0; round < 3; round++) {
      for (const [k, generator] of ahead.entries()) {
        await generator.drawnAhead();
        expect(Array.from(generator.randn(n))).toEqual(Array.from((here[k] as TorchGenerator).randn(n)));
      }
    }
    expect(ahead.map((g) => g.drawsAhead)).toEqual([3, 3, 3]);
  });
});
