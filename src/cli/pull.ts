import { findKnownModel, loadKnownModels, pullModel } from "../backends/ldm/hub-download.ts";
import type { Config } from "../config.ts";
import { EaselError } from "../core/errors.ts";
import { type ProgressStream, TransferLine, type TransferLineOptions } from "./progress-bar.ts";

/** What `pullCommand` writes to and how long it waits; tests swap them, the CLI takes the defaults. */
export interface PullCommandIo {
  /** Status and summary lines; default console.log. */
  out?: (line: string) => void;
  /** The progress line; default stderr (redrawn on a terminal, plain lines otherwise). */
  progress?: ProgressStream;
  /** How long the hub may leave the pull waiting; default 30 s. */
  timeoutMs?: number;
  /** The progress line's clock and pacing. */
  progressOptions?: TransferLineOptions;
}

/** `easel models pull NAME`: downloads a known export from the Hugging Face hub, with progress. */
export async function pullCommand(args: string[], config: Config, io: PullCommandIo = {}): Promise<void> {
  const out = io.out ?? ((line: string) => console.log(line));
  const models = loadKnownModels();
  const name = args[0];
  if (!name) {
    const known = models.map((m) => `  ${m.name}: ${m.description}`);
    throw new EaselError("invalid_argument", `easel models pull NAME; known models:\n${known.join("\n")}`);
  }
  const model = findKnownModel(name, models);
  // Said before the first request, so a slow or silent hub is never mistaken for a hung command.
  out(`pulling ${name} from ${model.repo}@${model.revision} on ${config.hub.endpoint} …`);
  const line = new TransferLine(io.progress ?? process.stderr, io.progressOptions);
  let result: Awaited<ReturnType<typeof pullModel>>;
  try {
    result = await pullModel(name, {
      models,
      modelsDir: config.modelsDir,
      endpoint: config.hub.endpoint,
      ...(config.hub.token ? { token: config.hub.token } : {}),
      ...(io.timeoutMs === undefined ? {} : { timeoutMs: io.timeoutMs }),
      onProgress: (p) => {
        const label = `[${p.index + 1}/${p.count}] ${p.stage === "checking" ? "checking " : ""}${p.file}`;
        line.update(label, p.overallReceived, p.overallTotal, p.downloaded);
      },
    });
  } finally {
    line.finish();
  }
  const fetched = result.files.filter((f) => !f.skipped).length;
  out(
    `pulled ${name} into ${result.dir}: ${fetched} files downloaded, ${result.files.length - fetched} already there`,
  );
  out(`checksums verified; try it: easel generate --model ${name} "a lighthouse in a storm"`);
}
