import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import onnxProto from "onnx-proto";
import { afterAll, describe, expect, it } from "vitest";
import { LdmModel } from "../src/backends/ldm/ldm-model.ts";
import { nativeSideOf } from "../src/backends/ldm/model-family.ts";
import { readModelFolder } from "../src/backends/ldm/model-folder.ts";
import { SessionFactory } from "../src/backends/ldm/onnx-session.ts";
import { addedTimeIds, type GenerateParams, generate } from "../src/backends/ldm/pipeline.ts";
import {
  TINY_MODEL_VARIANTS,
  type TinyModelVariantName,
  writeTinyModel,
} from "../src/backends/ldm/tiny-model.ts";
import { CLIP_BPE_DIR } from "../src/backends/ldm/tokenizer/clip-tokenizer.ts";
import { LdmWorkerPool } from "../src/backends/ldm/worker-pool.ts";
import { failure } from "./support.ts";

/**
 * SDXL and SDXL-Turbo on tiny generated models: what the family brings (two encoders, 1024² or 512², its
 * defaults), what a member sees (negative prompts, Turbo ignoring cfg, img2img reproducible in one loaded
 * model), and every bad folder refused at load naming the file. Equality with diffusers itself is in
 * diffusers-reference.test.ts.
 */

const dir = mkdtempSync(join(tmpdir(), "easel-sdxl-"));
const factory = new SessionFactory({ device: "cpu" });
const loaded: LdmModel[] = [];
afterAll(async () => {
  for (const m of loaded) await m.release();
  rmSync(dir, { recursive: true, force: true });
});

async function folder(variant: TinyModelVariantName, name: string = variant): Promise<string> {
  const path = join(dir, name);
  await writeTinyModel(path, TINY_MODEL_VARIANTS[variant], CLIP_BPE_DIR);
  return path;
}

async function load(path: string): Promise<LdmModel> {
  const m = await LdmModel.load(readModelFolder(path), factory);
  loaded.push(m);
  return m;
}

const BASE: GenerateParams = {
  prompt: "a lighthouse in a storm",
  seed: 7,
  steps: 3,
  guidance: 7,
  scheduler: "euler",
  width: 64,
  height: 64,
  count: 1,
};

/** Removes outputs from an ONNX file's graph (an export made without them), keeping the rest as it was. */
function dropOutputs(path: string, drop: (name: string) => boolean): void {
  const { onnx } = onnxProto;
  const model = onnx.ModelProto.decode(readFileSync(path));
  if (model.graph?.output) model.graph.output = model.graph.output.filter((o) => !drop(o.name ?? ""));
  writeFileSync(path, onnx.ModelProto.encode(model).finish());
}

/** Changes some fields of a model folder's JSON file. */
function editJson(path: string, fields: Record<string, unknown>): void {
  const config = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  writeFileSync(path, JSON.stringify({ ...config, ...fields }));
}

const bytes = (m: { images: { pixels: { data: Uint8Array } }[] }, k = 0) =>
  Buffer.from(m.images[k]?.pixels.data ?? []);

