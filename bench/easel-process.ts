import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TINY_MODEL_VARIANTS, writeTinyModel } from "../src/backends/ldm/tiny-model.ts";
import { CLIP_BPE_DIR } from "../src/backends/ldm/tokenizer/clip-tokenizer.ts";

/**
 * easel as `npm start` runs it, in its own process, for the platform benchmarks: a temporary models folder
 * with the "bench" tiny model (tens of ms per step at 512², so a long job keeps the worker busy), a temporary
 * data folder, and the queue bounds raised so that every benchmark command queues a real job.
 */

export interface EaselProcess {
  child: ChildProcess;
  /** Everything easel wrote to stderr so far. */
  output(): string;
  /** SIGTERM, wait for the exit, remove the folders. */
  stop(): Promise<void>;
}

export async function startEaselProcess(env: Record<string, string>): Promise<EaselProcess> {
  const modelsDir = await mkdtemp(join(tmpdir(), "easel-bench-models-"));
  const dataDir = await mkdtemp(join(tmpdir(), "easel-bench-data-"));
  await writeTinyModel(join(modelsDir, "bench"), TINY_MODEL_VARIANTS.bench, CLIP_BPE_DIR);
  let output = "";
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    env: {
      PATH: process.env.PATH ?? "",
      EASEL_MODELS_DIR: modelsDir,
      EASEL_DATA_DIR: dataDir,
      EASEL_DEVICE: "cpu",
      EASEL_MAX_QUEUED: "1000",
      EASEL_MAX_QUEUED_PER_SERVER: "1000",
      ...env,
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  child.stderr?.on("data", (d: Buffer) => {
    output += d.toString();
  });
  return {
    child,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await exited;
      }
      await rm(modelsDir, { recursive: true, force: true });
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
