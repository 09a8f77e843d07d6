import { loadKnownModels, pullModel } from "../backends/ldm/hub-download.ts";
import type { Config } from "../config.ts";
import { EaselError } from "../core/errors.ts";
import { ProgressBar } from "./progress-bar.ts";

/** `easel models pull NAME`: downloads a known export from the Hugging Face hub, with progress. */
export async function pullCommand(args: string[], config: Config): Promise<void> {
  const name = args[0];
  if (!name) {
    const known = loadKnownModels().map((m) => `  ${m.name}: ${m.description}`);
    throw new EaselError("invalid_argument", `easel models pull NAME; known models:\n${known.join("\n")}`);
  }
  const bar = new ProgressBar(`pulling ${name}`);
  let lastDraw = 0;
  const result = await pullModel(name, {
    modelsDir: config.modelsDir,
    endpoint: config.hub.endpoint,
    ...(config.hub.token ? { token: config.hub.token } : {}),
    onProgress: (p) => {
      // One event per network chunk: redraw at most ten times a second.
      const now = performance.now();
      if (now - lastDraw < 100 && p.overallReceived < p.overallTotal) return;
      lastDraw = now;
      bar.update(Math.floor(p.overallReceived / 1e6), Math.ceil(p.overallTotal / 1e6), "MB");
    },
  });
  bar.finish();
  const fetched = result.files.filter((f) => !f.skipped).length;
  console.log(
    `pulled ${name} into ${result.dir}: ${fetched} files downloaded, ${result.files.length - fetched} already there`,
  );
  console.log(`checksums verified; try it: easel generate --model ${name} "a lighthouse in a storm"`);
}
