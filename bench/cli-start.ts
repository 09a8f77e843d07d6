import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { TINY_MODEL_VARIANTS, writeTinyModel } from "../src/backends/ldm/tiny-model.ts";
import { CLIP_BPE_DIR } from "../src/backends/ldm/tokenizer/clip-tokenizer.ts";
import { quantile, report } from "./measure.ts";

/**
 * `cli_start_ms`: `easel generate` on the tiny model, from the process's start to the end of its first UNet step,
 * as the CLI itself reports it ("first step done N ms after start", performance.now() at the first progress);
 * median of 5 runs after one that builds the CLI's bundle if it is stale. `cli_help_ms`: the whole of
 * `easel --help`, spawn to exit, as the shell sees it.
 */
const EASEL = resolve("bin/easel.js");

function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ stdout: string; ms: number }> {
  return new Promise((done, fail) => {
    const started = performance.now();
    const child = spawn(process.execPath, [EASEL, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    child.stdout.setEncoding("utf8").on("data", (text: string) => {
      stdout += text;
    });
    child.on("error", fail);
    child.on("close", (code) => {
      if (code !== 0) fail(new Error(`easel ${args[0]} exited with ${code}`));
      else done({ stdout, ms: performance.now() - started });
    });
  });
}

export async function benchCliStart(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "easel-bench-cli-"));
  try {
    await writeTinyModel(join(dir, "models", "tiny"), TINY_MODEL_VARIANTS.sd1, CLIP_BPE_DIR);
    const env = { ...process.env, EASEL_MODELS_DIR: join(dir, "models"), EASEL_DEVICE: "cpu" };
    const args = ["generate", "a lighthouse", "--model", "tiny", "--steps", "2", "--seed", "1"];
    const starts: number[] = [];
    for (let i = 0; i < 6; i++) {
      const { stdout } = await run([...args, "--out", join(dir, `out-${i}.png`)], env);
      const match = /first step done (\d+) ms after start/.exec(stdout);
      if (!match) throw new Error(`easel generate did not report its first step:\n${stdout}`);
      if (i > 0) starts.push(Number(match[1]));
    }
    report("cli_start_ms", quantile(starts, 0.5), 0);
    const helps: number[] = [];
    for (let i = 0; i < 5; i++) helps.push((await run(["--help"], env)).ms);
    report("cli_help_ms", quantile(helps, 0.5), 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
