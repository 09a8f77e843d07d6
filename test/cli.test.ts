import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadKnownModels } from "../src/backends/ldm/hub-download.ts";
import { TINY_MODEL_VARIANTS, writeTinyModel } from "../src/backends/ldm/tiny-model.ts";
import { CLIP_BPE_DIR } from "../src/backends/ldm/tokenizer/clip-tokenizer.ts";
import { readPngText } from "../src/render/png.ts";
import { FakeHub, type FakeHubFile } from "./fakes/fake-hub.ts";

const run = promisify(execFile);
const EASEL = resolve("bin/easel.js");
const work = mkdtempSync(join(tmpdir(), "easel-cli-"));
const env = { ...process.env, EASEL_MODELS_DIR: join(work, "models"), EASEL_MODEL: "", EASEL_DEVICE: "cpu" };

async function easel(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  return easelWith({}, ...args);
}

async function easelWith(
  extraEnv: Record<string, string>,
  ...args: string[]
): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [EASEL, ...args], {
      env: { ...env, ...extraEnv },
      cwd: work,
    });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

beforeAll(async () => {
  const made = await easel("models", "make-tiny", "tiny");
  expect(made.code).toBe(0);
}, 60_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("the easel CLI", () => {
  it("generates a PNG with its settings, printing the seed and timing", async () => {
    const out = join(work, "one.png");
    const r = await easel(
      "generate",
      "a lighthouse in a storm",
      "--seed",
      "1234",
      "--steps",
      "3",
      "--size",
      "128x64",
      "--out",
      out,
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("seed: 1234");
    expect(r.stdout).toMatch(/time: [\d.]+ s on cpu/);
    const png = readFileSync(out);
    expect(await sharp(png).metadata()).toMatchObject({ width: 128, height: 64 });
    const parameters = readPngText(png).parameters ?? "";
    expect(parameters).toContain("a lighthouse in a storm");
    expect(parameters).toContain("Seed: 1234");
    expect(parameters).toContain("Size: 128x64");
  });

  it("draws and reports a seed when none is given, and writes a grid plus each image for --n 2", async () => {
    const out = join(work, "grid.png");
    const r = await easel("generate", "a cat", "--steps", "2", "--size", "64x64", "--n", "2", "--out", out);
    expect(r.code).toBe(0);
    const seeds = /seed: (\d+), (\d+)/.exec(r.stdout);
    expect(Number(seeds?.[2])).toBe(Number(seeds?.[1]) + 1);
    expect(await sharp(readFileSync(out)).metadata()).toMatchObject({ width: 128, height: 64 });
    expect(readPngText(readFileSync(join(work, "grid-2.png"))).parameters).toContain(`Seed: ${seeds?.[2]}`);
  });

  it("runs img2img from a file with a strength, sizing from --ar", async () => {
    const init = join(work, "init.png");
    writeFileSync(
      init,
      await sharp({ create: { width: 100, height: 80, channels: 3, background: "#336699" } })
        .png()
        .toBuffer(),
    );
    const out = join(work, "img2img.png");
    const r = await easel(
      "generate",
      "a blue wall",
      "--init",
      init,
      "--strength",
      "0.5",
      "--steps",
      "4",
      "--ar",
      "3:2",
      "--out",
      out,
    );
    expect(r.code).toBe(0);
    expect(readPngText(readFileSync(out)).parameters).toContain("Denoising strength: 0.5");
    expect(await sharp(readFileSync(out)).metadata()).toMatchObject({ width: 640, height: 448 });
  });

  it("lists models with family, dtype, inputs and whether they load", async () => {
    const r = await easel("models");
    expect(r.stdout).toMatch(/tiny: sd1, float32, loads: yes; input_ids int32, timestep int64 \[1\]/);
  });

  it.each([
    [["generate", "x", "--model", "nope"], 'unknown model "nope"'],
    [["generate", "x", "--steps", "1000000"], "1 to 150"],
    [["generate", "x", "--cfg", "NaN"], "--cfg must be a number"],
    [["generate", "x", "--init", "/no/such.png"], "/no/such.png"],
    [["generate", "x", "--size", "big"], "768x512"],
    [["generate", "x", "--sampler", "bogus"], "valid names"],
  ])("refuses %j with a clear message", async (args, message) => {
    const r = await easel(...args);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(message);
  });

  it("pulls a known model from the hub (a local fake) and generates with it", async () => {
    const sd15 = loadKnownModels().find((m) => m.name === "sd15");
    if (!sd15) throw new Error("sd15 is not in models/known-models.json");
    // The fake repo holds a tiny export under the real repo name, as the hub's tree and resolve endpoints.
    const source = join(work, "export");
    await writeTinyModel(source, TINY_MODEL_VARIANTS.sd1, CLIP_BPE_DIR);
    const paths = [
      "model_index.json",
      "scheduler/scheduler_config.json",
      "text_encoder/model.onnx",
      "unet/model.onnx",
      "vae_decoder/model.onnx",
      "vae_decoder/config.json",
      "vae_encoder/model.onnx",
      "tokenizer/vocab.json",
      "tokenizer/merges.txt",
      "tokenizer/special_tokens_map.json",
      "tokenizer/tokenizer_config.json",
    ];
    const files: FakeHubFile[] = paths.map((path) => ({ path, content: readFileSync(join(source, path)) }));
    const hub = await FakeHub.start([{ repo: sd15.repo, revision: sd15.revision, files }]);
    try {
      const pulled = await easelWith({ HF_ENDPOINT: hub.url }, "models", "pull", "sd15");
      expect(pulled.code).toBe(0);
      expect(pulled.stdout).toContain("checksums verified");
      const out = join(work, "pulled.png");
      const r = await easel(
        "generate",
        "a lighthouse",
        "--model",
        "sd15",
        "--steps",
        "2",
        "--size",
        "64x64",
        "--out",
        out,
      );
      expect(r.code).toBe(0);
      expect(readPngText(readFileSync(out)).parameters).toContain("Model: sd15");
      const again = await easelWith({ HF_ENDPOINT: hub.url }, "models", "pull", "sd15");
      expect(again.stdout).toContain("0 files downloaded");
    } finally {
      await hub.close();
    }
  });

  it("names an init file that is not an image", async () => {
    const bad = join(work, "bad.png");
    writeFileSync(bad, "not an image");
    const r = await easel("generate", "x", "--model", "tiny", "--init", bad, "--steps", "2");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("bad.png is not an image");
  });
});
