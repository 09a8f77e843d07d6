import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TINY_MODEL_VARIANTS } from "../src/backends/ldm/tiny-model.ts";
import { SAMPLER_ALIASES, SAMPLER_NAMES } from "../src/core/prompt-flags.ts";
import { CliHarness } from "./cli-harness.ts";

/** Help on every command, usage errors with exit code 2, and the version. */

let cli: CliHarness;

beforeAll(async () => {
  cli = await CliHarness.create();
});

afterAll(() => cli.close());

const COMMANDS = [
  ["generate"],
  ["models"],
  ["models", "list"],
  ["models", "make-tiny"],
  ["models", "pull"],
  ["tokenize"],
  ["version"],
  ["help"],
];

describe("easel help", () => {
  it.each(COMMANDS)("shows the help of %s with --help, and the same with easel help", async (...path) => {
    const r = await cli.run([...path, "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Usage: easel ${path.join(" ")} `));
    expect(r.stdout).toContain("-h, --help");
    expect((await cli.run(["help", ...path])).stdout).toBe(r.stdout);
  });

  it("describes each generate option", async () => {
    const r = await cli.run(["generate", "--help"]);
    for (const option of [
      "--prompt-file",
      "--model",
      "--negative",
      "--seed",
      "--steps",
      "--cfg",
      "--sampler",
      "--size",
      "--ar",
      "--n",
      "--init",
      "--strength",
      "--out",
      "--device",
    ])
      expect(r.stdout).toContain(`  ${option} <`);
    expect(r.stdout).toContain(".png, .jpg, .jpeg or .webp");
  });

  it("lists every sampler with its aliases, and every make-tiny variant, with nothing loaded", async () => {
    for (const args of [["help"], ["--help"], []]) {
      const r = await cli.run(args);
      expect(r.code).toBe(0);
      expect(r.onnxruntime).toBe(false);
      for (const name of SAMPLER_NAMES) expect(r.stdout).toMatch(new RegExp(`^  ${name}\\b`, "m"));
      // Each alias on its sampler's line (an alias that is the name without "_" is the name itself).
      for (const [alias, name] of Object.entries(SAMPLER_ALIASES)) {
        if (alias === name.replace(/_/g, "")) continue;
        expect(r.stdout).toMatch(new RegExp(`^  ${name} .*\\b${alias}\\b`, "m"));
      }
      for (const variant of Object.keys(TINY_MODEL_VARIANTS))
        expect(r.stdout).toMatch(new RegExp(` ${variant}(,|$)`, "m"));
    }
    const tiny = await cli.run(["models", "make-tiny", "--help"]);
    for (const variant of Object.keys(TINY_MODEL_VARIANTS)) expect(tiny.stdout).toContain(`"${variant}"`);
  });

  it("prints the version of package.json", async () => {
    const { version } = JSON.parse(readFileSync("package.json", "utf8")) as { version: string };
    expect((await cli.run(["version"])).stdout).toBe(`${version}\n`);
    expect((await cli.run(["--version"])).stdout).toBe(`${version}\n`);
  });
});

describe("usage errors exit with 2 and show the usage", () => {
  it.each([
    [["bogus"], "easel: unknown command 'bogus'"],
    [["help", "bogus"], "easel: unknown command 'bogus'"],
    [["help", "models", "bogus"], "easel: unknown command 'models bogus'"],
  ])("%j", async (args, message) => {
    const r = await cli.run(args);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(message);
    expect(r.stderr).toContain("Usage: easel [options] [command]");
    expect(r.stderr).toContain("  generate [options] [prompt...]");
  });

  it.each([
    [["models", "bogus"], "easel: unknown command 'models bogus'", "easel models --help"],
    [["models", "make-tiny"], "easel: missing required argument 'name'", "easel models make-tiny --help"],
    [
      ["models", "make-tiny", "t", "--variant", "huge"],
      "argument 'huge' is invalid. Allowed choices are sd1,",
      "easel models make-tiny --help",
    ],
    [["tokenize", "--bogus"], "easel: unknown option '--bogus'", "easel tokenize --help"],
    [["version", "extra"], "easel: too many arguments for 'version'", ""],
  ])("%j", async (args, message, hint) => {
    const r = await cli.run(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stderr).toContain(hint);
  });
});
