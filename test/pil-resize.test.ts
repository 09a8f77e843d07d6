import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { pilResize, type ResampleFilter } from "../src/backends/ldm/pil-resize.ts";

/**
 * Pillow's resize, bit for bit, against test/golden/pil-resize.json (made by reference/pil_resize_reference.py
 * with Pillow 9.4): the safety checker's CLIP preprocessing resizes with it.
 */

interface ResizeCase {
  width: number;
  height: number;
  seed: number;
  out_width: number;
  out_height: number;
  filter: ResampleFilter;
  sha256: string;
  first16: number[];
}

const golden = JSON.parse(readFileSync(new URL("./golden/pil-resize.json", import.meta.url), "utf8")) as {
  cases: ResizeCase[];
};

/** The reference script's input rule (a 32-bit LCG and ramps, or hard stripes for odd seeds). */
function pixels(width: number, height: number, seed: number): Uint8Array {
  let x = seed >>> 0;
  const out = new Uint8Array(width * height * 3);
  for (let i = 0; i < out.length; i++) {
    x = (Math.imul(1664525, x) + 1013904223) >>> 0;
    const p = Math.floor(i / 3);
    const ramp = Math.floor(p / width) % 8 < 4 ? Math.floor(((p % width) * 255) / Math.max(1, width - 1)) : 0;
    out[i] = seed % 2 === 0 ? Math.floor((x >>> 24) / 2) + Math.floor(ramp / 2) : p % 7 < 3 ? 255 : 0;
  }
  return out;
}

describe("Pillow's Image.resize on RGB", () => {
  it("has cases", () => {
    expect(golden.cases.length).toBeGreaterThanOrEqual(20);
  });

  it.each(
    golden.cases.map(
      (c) =>
        [`${c.width}×${c.height} → ${c.out_width}×${c.out_height} ${c.filter}, seed ${c.seed}`, c] as const,
    ),
  )("%s", (_name, c) => {
    const image = { width: c.width, height: c.height, data: pixels(c.width, c.height, c.seed) };
    const out = pilResize(image, c.out_width, c.out_height, c.filter);
    expect(Array.from(out.data.subarray(0, 16))).toEqual(c.first16);
    expect(createHash("sha256").update(out.data).digest("hex")).toBe(c.sha256);
  });
});
