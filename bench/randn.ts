import { TorchGenerator } from "../src/backends/ldm/torch-random.ts";
import { quantile, report, timeRuns } from "./measure.ts";

/** `randn_262k_ms`: torch-compatible randn of [4,4,128,128] (four 1024×1024 SD latents). */
export function benchRandn(): void {
  const generator = new TorchGenerator(42);
  const out = new Float32Array(4 * 4 * 128 * 128);
  const runs = timeRuns(() => generator.randnInto(out), 30, 5);
  report("randn_262k_ms", quantile(runs, 0.5));
}
