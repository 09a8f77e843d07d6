import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadKnownModels } from "../src/backends/ldm/hub-download.ts";
import { TINY_MODEL_VARIANTS, writeTinyModel } from "../src/backends/ldm/tiny-model.ts";
import { CLIP_BPE_DIR } from "../src/backends/ldm/tokenizer/clip-tokenizer.ts";
import { describeSize, sizeForAspect } from "../src/core/aspect.ts";
import { readPngText } from "../src/render/png.ts";
import { CliHarness, readUserComment } from "./cli-harness.ts";
import { FakeHub, type FakeHubFile } from "./fakes/fake-hub.ts";

/** `easel generate`, `models` and `tokenize` end to end, on a tiny model the CLI itself writes. */

let cli: CliHarness;
const easel = (...args: string[]) => cli.run(args);
const file = (name: string) => join(cli.work, name);

beforeAll(async () => {
  cli = await CliHarness.create();
  const made = await easel("models", "make-tiny", "tiny");
  expect(made.stderr).toBe("");
  expect(made.code).toBe(0);
}, 60_000);

afterAll(() => cli.close());

describe("easel generate", () => {
  it("writes a PNG with its settings, printing the seed, the size with its ratio, and the timing", async () => {
    const out = file("one.png");
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
    expect(r.stdout).toContain("seed: 1234\n");
    expect(r.stdout).toContain("settings: 128×64 (2:1), 3 steps, pndm,");
    expect(r.stdout).toMatch(/time: [\d.]+ s on cpu/);
    // The harness sees onnxruntime loaded when it is, so the refusals' "never loaded" checks can fail.
    expect(r.onnxruntime).toBe(true);
    const png = readFileSync(out);
    expect(await sharp(png).metadata()).toMatchObject({ width: 128, height: 64 });
    const parameters = readPngText(png).parameters ?? "";
    expect(parameters).toContain("a lighthouse in a storm");
    expect(parameters).toContain("Seed: 1234");
    expect(parameters).toContain("Size: 128x64");
  });

  it("writes a flagged image black and names it; --no-safety-checker keeps it", async () => {
    // A checker lent from a folder beside the models (this tiny one flags everything).
    const lender = file("checker");
    await writeTinyModel(lender, { safetyChecker: true, safetyThreshold: -100 }, CLIP_BPE_DIR);
    const env = { EASEL_SAFETY_CHECKER: lender };
    const args = ["generate", "a cat", "--seed", "5", "--steps", "2", "--size", "64x64", "--n", "2"];
    const checked = await cli.run([...args, "--out", file("checked.png")], { env });
    expect(checked.code).toBe(0);
    expect(checked.stdout).toContain("image 1 flagged by the safety checker (written black)");
    expect(checked.stdout).toContain("image 2 flagged by the safety checker (written black)");
    const black = await sharp(file("checked-1.png")).stats();
    expect(black.channels.every((c) => c.max === 0)).toBe(true);

    const kept = await cli.run([...args, "--out", file("kept.png"), "--no-safety-checker"], { env });
    expect(kept.code).toBe(0);
    expect(kept.stdout).not.toContain("flagged");
    expect(kept.stdout).toContain("safety checker: off (--no-safety-checker)");
    const shown = await sharp(file("kept-1.png")).stats();
    expect(shown.channels.some((c) => c.max > 0)).toBe(true);
  });

  it('says "1 step", not "1 steps"', async () => {
    const r = await easel(
      "generate",
      "a cat",
      "--steps",
      "1",
      "--size",
      "64x64",
      "--out",
      file("single.png"),
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(", 1 step, ");
    expect(r.stdout).not.toContain("1 steps");
  });

  it("draws seeds when none is given and writes a grid (with every seed in its parameters) plus each image", async () => {
    const out = file("grid.png");
    const r = await easel("generate", "a cat", "--steps", "2", "--size", "64x64", "--n", "2", "--out", out);
    expect(r.code).toBe(0);
    const seeds = /seeds: (\d+), (\d+)/.exec(r.stdout);
    expect(Number(seeds?.[2])).toBe(Number(seeds?.[1]) + 1);
    const grid = readFileSync(out);
    expect(await sharp(grid).metadata()).toMatchObject({ width: 128, height: 64 });
    expect(readPngText(grid).parameters).toContain(`Grid seeds: "${seeds?.[1]}, ${seeds?.[2]}"`);
    expect(readPngText(readFileSync(file("grid-2.png"))).parameters).toContain(`Seed: ${seeds?.[2]}`);
  });

  it.each([
    ["euler_a", "euler_ancestral", "Euler a"],
    ["DPM++ 2M Karras", "dpmpp_2m_karras", "DPM++ 2M Karras"],
  ])("takes the sampler alias %j as the bot does", async (typed, sampler, a1111) => {
    const out = file("alias.png");
    const r = await easel(
      "generate",
      "a cat",
      "--sampler",
      typed,
      "--steps",
      "2",
      "--size",
      "64x64",
      "--out",
      out,
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`, ${sampler}, cfg`);
    expect(readPngText(readFileSync(out)).parameters).toContain(`Sampler: ${a1111},`);
  });

  it.each([
    ["jpeg", "x.jpg"],
    ["jpeg", "x.JPEG"],
    ["webp", "x.webp"],
  ])(
    "writes %s for --out %s, the settings in EXIF UserComment as A1111 writes them",
    async (format, name) => {
      const prompt = "a café in Kyōto, 猫 🐈";
      const out = file(name);
      const r = await easel(
        "generate",
        prompt,
        "--seed",
        "7",
        "--steps",
        "2",
        "--size",
        "64x64",
        "--out",
        out,
      );
      expect(r.code).toBe(0);
      const bytes = readFileSync(out);
      expect(await sharp(bytes).metadata()).toMatchObject({ format, width: 64, height: 64 });
      const comment = await readUserComment(bytes);
      expect(comment?.charset).toBe("UNICODE");
      expect(comment?.text).toMatch(
        new RegExp(`^${prompt}\\nSteps: 2, Sampler: PLMS, CFG scale: 7.5, Seed: 7, `),
      );
    },
  );

  it("writes each image and the grid in the format of --out", async () => {
    const out = file("many.webp");
    const r = await easel("generate", "a cat", "--steps", "1", "--size", "64x64", "--n", "2", "--out", out);
    expect(r.code).toBe(0);
    for (const name of ["many.webp", "many-1.webp", "many-2.webp"])
      expect((await sharp(readFileSync(file(name))).metadata()).format).toBe("webp");
    expect((await readUserComment(readFileSync(out)))?.text).toContain("Grid seeds:");
  });

  it("reads the prompt, flags included, from --prompt-file, and from standard input with -", async () => {
    const promptFile = file("prompt.txt");
    writeFileSync(promptFile, "\uFEFFa red fox --ar 3:2\n");
    const fromFile = await easel(
      "generate",
      "--prompt-file",
      promptFile,
      "--steps",
      "1",
      "--out",
      file("pf.png"),
    );
    expect(fromFile.code).toBe(0);
    const png = readFileSync(file("pf.png"));
    // --ar 3:2 from the file sized the image, and the prompt is the text before it, without the line break.
    expect(await sharp(png).metadata()).toMatchObject(sizeForAspect({ w: 3, h: 2 }, 512));
    expect(readPngText(png).parameters).toMatch(/^a red fox\nSteps: 1,/);

    const fromStdin = await cli.run(
      ["generate", "-", "--steps", "1", "--size", "64x64", "--out", file("in.png")],
      {
        input: "a blue fox\n",
      },
    );
    expect(fromStdin.code).toBe(0);
    expect(readPngText(readFileSync(file("in.png"))).parameters).toMatch(/^a blue fox\nSteps: 1,/);
  });

  it("runs img2img from a file with a strength, sizing from --ar", async () => {
    const init = file("init.png");
    writeFileSync(
      init,
      await sharp({ create: { width: 100, height: 80, channels: 3, background: "#336699" } })
        .png()
        .toBuffer(),
    );
    const out = file("img2img.png");
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
    const size = sizeForAspect({ w: 3, h: 2 }, 512);
    expect(r.stdout).toContain(`settings: ${describeSize(size.width, size.height)}, 4 steps,`);
    expect(r.stdout).toContain("strength 0.5");
    expect(readPngText(readFileSync(out)).parameters).toContain("Denoising strength: 0.5");
    expect(await sharp(readFileSync(out)).metadata()).toMatchObject(size);
  });

  it("keeps the --init image's shape when no size is given", async () => {
    const init = file("wide.png");
    writeFileSync(
      init,
      await sharp({ create: { width: 200, height: 100, channels: 3, background: "#996633" } })
        .png()
        .toBuffer(),
    );
    const r = await easel("generate", "a wall", "--init", init, "--steps", "2", "--out", file("shape.png"));
    expect(r.code).toBe(0);
    // 200×100 is 2:1, sized as --ar 2:1 would be at SD 1.x's 512².
    expect(await sharp(readFileSync(file("shape.png"))).metadata()).toMatchObject(
      sizeForAspect({ w: 2, h: 1 }, 512),
    );
  });

  it("names an init file that is not an image, before loading the model", async () => {
    const bad = file("bad.png");
    writeFileSync(bad, "not an image");
    const r = await easel("generate", "x", "--init", bad, "--steps", "2");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("bad.png is not an image");
    expect(r.onnxruntime).toBe(false);
  });
});

describe("easel models and tokenize", () => {
  it("lists models with family, dtype, inputs and whether they load", async () => {
    const r = await easel("models");
    expect(r.stdout).toMatch(/tiny: sd1, float32, loads: yes; input_ids int32, timestep int64 \[1\]/);
    expect((await easel("models", "list")).stdout).toBe(r.stdout);
  });

  it("tokenizes with a model's tokenizer (--model), from words, a file or standard input", async () => {
    const words = await easel("tokenize", "--model", "tiny", "a", "cat");
    expect(words.code).toBe(0);
    expect(words.stdout).toMatch(/^tokens: 2 \(limit 75\)\ninput_ids: 49406 320 2368 49407/);
    writeFileSync(file("tokens.txt"), "a cat\n");
    expect((await easel("tokenize", "--model", "tiny", "--prompt-file", file("tokens.txt"))).stdout).toBe(
      words.stdout,
    );
    expect((await cli.run(["tokenize", "-"], { input: "a cat" })).stdout).toBe(words.stdout);
  });

  it("is not blocked by a malformed variable only the bot reads", async () => {
    const r = await cli.run(["tokenize", "--model", "tiny", "a", "cat"], {
      env: { DISCORD_GUILD_ID: "abc", SLACK_PORT: "http" },
    });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^tokens: 2 /);
  });

  it('counts the tokens cut past the limit, "1 token" in the singular', async () => {
    const r = await easel("tokenize", "--model", "tiny", Array.from({ length: 76 }, () => "cat").join(" "));
    expect(r.stdout).toContain("cut: 1 token past the limit is ignored");
  });

  it("refuses an unknown --model for tokenize, naming the models there", async () => {
    const r = await easel("tokenize", "--model", "nope", "a cat");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--model: unknown model "nope"');
    expect(r.stderr).toContain(": tiny");
  });

  it("pulls a known model from the hub (a local fake) and generates with it", async () => {
    const sd15 = loadKnownModels().find((m) => m.name === "sd15");
    if (!sd15) throw new Error("sd15 is not in models/known-models.json");
    // The fake repo holds a tiny export under the real repo name, as the hub's tree and resolve endpoints.
    const source = file("export");
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
      const pulled = await cli.run(["models", "pull", "sd15"], { env: { HF_ENDPOINT: hub.url } });
      expect(pulled.code).toBe(0);
      expect(pulled.stdout).toContain("checksums verified");
      const out = file("pulled.png");
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
      const again = await cli.run(["models", "pull", "sd15"], { env: { HF_ENDPOINT: hub.url } });
      expect(again.stdout).toContain("0 files downloaded");
    } finally {
      await hub.close();
    }
  });
});
