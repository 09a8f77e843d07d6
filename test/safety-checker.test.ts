import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import onnxProto from "onnx-proto";
import { afterAll, describe, expect, it } from "vitest";
import { clipPixelValues, readClipImageConfig } from "../src/backends/ldm/clip-image-processor.ts";
import { LdmModel } from "../src/backends/ldm/ldm-model.ts";
import { readModelFolder } from "../src/backends/ldm/model-folder.ts";
import { SessionFactory } from "../src/backends/ldm/onnx-session.ts";
import { type GenerateParams, generate } from "../src/backends/ldm/pipeline.ts";
import { type TinyModelOptions, writeTinyModel } from "../src/backends/ldm/tiny-model.ts";
import { CLIP_BPE_DIR } from "../src/backends/ldm/tokenizer/clip-tokenizer.ts";
import { failure } from "./support.ts";

const { onnx } = onnxProto;

/**
 * The model's own safety checker (safety_checker/ + feature_extractor/), run after decoding as diffusers does:
 * a flagged image comes back black and marked; the others are untouched. The tiny checker flags an image when
 * the mean of its CLIP input is above a threshold, so the test chooses which images it flags.
 */

const dir = mkdtempSync(join(tmpdir(), "easel-safety-"));
const factory = new SessionFactory({ device: "cpu" });
const loaded: LdmModel[] = [];
afterAll(async () => {
  for (const m of loaded) await m.release();
  rmSync(dir, { recursive: true, force: true });
});

async function tiny(name: string, options: TinyModelOptions, lent?: string): Promise<LdmModel> {
  await writeTinyModel(join(dir, name), options, CLIP_BPE_DIR);
  const m = await LdmModel.load(
    readModelFolder(join(dir, name)),
    factory,
    lent ? { lentSafetyChecker: lent } : {},
  );
  loaded.push(m);
  return m;
}

const PARAMS: GenerateParams = {
  prompt: "a lighthouse in a storm",
  seed: 7,
  steps: 3,
  guidance: 7.5,
  scheduler: "euler",
  width: 64,
  height: 64,
  count: 4,
};
const bytes = (data: Uint8Array) => Buffer.from(data).toString("base64");

describe("the model's safety checker", () => {
  it("blacks out exactly the images it flags, marks them, and leaves the others as they were", async () => {
    const probe = await tiny("probe", { safetyChecker: true });
    const plain = await generate(probe, { ...PARAMS, safetyChecker: false });
    expect(plain.safetyChecked).toBe(false);
    expect(plain.images.map((i) => i.flagged)).toEqual([false, false, false, false]);
    // The CLIP input means of the four images, as the checker computes them; a threshold between the second
    // and third flags the two brightest.
    const config = readClipImageConfig(join(dir, "probe", "feature_extractor", "preprocessor_config.json"));
    const means = plain.images.map((image) => {
      const { data } = clipPixelValues(config, [image.pixels]);
      return data.reduce((a, b) => a + b, 0) / data.length;
    });
    const sorted = [...means].sort((a, b) => a - b);
    expect(sorted[2]).toBeGreaterThan(sorted[1] as number);
    const threshold = ((sorted[1] as number) + (sorted[2] as number)) / 2;

    const checked = await generate(
      await tiny("checked", { safetyChecker: true, safetyThreshold: threshold }),
      PARAMS,
    );
    expect(checked.safetyChecked).toBe(true);
    expect(checked.images.map((i) => i.flagged)).toEqual(means.map((m) => m > threshold));
    for (const [k, image] of checked.images.entries()) {
      const before = plain.images[k]?.pixels.data as Uint8Array;
      if (image.flagged) expect(image.pixels.data.every((v) => v === 0)).toBe(true);
      else expect(bytes(image.pixels.data)).toBe(bytes(before));
    }
    expect(checked.timings.safetyMs).toBeGreaterThan(0);
  });

  it("is skipped when asked (--no-safety-checker, a channel that allows NSFW)", async () => {
    const m = await tiny("strict", { safetyChecker: true, safetyThreshold: -100 });
    expect((await generate(m, PARAMS)).images.every((i) => i.flagged)).toBe(true);
    const off = await generate(m, { ...PARAMS, safetyChecker: false });
    expect(off.images.some((i) => i.flagged)).toBe(false);
  });

  it("can be lent to a model that has none (EASEL_SAFETY_CHECKER)", async () => {
    await writeTinyModel(join(dir, "lender"), { safetyChecker: true, safetyThreshold: -100 }, CLIP_BPE_DIR);
    const without = await tiny("without", {});
    expect(without.safetyChecker).toBeUndefined();
    const borrowing = await tiny("borrowing", {}, join(dir, "lender"));
    expect((await generate(borrowing, PARAMS)).images.every((i) => i.flagged)).toBe(true);
    const refused = await failure(tiny("borrowing-nothing", {}, join(dir, "without")));
    expect(refused.message).toContain(`EASEL_SAFETY_CHECKER=${join(dir, "without")}`);
  });

  it("refuses at load, naming the file, a checker without its preprocessing or with unexpected inputs", async () => {
    await writeTinyModel(join(dir, "half"), { safetyChecker: true }, CLIP_BPE_DIR);
    rmSync(join(dir, "half", "feature_extractor"), { recursive: true });
    const half = await failure(LdmModel.load(readModelFolder(join(dir, "half")), factory));
    expect(half.message).toContain(join("feature_extractor", "preprocessor_config.json"));

    await writeTinyModel(join(dir, "odd"), { safetyChecker: true }, CLIP_BPE_DIR);
    const path = join(dir, "odd", "safety_checker", "model.onnx");
    const model = onnx.ModelProto.decode(readFileSync(path));
    const input = model.graph?.input?.find((i) => i.name === "images");
    if (!input) throw new Error("the tiny checker has no images input");
    input.name = "pixel_values";
    for (const node of model.graph?.node ?? []) {
      node.input = (node.input ?? []).map((n) => (n === "images" ? "pixel_values" : n));
    }
    writeFileSync(path, onnx.ModelProto.encode(model).finish());
    const odd = await failure(LdmModel.load(readModelFolder(join(dir, "odd")), factory));
    expect(odd.message).toContain(path);
    expect(odd.message).toContain("clip_input and images");
    expect(odd.message).toContain("pixel_values");

    await writeTinyModel(join(dir, "bad-config"), { safetyChecker: true }, CLIP_BPE_DIR);
    const config = join(dir, "bad-config", "feature_extractor", "preprocessor_config.json");
    writeFileSync(
      config,
      JSON.stringify({ size: 224, crop_size: 224, resample: 1, image_mean: [0, 0, 0], image_std: [1, 1, 1] }),
    );
    const bad = await failure(LdmModel.load(readModelFolder(join(dir, "bad-config")), factory));
    expect(bad.message).toContain(config);
    expect(bad.message).toContain("resample 1");
  });
});
