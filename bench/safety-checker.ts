import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SessionFactory } from "../src/backends/ldm/onnx-session.ts";
import { findSafetyChecker, SafetyChecker } from "../src/backends/ldm/safety-checker.ts";
import { writeTinyModel } from "../src/backends/ldm/tiny-model.ts";
import { CLIP_BPE_DIR } from "../src/backends/ldm/tokenizer/clip-tokenizer.ts";
import { quantile, report } from "./measure.ts";

/**
 * `safety_checker_ms`: one 512² image through the safety checker as the pipeline runs it (CLIP preprocessing
 * with Pillow's resize, the tensors, the session) on the tiny checker, whose graph costs almost nothing: this
 * is easel's own work per image. A real checker adds its CLIP ViT-L/14 (about 0.3 GFLOP·s on a GPU).
 */
export async function benchSafetyChecker(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "easel-bench-safety-"));
  try {
    await writeTinyModel(dir, { safetyChecker: true }, CLIP_BPE_DIR);
    const files = findSafetyChecker(dir);
    if (!files) throw new Error("the tiny model has no safety checker");
    const checker = await SafetyChecker.load(files, new SessionFactory({ device: "cpu" }));
    const image = {
      width: 512,
      height: 512,
      data: Uint8Array.from({ length: 512 * 512 * 3 }, (_, i) => (i * 2654435761) >>> 24),
    };
    const runs: number[] = [];
    for (let i = 0; i < 25; i++) {
      const started = performance.now();
      await checker.flags([image]);
      if (i >= 5) runs.push(performance.now() - started);
    }
    await checker.release();
    report("safety_checker_ms", quantile(runs, 0.5));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
