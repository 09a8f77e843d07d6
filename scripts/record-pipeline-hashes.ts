import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { renderBitCases } from "../test/pipeline-bits-cases.ts";

/**
 * Records the pixel hashes test/pipeline-bits.test.ts holds the pipeline to. Run it only for a change meant to
 * change pixels (a fix against diffusers), never to make a speed change pass.
 */
const dir = mkdtempSync(join(tmpdir(), "easel-bits-"));
try {
  const hashes = await renderBitCases(dir);
  const target = join(import.meta.dirname, "..", "test", "golden", "vectors", "pipeline-hashes.json");
  writeFileSync(target, `${JSON.stringify(hashes, null, 2)}\n`);
  console.log(`${Object.keys(hashes).length} cases written to ${target}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
