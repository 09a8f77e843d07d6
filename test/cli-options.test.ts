import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HARD_LIMITS } from "../src/core/prompt-flags.ts";
import { CliHarness } from "./cli-harness.ts";

/**
 * `easel generate` refuses bad input with the bot's own wording, naming the CLI's option and its limit, exit
 * code 2, and before onnxruntime is loaded: every refusal here also asserts that the process never loaded it.
 */

let cli: CliHarness;

beforeAll(async () => {
  cli = await CliHarness.create({ tinyModel: true });
}, 60_000);

afterAll(() => cli.close());

/** Runs generate on the tiny model and expects a refusal before any model work. */
async function refusal(args: string[], options: { env?: Record<string, string>; input?: string } = {}) {
  const r = await cli.run(["generate", ...args], options);
  expect(r.stdout).toBe("");
  expect(r.code).toBe(2);
  expect(r.onnxruntime).toBe(false);
  return r.stderr;
}

describe("easel generate refuses bad options before loading anything", () => {
  it.each([
    [["x", "--seed", "-1"], '--seed must be a whole number from 0 to 4294967295 (got "-1")'],
    [["x", "--steps", "-3"], '--steps must be a whole number from 1 to 150 (got "-3")'],
    [["x", "--seed", "99999999999999999999"], '(got "99999999999999999999")'],
    [["x", "--seed", "0x10"], '--seed must be a whole number from 0 to 4294967295 (got "0x10")'],
    [["x", "--steps", "1000000"], "--steps must be a whole number from 1 to 150"],
    [["x", "--cfg", "NaN"], '--cfg must be a number from 0 to 30 (got "NaN")'],
    [["x", "--cfg", "31"], "--cfg must be a number from 0 to 30"],
    [["x", "--n", "5"], '--n must be a whole number from 1 to 4 (got "5")'],
    [
      ["x", "--sampler", "bogus"],
      '--sampler must be one of ddim, pndm, euler, euler_ancestral, dpmpp_2m, dpmpp_2m_karras, lcm, euler_trailing (got "bogus")',
    ],
    [["x", "--size", "big"], "--size must be a size like 768x512"],
    [
      ["x", "--size", "2048x2048"],
      "--size 2048x2048 is 4194304 pixels; the limit here is 1048576 (1024x1024)",
    ],
    [["x", "--ar", "9:1"], "--ar must be an aspect ratio like 16:9"],
    [["x", "--ar", "3:2", "--size", "64x64"], "give --ar or --size, not both"],
    [["x", "--strength", "0.5"], "--strength needs --init"],
    [["x", "--init", "/no/such.png"], "--init /no/such.png cannot be read (ENOENT)"],
    [["x", "--model", "nope"], 'there is no model "nope"; models: tiny'],
    [
      ["x", "--seed", String(HARD_LIMITS.maxSeed), "--n", "2"],
      "--seed 4294967295 with --n 2 needs seeds up to 4294967296",
    ],
    [["x", "--device", "gpu"], "argument 'gpu' is invalid. Allowed choices are auto, cuda, cpu."],
    [["x", "--bogus"], "unknown option '--bogus'"],
    [["x", "--steps"], "option '--steps <n>' argument missing"],
  ])("refuses %j", async (args, message) => {
    const stderr = await refusal(args);
    expect(stderr).toContain(message);
    expect(stderr.startsWith("easel: ")).toBe(true);
    // The options as the CLI spells them, never the request's field names.
    expect(stderr).not.toMatch(/\b(guidance|count|scheduler|negativePrompt)\b/);
  });

  it("refuses a --negative over the bot's length limit", async () => {
    expect(await refusal(["x", "--negative", "a".repeat(HARD_LIMITS.negativePromptChars + 1)])).toContain(
      `--negative is ${HARD_LIMITS.negativePromptChars + 1} characters long; the limit is ${HARD_LIMITS.negativePromptChars}`,
    );
  });

  it("applies the operator's EASEL_MAX_* limits, as the bot does", async () => {
    const env = { EASEL_MAX_STEPS: "10", EASEL_MAX_IMAGES: "2", EASEL_MAX_PIXELS: String(256 * 256) };
    expect(await refusal(["x", "--steps", "11"], { env })).toContain(
      "--steps must be a whole number from 1 to 10",
    );
    expect(await refusal(["x", "--n", "3"], { env })).toContain("--n must be a whole number from 1 to 2");
    expect(await refusal(["x", "--size", "320x256"], { env })).toContain(
      "--size 320x256 is 81920 pixels; the limit here is 65536 (256x256)",
    );
  });

  it("refuses a 100 kB prompt with the prompt's length limit, from the command line, a file or stdin", async () => {
    const long = "a".repeat(100_000);
    const message = `the prompt is 100000 characters long; the limit is ${HARD_LIMITS.promptChars}`;
    expect(await refusal([long])).toContain(message);
    const file = join(cli.work, "long.txt");
    writeFileSync(file, long);
    expect(await refusal(["--prompt-file", file])).toContain(message);
    expect(await refusal(["-"], { input: long })).toContain(message);
  });

  it("asks for a prompt when none is given, and refuses an empty one or two sources", async () => {
    expect(await refusal([])).toContain(
      'a prompt is needed: easel generate "a lighthouse", --prompt-file FILE',
    );
    expect(await refusal(["-"], { input: "" })).toContain("the prompt is empty");
    expect(await refusal(["a cat", "--prompt-file", "p.txt"])).toContain("not two of them");
    expect(await refusal(["--prompt-file", "/no/such.txt"])).toContain(
      "--prompt-file /no/such.txt cannot be read (ENOENT)",
    );
  });

  it("refuses prompt flags the bot would refuse, in its words", async () => {
    expect(await refusal(["a cat --steps 0"])).toContain("--steps must be a whole number from 1 to 150");
    expect(await refusal(["a cat --bogus 1"])).toContain('unknown flag "--bogus"');
  });
});

describe("easel generate checks --out before rendering", () => {
  it("refuses an extension it does not write, naming the ones it does", async () => {
    expect(await refusal(["x", "--out", "cat.gif"])).toContain(
      '--out must end in .png, .jpg, .jpeg or .webp (got "cat.gif")',
    );
    expect(await refusal(["x", "--out", "cat"])).toContain("--out must end in .png, .jpg, .jpeg or .webp");
  });

  it("refuses a folder that does not exist, a file in the way, and a folder it cannot write in", async () => {
    expect(await refusal(["x", "--out", "/no/such/folder/x.png"])).toContain(
      "--out: the folder /no/such/folder does not exist",
    );
    const plain = join(cli.work, "plain");
    writeFileSync(plain, "");
    expect(await refusal(["x", "--out", join(plain, "x.png")])).toContain(`--out: ${plain} is not a folder`);
    mkdirSync(join(cli.work, "taken.png"));
    expect(await refusal(["x", "--out", join(cli.work, "taken.png")])).toContain(
      "is a folder; give a file name",
    );
    // Root writes in any folder whatever its mode, so as root the test uses sysfs, which refuses new entries.
    let locked = "/sys";
    if (process.getuid?.() !== 0) {
      locked = join(cli.work, "locked");
      mkdirSync(locked);
      chmodSync(locked, 0o500);
    }
    expect(await refusal(["x", "--out", join(locked, "x.png")])).toContain(
      `--out: cannot write in ${locked} (`,
    );
  });
});
