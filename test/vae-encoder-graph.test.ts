import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import onnxProto from "onnx-proto";
import { afterAll, describe, expect, it } from "vitest";
import { LdmModel } from "../src/backends/ldm/ldm-model.ts";
import { readModelFolder } from "../src/backends/ldm/model-folder.ts";
import { ort, SessionFactory } from "../src/backends/ldm/onnx-session.ts";
import { type GenerateParams, generate, type RgbPixels } from "../src/backends/ldm/pipeline.ts";
import { writeTinyModel } from "../src/backends/ldm/tiny-model.ts";
import { CLIP_BPE_DIR } from "../src/backends/ldm/tokenizer/clip-tokenizer.ts";
import {
  drawsInGraph,
  exposePosteriorParameters,
  POSTERIOR_PARAMETERS,
} from "../src/backends/ldm/vae-encoder-graph.ts";
import { failure } from "./support.ts";

const { onnx } = onnxProto;

/**
 * Legacy exports draw the VAE posterior's sample inside the graph (RandomNormalLike), which the seed cannot
 * reach and which changes from run to run in one session. easel cuts the draw out at load and draws it from
 * the seeded generator, as diffusers does (src/backends/ldm/vae-encoder-graph.ts).
 */

const dir = mkdtempSync(join(tmpdir(), "easel-vae-cut-"));
const factory = new SessionFactory({ device: "cpu" });
const models: LdmModel[] = [];
afterAll(async () => {
  for (const m of models) await m.release();
  rmSync(dir, { recursive: true, force: true });
});

async function tiny(
  name: string,
  vaeEncoderOutput: "latent_sample" | "latent_parameters",
): Promise<LdmModel> {
  await writeTinyModel(join(dir, name), { vaeEncoderOutput }, CLIP_BPE_DIR);
  const m = await LdmModel.load(readModelFolder(join(dir, name)), factory);
  models.push(m);
  return m;
}

const image: RgbPixels = {
  width: 64,
  height: 64,
  data: Uint8Array.from({ length: 64 * 64 * 3 }, (_, i) => (i * 37) % 256),
};
const IMG2IMG: GenerateParams = {
  prompt: "a lighthouse in a storm",
  seed: 42,
  steps: 10,
  guidance: 7.5,
  scheduler: "euler_ancestral",
  width: 64,
  height: 64,
  count: 2,
  init: { image, strength: 0.6 },
};
const pixels = (result: Awaited<ReturnType<typeof generate>>) =>
  result.images.map((i) => Buffer.from(i.pixels.data).toString("base64"));

function chw(pixels: RgbPixels): Float32Array {
  const plane = pixels.width * pixels.height;
  const out = new Float32Array(3 * plane);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) out[c * plane + p] = (pixels.data[p * 3 + c] as number) / 127.5 - 1;
  }
  return out;
}

async function runEncoder(source: string | Uint8Array): Promise<Record<string, Float32Array>> {
  const session =
    typeof source === "string"
      ? await ort.InferenceSession.create(source)
      : await ort.InferenceSession.create(source);
  try {
    const out = await session.run({ sample: new ort.Tensor("float32", chw(image), [1, 3, 64, 64]) });
    return Object.fromEntries(
      Object.entries(out).map(([name, tensor]) => [name, Float32Array.from(tensor.data as Float32Array)]),
    );
  } finally {
    await session.release();
  }
}

describe("a VAE encoder that draws its sample inside the graph", () => {
  it("draws differently on every run in one session: the reason for the cut", async () => {
    await tiny("legacy-probe", "latent_sample");
    const path = join(dir, "legacy-probe", "vae_encoder", "model.onnx");
    const session = await ort.InferenceSession.create(path);
    const feed = { sample: new ort.Tensor("float32", chw(image), [1, 3, 64, 64]) };
    const a = (await session.run(feed)).latent_sample?.data as Float32Array;
    const b = (await session.run(feed)).latent_sample?.data as Float32Array;
    await session.release();
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(false);
  });

  it("is cut to the Gaussian's parameters: no random node left, the same values as optimum's output", async () => {
    await tiny("params-probe", "latent_parameters");
    const legacy = readFileSync(join(dir, "legacy-probe", "vae_encoder", "model.onnx"));
    expect(drawsInGraph(legacy)).toBe(true);
    const cut = exposePosteriorParameters(legacy, "legacy/vae_encoder/model.onnx");
    expect(drawsInGraph(cut)).toBe(false);
    const graph = onnx.ModelProto.decode(cut).graph;
    expect(graph?.output?.map((o) => o.name)).toEqual([POSTERIOR_PARAMETERS]);

    const fromCut = (await runEncoder(cut))[POSTERIOR_PARAMETERS];
    const optimum = (await runEncoder(join(dir, "params-probe", "vae_encoder", "model.onnx")))[
      POSTERIOR_PARAMETERS
    ];
    expect(fromCut?.length).toBe(8 * 8 * 8);
    expect(fromCut).toEqual(optimum);
  });

  it("gives img2img that follows the seed: the same in a long-lived session, and the same as optimum's layout", async () => {
    const legacy = await tiny("legacy", "latent_sample");
    const optimum = await tiny("optimum", "latent_parameters");
    expect(legacy.io.vaeEncoderOutput).toBe("latent_parameters");
    const first = pixels(await generate(legacy, IMG2IMG));
    for (let run = 0; run < 5; run++) expect(pixels(await generate(legacy, IMG2IMG))).toEqual(first);
    expect(pixels(await generate(optimum, IMG2IMG))).toEqual(first);
    expect(first[0]).not.toEqual(first[1]);
    expect(pixels(await generate(legacy, { ...IMG2IMG, seed: 43 }))[0]).toEqual(first[1]);
  });

  it("is refused at load, naming the file, when the draw is not diffusers' mean + std · noise", async () => {
    await tiny("odd", "latent_sample");
    const path = join(dir, "odd", "vae_encoder", "model.onnx");
    const model = onnx.ModelProto.decode(readFileSync(path));
    const add = model.graph?.node?.find((n) => n.opType === "Add");
    if (!add) throw new Error("the tiny legacy encoder has no Add");
    add.opType = "Sub";
    writeFileSync(path, onnx.ModelProto.encode(model).finish());
    const refused = await failure(LdmModel.load(readModelFolder(join(dir, "odd")), factory));
    expect(refused.message).toContain(path);
    expect(refused.message).toContain("optimum ≥ 1.24");
  });
});