describe("SDXL base", () => {
  let model: LdmModel;
  it("loads as SDXL with both encoders, 1024² and its own defaults", async () => {
    model = await load(await folder("sdxl"));
    expect(model.io.family).toBe("sdxl");
    expect(model.io.text2?.pooledOutput).toBe("text_embeds");
    // The penultimate layer, as diffusers' hidden_states[-2].
    expect(model.io.text.hiddenOutput).toBe("hidden_states.1");
    expect(model.io.added?.timeIdsLength).toBe(6);
    expect(model.tokenizer2?.config.padId).toBe(0);
    expect(nativeSideOf(model.io.family)).toBe(1024);
    expect(model.defaults).toEqual({ scheduler: "euler", steps: 30, guidance: 7 });
    expect(model.folder.vaeScalingFactor).toBe(0.13025);
  });

  it('guides against zeros without a negative prompt, and against the encoded text with one (even "")', async () => {
    const none = await generate(model, BASE);
    const empty = await generate(model, { ...BASE, negativePrompt: "" });
    const text = await generate(model, { ...BASE, negativePrompt: "blurry" });
    expect(bytes(none).equals(bytes(empty))).toBe(false);
    expect(bytes(empty).equals(bytes(text))).toBe(false);
  });

  it("conditions on the render size (time_ids) and gives image i the image of seed + i", async () => {
    expect(Array.from(addedTimeIds(6, 96, 64, false))).toEqual([64, 96, 0, 0, 64, 96]);
    expect(Array.from(addedTimeIds(5, 96, 64, true))).toEqual([64, 96, 0, 0, 2.5, 64, 96, 0, 0, 6]);
    const batch = await generate(model, { ...BASE, count: 2, scheduler: "euler_ancestral" });
    const second = await generate(model, { ...BASE, seed: BASE.seed + 1, scheduler: "euler_ancestral" });
    expect(bytes(batch, 1).equals(bytes(second))).toBe(true);
  });

  it("makes the same img2img image on every run in one loaded model", async () => {
    const init = (await generate(model, BASE)).images[0]?.pixels;
    if (!init) throw new Error("no init image");
    const params = { ...BASE, seed: 3, init: { image: init, strength: 0.6 } };
    const first = bytes(await generate(model, params));
    for (let run = 0; run < 5; run++) expect(bytes(await generate(model, params)).equals(first)).toBe(true);
    expect(bytes(await generate(model, { ...params, seed: 4 })).equals(first)).toBe(false);
  });

  it("shows previews through SDXL's own latent-to-RGB map", async () => {
    const previews: number[] = [];
    await generate(
      model,
      { ...BASE, previewEvery: 1 },
      { onProgress: (p) => p.previews && previews.push(p.step) },
    );
    expect(previews).toEqual([1, 2]);
  });
});

describe("SDXL-Turbo", () => {
  it("loads as SDXL-Turbo at 512², one step, no guidance, and says cfg is not used", async () => {
    const model = await load(await folder("sdxl-turbo"));
    expect(model.io.family).toBe("sdxl-turbo");
    expect(nativeSideOf(model.io.family)).toBe(512);
    expect(model.defaults).toEqual({ scheduler: "euler_ancestral", steps: 1, guidance: 0 });
    const plain = await generate(model, { ...BASE, scheduler: "euler_ancestral", steps: 1, guidance: 0 });
    const guided = await generate(model, { ...BASE, scheduler: "euler_ancestral", steps: 1, guidance: 5 });
    expect(bytes(plain).equals(bytes(guided))).toBe(true);
    expect(guided.notes.join(" ")).toContain("SDXL-Turbo runs without guidance");
    expect(guided.timings.unetMs).toBeGreaterThan(0);
  });
});

describe("the bot sizes and times an SDXL job from the folder, before any worker has loaded it", () => {
  it("gives SDXL 1024² and SDXL-Turbo 512², and weighs SDXL's ETA above SD 1.x's", async () => {
    const models = join(dir, "pool");
    await writeTinyModel(join(models, "xl"), TINY_MODEL_VARIANTS.sdxl, CLIP_BPE_DIR);
    await writeTinyModel(join(models, "xl-turbo"), TINY_MODEL_VARIANTS["sdxl-turbo"], CLIP_BPE_DIR);
    await writeTinyModel(join(models, "one-five"), TINY_MODEL_VARIANTS.sd1, CLIP_BPE_DIR);
    const pool = new LdmWorkerPool({ modelsDir: models, device: "cpu" });
    expect(pool.nativeSide("xl")).toBe(1024);
    expect(pool.nativeSide("xl-turbo")).toBe(512);
    expect(pool.nativeSide("one-five")).toBe(512);
    expect(pool.costWeight("xl")).toBeGreaterThan(pool.costWeight("one-five"));
    expect(pool.loaded("xl")).toBeUndefined();
  });
});

