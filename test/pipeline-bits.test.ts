import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { noiseThreadReady, startNoiseThread } from "../src/backends/ldm/noise-thread.ts";
import { BIT_CASES, renderBitCases } from "./pipeline-bits-cases.ts";

// Hashes recorded before the speed work of issue 15 (scripts/record-pipeline-hashes.ts, on the commit before it
// with the onFinalLatents hook added); see pipeline-bits-cases.ts.
const RECORDED = JSON.parse(
  readFileSync(join(import.meta.dirname, "golden", "vectors", "pipeline-hashes.json"), "utf8"),
) as Record<string, string>;

describe("pipeline output bits", () => {
  const dir = mkdtempSync(join(tmpdir(), "easel-bits-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("every fixed render has the latents, pixels and previews recorded before the pipeline was made fast", async () => {
    expect(Object.keys(RECORDED).sort()).toEqual(BIT_CASES.map((c) => c.name).sort());
    const rendered = await renderBitCases(dir);
    const changed = Object.keys(RECORDED).filter((name) => rendered[name] !== RECORDED[name]);
    expect(changed).toEqual([]);
  }, 120_000);

  it("is the same with the noise drawn ahead on the noise thread (as in the LDM worker process)", async () => {
    startNoiseThread();
    for (let i = 0; i < 400 && !noiseThreadReady(); i++) await new Promise((r) => setTimeout(r, 25));
    expect(noiseThreadReady()).toBe(true);
    const rendered = await renderBitCases(join(dir, "with-thread"));
    const changed = Object.keys(RECORDED).filter((name) => rendered[name] !== RECORDED[name]);
    expect(changed).toEqual([]);
  }, 120_000);
});