describe("a bad SDXL folder is refused at load, naming the file and what was expected", () => {
  it("with only the first text encoder", async () => {
    const path = await folder("sdxl", "no-second-encoder");
    rmSync(join(path, "text_encoder_2"), { recursive: true });
    const err = await failure(load(path));
    expect(err.message).toContain(join(path, "text_encoder_2", "model.onnx"));
    expect(err.message).toContain("both text encoders");
  });

  it("with only the second text encoder", async () => {
    const path = await folder("sdxl", "no-first-encoder");
    rmSync(join(path, "text_encoder"), { recursive: true });
    const err = await failure(load(path));
    expect(err.message).toContain(join(path, "text_encoder", "model.onnx"));
  });

  it("with a tokenizer_2 that does not match text_encoder_2", async () => {
    const path = await folder("sdxl", "other-tokenizer");
    editJson(join(path, "text_encoder_2", "config.json"), { vocab_size: 32000 });
    const err = await failure(load(path));
    expect(err.message).toContain(join(path, "tokenizer_2", "vocab.json"));
    expect(err.message).toContain("does not match");
  });

  it("with a tokenizer_2 that pads to another length", async () => {
    const path = await folder("sdxl", "other-length");
    editJson(join(path, "tokenizer_2", "tokenizer_config.json"), { model_max_length: 64 });
    const err = await failure(load(path));
    expect(err.message).toContain("tokenizer_2 pads to 64 tokens");
  });

  it("with no tokenizer_2 at all", async () => {
    const path = await folder("sdxl", "no-tokenizer-2");
    rmSync(join(path, "tokenizer_2"), { recursive: true });
    const err = await failure(load(path));
    expect(err.message).toContain(join(path, "tokenizer_2", "vocab.json"));
  });

  it("with a text encoder exported without its hidden states (SDXL reads the penultimate layer)", async () => {
    const path = await folder("sdxl", "no-hidden-states");
    const file = join(path, "text_encoder", "model.onnx");
    dropOutputs(file, (name) => name.startsWith("hidden_states."));
    const err = await failure(load(path));
    expect(err.message).toContain(file);
    expect(err.message).toContain("hidden_states.0");
  });

  it("with a second text encoder without its projection (text_embeds)", async () => {
    const path = await folder("sdxl", "no-projection");
    const file = join(path, "text_encoder_2", "model.onnx");
    dropOutputs(file, (name) => name === "text_embeds");
    const err = await failure(load(path));
    expect(err.message).toContain(file);
    expect(err.message).toContain("must output text_embeds");
  });

  it("with a UNet whose text width does not match the two encoders", async () => {
    const path = join(dir, "mismatched-width");
    await writeTinyModel(path, TINY_MODEL_VARIANTS.sdxl, CLIP_BPE_DIR);
    const other = join(dir, "wider-encoders");
    await writeTinyModel(other, { ...TINY_MODEL_VARIANTS.sdxl, hidden: 48 }, CLIP_BPE_DIR);
    cpSync(join(other, "text_encoder_2"), join(path, "text_encoder_2"), { recursive: true });
    const err = await failure(load(path));
    expect(err.message).toContain(join(path, "unet", "model.onnx"));
    expect(err.message).toContain("encoder_hidden_states width");
    expect(err.message).toContain("is 64, expected 80");
  });

  it("with a second text encoder beside a UNet that is not SDXL's", async () => {
    const sd1 = await folder("sd1", "sd1-with-second-encoder");
    const sdxl = await folder("sdxl", "sdxl-donor");
    cpSync(join(sdxl, "text_encoder_2"), join(sd1, "text_encoder_2"), { recursive: true });
    cpSync(join(sdxl, "tokenizer_2"), join(sd1, "tokenizer_2"), { recursive: true });
    const err = await failure(load(sd1));
    expect(err.message).toContain("not an SDXL UNet");
  });

  it("with a float16 VAE whose config asks for float32 (SDXL's VAE overflows in fp16)", async () => {
    const path = join(dir, "sdxl-fp16");
    await writeTinyModel(
      path,
      { ...TINY_MODEL_VARIANTS.sdxl, dtype: "float16", timestep: "float16[]" },
      CLIP_BPE_DIR,
    );
    editJson(join(path, "vae_decoder", "config.json"), { force_upcast: true });
    const err = await failure(load(path));
    expect(err.message).toContain(join(path, "vae_decoder", "model.onnx"));
    expect(err.message).toContain("sdxl-vae-fp16-fix");
    // The fp16-fix VAE says force_upcast false: that folder loads.
    editJson(join(path, "vae_decoder", "config.json"), { force_upcast: false });
    expect((await load(path)).io.floatTypes.vaeDecoder).toBe("float16");
  });
});
