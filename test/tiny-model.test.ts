import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import * as ort from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { float16ToFloat32, float32ToFloat16 } from "../src/backends/ldm/float16.ts";
import {
  resolveTinyModelOptions,
  TINY_MODEL_VARIANTS,
  type TinyModelOptions,
  type TinyModelVariantName,
  writeTinyModel,
} from "../src/backends/ldm/tiny-model.ts";
import { CLIP_BPE_DIR } from "../src/backends/ldm/tokenizer/clip-tokenizer.ts";
import { isEaselError } from "../src/core/errors.ts";

const TOKENIZER_DIR = CLIP_BPE_DIR;
const VARIANTS = Object.entries(TINY_MODEL_VARIANTS) as [TinyModelVariantName, TinyModelOptions][];
const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, logSeverityLevel: 3 };

let root = "";
const modelDir = (variant: string): string => join(root, variant);
const open = (variant: string, component: string): Promise<ort.InferenceSession> =>
  ort.InferenceSession.create(join(modelDir(variant), component, "model.onnx"), SESSION_OPTIONS);

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "easel-tiny-model-"));
  for (const [name, options] of VARIANTS) await writeTinyModel(modelDir(name), options, TOKENIZER_DIR);
});

afterAll(async () => {
  if (root !== "") await rm(root, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------------------------
// helpers

interface Port {
  name: string;
  type: string;
  shape: readonly (number | string)[];
}

function ports(metadata: readonly ort.InferenceSession.ValueMetadata[]): Port[] {
  return metadata.map((m) => {
    if (!m.isTensor) throw new Error(`${m.name} is not a tensor`);
    return { name: m.name, type: m.type, shape: m.shape };
  });
}

/** Deterministic values in [-1, 1) so runs are comparable. */
function wave(count: number, phase = 0): Float32Array {
  return Float32Array.from({ length: count }, (_, i) => Math.sin(i * 1.618 + phase));
}

function floatTensor(type: string, values: Float32Array, dims: readonly number[]): ort.Tensor {
  return type === "float16"
    ? new ort.Tensor("float16", Uint16Array.from(values, float32ToFloat16), dims)
    : new ort.Tensor("float32", values, dims);
}

function floats(tensor: ort.Tensor | undefined): Float32Array {
  if (tensor === undefined) throw new Error("missing output");
  if (tensor.type === "float16") return Float32Array.from(tensor.data as Uint16Array, float16ToFloat32);
  if (tensor.type === "float32") return tensor.data as Float32Array;
  throw new Error(`unexpected output type ${tensor.type}`);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs((a[i] ?? 0) - (b[i] ?? 0)));
  return max;
}

const maxAbs = (a: Float32Array): number => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

function idsTensor(type: string, ids: readonly number[], batch = 1): ort.Tensor {
  const all = Array.from({ length: batch }, () => ids).flat();
  return type === "int32"
    ? new ort.Tensor("int32", Int32Array.from(all), [batch, ids.length])
    : new ort.Tensor("int64", BigInt64Array.from(all.map(BigInt)), [batch, ids.length]);
}

/** A prompt-shaped id row: bos, a few words, eos, then padding. */
function promptIds(words: readonly number[], pad = 49407): number[] {
  const row = [49406, ...words, 49407];
  return [...row, ...Array.from({ length: 77 - row.length }, () => pad)];
}

function timestepTensor(port: Port, t: number, batch: number): ort.Tensor {
  // Shape as declared: [] stays a scalar, a symbolic [batch] gets one value per batch row, [1] gets one value.
  const dims = port.shape.length === 0 ? [] : typeof port.shape[0] === "string" ? [batch] : [1];
  const count = dims[0] ?? 1;
  if (port.type === "int64") return new ort.Tensor("int64", new BigInt64Array(count).fill(BigInt(t)), dims);
  return floatTensor(port.type, new Float32Array(count).fill(t), dims);
}

/** Feeds for every UNet input of `session`, sized from its metadata; `t` is the timestep. */
function unetFeeds(
  session: ort.InferenceSession,
  batch: number,
  size: number,
  t: number,
): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const port of ports(session.inputMetadata)) {
    const width = (axis: number): number => {
      const dim = port.shape[axis];
      if (typeof dim !== "number") throw new Error(`${port.name} dim ${axis} should be fixed`);
      return dim;
    };
    switch (port.name) {
      case "sample":
        feeds[port.name] = floatTensor(port.type, wave(batch * 4 * size * size), [batch, 4, size, size]);
        break;
      case "timestep":
        feeds[port.name] = timestepTensor(port, t, batch);
        break;
      case "encoder_hidden_states":
        feeds[port.name] = floatTensor(port.type, wave(batch * 77 * width(2), 1), [batch, 77, width(2)]);
        break;
      case "time_ids": {
        const ids = Float32Array.from(
          { length: batch * 6 },
          (_, i) => [512, 512, 0, 0, 512, 512][i % 6] ?? 0,
        );
        feeds[port.name] = floatTensor(port.type, ids, [batch, 6]);
        break;
      }
      default:
        // timestep_cond, text_embeds: [batch, n]
        feeds[port.name] = floatTensor(port.type, wave(batch * width(1), 2), [batch, width(1)]);
    }
  }
  return feeds;
}

/** The same feed with one input moved: the timestep from 500 to 100, time_ids (pixel sizes) doubled, others +0.5. */
function perturbed(
  session: ort.InferenceSession,
  feeds: Record<string, ort.Tensor>,
  name: string,
): ort.Tensor {
  const tensor = feeds[name];
  if (tensor === undefined) throw new Error(`no feed ${name}`);
  if (name === "timestep") {
    const port = ports(session.inputMetadata).find((p) => p.name === name);
    if (port === undefined) throw new Error("no timestep port");
    return timestepTensor(port, 100, tensor.dims[0] ?? 1);
  }
  const values = floats(tensor).map((v) => (name === "time_ids" ? 2 * v : v + 0.5));
  return floatTensor(tensor.type, values, tensor.dims);
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(relative(dir, join(entry.parentPath, entry.name)));
  }
  return out.sort();
}

// ---------------------------------------------------------------------------------------------------------------

describe("tiny model folders", () => {
  it("write the diffusers/optimum layout with tokenizer files for every variant", async () => {
    for (const [name, options] of VARIANTS) {
      const files = await listFiles(modelDir(name));
      const expected = [
        "model_index.json",
        "scheduler/scheduler_config.json",
        "text_encoder/config.json",
        "text_encoder/model.onnx",
        "tokenizer/merges.txt",
        "tokenizer/special_tokens_map.json",
        "tokenizer/tokenizer_config.json",
        "tokenizer/vocab.json",
        "unet/config.json",
        "unet/model.onnx",
        "vae_decoder/config.json",
        "vae_decoder/model.onnx",
        "vae_encoder/config.json",
        "vae_encoder/model.onnx",
      ];
      if (options.externalWeights === true) expected.push("unet/weights.pb");
      if ("safetyChecker" in options && options.safetyChecker) {
        expected.push("feature_extractor/preprocessor_config.json", "safety_checker/model.onnx");
      }
      if (options.family === "sdxl" || options.family === "sdxl-turbo") {
        expected.push(
          "text_encoder_2/config.json",
          "text_encoder_2/model.onnx",
          "tokenizer_2/merges.txt",
          "tokenizer_2/special_tokens_map.json",
          "tokenizer_2/tokenizer_config.json",
          "tokenizer_2/vocab.json",
        );
      }
      expect(files, name).toEqual(expected.sort());
    }
  });

  it("declare the intended input and output names, dtypes and ranks in session metadata", async () => {
    for (const [name, options] of VARIANTS) {
      const o = resolveTinyModelOptions(options);
      const f = o.dtype;
      const sdxl = o.family === "sdxl" || o.family === "sdxl-turbo";
      const crossDim = sdxl ? 2 * o.hidden : o.hidden;
      // SDXL's exports add every layer's hidden states: the pipeline reads the penultimate.
      const layers = sdxl ? [0, 1, 2].map((k) => [`hidden_states.${k}`, f, 3, o.hidden]) : [];

      const text = await open(name, "text_encoder");
      const [ids] = ports(text.inputMetadata);
      expect(ids?.name, name).toBe("input_ids");
      expect(ids?.type, name).toBe(o.inputIds);
      expect(ids?.shape.length, name).toBe(2);
      expect(ports(text.outputMetadata).map((p) => [p.name, p.type, p.shape.length, p.shape.at(-1)])).toEqual(
        [["last_hidden_state", f, 3, o.hidden], ["pooler_output", f, 2, o.hidden], ...layers],
      );

      const unet = ports((await open(name, "unet")).inputMetadata);
      const expectedTimestep = {
        "int64[1]": ["int64", [1]],
        "float32[1]": ["float32", [1]],
        "float32[batch]": ["float32", ["batch"]],
        "float32[]": ["float32", []],
        float16: ["float16", [1]],
        "float16[]": ["float16", []],
      }[o.timestep];
      expect(
        unet.find((p) => p.name === "timestep"),
        name,
      ).toMatchObject({
        type: expectedTimestep[0],
        shape: expectedTimestep[1],
      });
      const sample = unet.find((p) => p.name === "sample");
      expect(sample?.type, name).toBe(f);
      expect(sample?.shape.length, name).toBe(4);
      expect(typeof sample?.shape[0], name).toBe("string");
      const context = unet.find((p) => p.name === "encoder_hidden_states");
      expect(context?.type, name).toBe(f);
      expect(context?.shape.at(-1), name).toBe(crossDim);
      const extras = unet
        .map((p) => p.name)
        .filter((n) => !["sample", "timestep", "encoder_hidden_states"].includes(n));
      const expectedExtras = o.family === "lcm" ? ["timestep_cond"] : sdxl ? ["text_embeds", "time_ids"] : [];
      expect(extras, name).toEqual(expectedExtras);
      if (o.family === "lcm") expect(unet.find((p) => p.name === "timestep_cond")?.shape[1]).toBe(256);
      if (sdxl) {
        expect(unet.find((p) => p.name === "text_embeds")?.shape[1]).toBe(1280);
        expect(unet.find((p) => p.name === "time_ids")?.shape[1]).toBe(6);
      }
      expect(
        ports((await open(name, "unet")).outputMetadata).map((p) => [p.name, p.type, p.shape.length]),
      ).toEqual([["out_sample", f, 4]]);

      const decoder = await open(name, "vae_decoder");
      expect(ports(decoder.inputMetadata).map((p) => [p.name, p.type, p.shape.length])).toEqual([
        ["latent_sample", f, 4],
      ]);
      expect(ports(decoder.outputMetadata).map((p) => [p.name, p.type, p.shape[1]])).toEqual([
        ["sample", f, 3],
      ]);

      const encoder = await open(name, "vae_encoder");
      expect(ports(encoder.inputMetadata).map((p) => [p.name, p.type, p.shape.length])).toEqual([
        ["sample", f, 4],
      ]);
      const latentChannels = o.vaeEncoderOutput === "latent_parameters" ? 8 : 4;
      expect(ports(encoder.outputMetadata).map((p) => [p.name, p.type, p.shape[1]])).toEqual([
        [o.vaeEncoderOutput, f, latentChannels],
      ]);
    }
  });

  it("leave the legacy exporter's latent channel dim symbolic, as diffusers' script does", async () => {
    const sample = ports((await open("sd1-legacy", "unet")).inputMetadata).find((p) => p.name === "sample");
    expect(sample?.shape).toEqual(["batch", "channels", "height", "width"]);
  });

  it("give SDXL a second text encoder with a 1280-wide text_embeds output", async () => {
    const second = await open("sdxl", "text_encoder_2");
    expect(ports(second.outputMetadata).map((p) => [p.name, p.shape.at(-1)])).toEqual([
      ["text_embeds", 1280],
      ["last_hidden_state", 32],
      ["hidden_states.0", 32],
      ["hidden_states.1", 32],
      ["hidden_states.2", 32],
    ]);
  });

  it("produce a UNet output that moves with every input, for every variant", async () => {
    for (const [name] of VARIANTS) {
      const session = await open(name, "unet");
      const feeds = unetFeeds(session, 2, 8, 500);
      const base = floats((await session.run(feeds)).out_sample);
      expect(base.length, name).toBe(2 * 4 * 8 * 8);
      for (const input of Object.keys(feeds)) {
        const moved = floats(
          (await session.run({ ...feeds, [input]: perturbed(session, feeds, input) })).out_sample,
        );
        expect(maxAbsDiff(base, moved), `${name}: ${input}`).toBeGreaterThan(1e-3);
      }
    }
  });

  it("keep the UNet prediction near 0.5·sample so a 50-step loop stays finite and small", async () => {
    const session = await open("sd1", "unet");
    const feeds = unetFeeds(session, 1, 8, 0);
    const timestepPort = ports(session.inputMetadata).find((p) => p.name === "timestep");
    if (timestepPort === undefined) throw new Error("no timestep input");
    let latents = floats(feeds.sample).map((v) => v * 14.6);
    for (let step = 0; step < 50; step++) {
      const sigma = 14.6 * (1 - step / 50);
      const next = 14.6 * (1 - (step + 1) / 50);
      const scaled = latents.map((v) => v / Math.sqrt(sigma * sigma + 1));
      const timestep = timestepTensor(timestepPort, Math.round(999 - step * 20), 1);
      const eps = floats(
        (await session.run({ ...feeds, sample: floatTensor("float32", scaled, [1, 4, 8, 8]), timestep }))
          .out_sample,
      );
      expect(maxAbs(eps)).toBeLessThan(4);
      latents = latents.map((v, i) => v + (next - sigma) * (eps[i] ?? 0));
    }
    expect(latents.every(Number.isFinite)).toBe(true);
    expect(maxAbs(latents)).toBeLessThan(20);
  });

  it("mix every token into every text encoder row", async () => {
    const session = await open("sd1", "text_encoder");
    const run = async (words: number[]) => {
      const out = await session.run({ input_ids: idsTensor("int32", promptIds(words)) });
      return { last: floats(out.last_hidden_state), pooled: floats(out.pooler_output) };
    };
    const a = await run([320, 1125, 539]);
    const b = await run([320, 1125, 540]);
    expect(a.last.length).toBe(77 * 32);
    // Row 76 is padding in both prompts; it must still change, as pad rows carry the prompt in CLIP too.
    expect(maxAbsDiff(a.last.subarray(76 * 32), b.last.subarray(76 * 32))).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(a.pooled, b.pooled)).toBeGreaterThan(1e-4);
    expect(maxAbs(a.last)).toBeLessThanOrEqual(1);
  });

  it("accept int64 input_ids and fp16 outputs where the variant asks for them", async () => {
    const session = await open("sd1-optimum-fp16", "text_encoder");
    const out = await session.run({ input_ids: idsTensor("int64", promptIds([320]), 2) });
    expect(out.last_hidden_state?.type).toBe("float16");
    expect(out.last_hidden_state?.dims).toEqual([2, 77, 32]);
    expect(floats(out.last_hidden_state).every(Number.isFinite)).toBe(true);
  });

  it("decode latents ×8 into an image in [-1, 1] and encode ×1/8 back", async () => {
    for (const name of ["sd1", "sd1-fp16", "sd1-optimum", "sd1-legacy"] as const) {
      const o = resolveTinyModelOptions(TINY_MODEL_VARIANTS[name]);
      const decoder = await open(name, "vae_decoder");
      const latents = wave(2 * 4 * 6 * 5).map((v) => v / 0.18215);
      const image = (await decoder.run({ latent_sample: floatTensor(o.dtype, latents, [2, 4, 6, 5]) }))
        .sample;
      expect(image?.dims, name).toEqual([2, 3, 48, 40]);
      const pixels = floats(image);
      expect(Math.max(...pixels), name).toBeLessThanOrEqual(1);
      expect(Math.min(...pixels), name).toBeGreaterThanOrEqual(-1);
      // Not saturated: a tiny VAE that only outputs ±1 would hide clipping bugs downstream.
      expect(pixels.filter((v) => Math.abs(v) < 0.9).length, name).toBeGreaterThan(pixels.length / 4);

      const encoder = await open(name, "vae_encoder");
      const encoded = (
        await encoder.run({ sample: floatTensor(o.dtype, wave(3 * 48 * 40), [1, 3, 48, 40]) })
      )[o.vaeEncoderOutput];
      expect(encoded?.dims, name).toEqual([1, o.vaeEncoderOutput === "latent_parameters" ? 8 : 4, 6, 5]);
    }
  });

  it("keep the external-weights UNet's tensors in weights.pb and load it from a file path", async () => {
    const unetDir = join(modelDir("sd1-legacy"), "unet");
    const weights = await readFile(join(unetDir, "weights.pb"));
    const model = await readFile(join(unetDir, "model.onnx"));
    expect(weights.length).toBeGreaterThan(model.length);
    const session = await open("sd1-legacy", "unet");
    const out = await session.run(unetFeeds(session, 1, 8, 10));
    expect(out.out_sample?.dims).toEqual([1, 4, 8, 8]);
    // From bytes, ORT needs the external file handed over explicitly (it refuses to resolve paths for a buffer).
    const fromBytes = await ort.InferenceSession.create(model, {
      ...SESSION_OPTIONS,
      externalData: [{ path: "weights.pb", data: weights }],
    });
    const again = await fromBytes.run(unetFeeds(fromBytes, 1, 8, 10));
    expect(maxAbsDiff(floats(again.out_sample), floats(out.out_sample))).toBe(0);
  });

  it("are deterministic: building again gives byte-identical files", async () => {
    const second = await mkdtemp(join(tmpdir(), "easel-tiny-model-again-"));
    try {
      for (const [name, options] of VARIANTS) {
        await writeTinyModel(join(second, name), options, TOKENIZER_DIR);
        const files = await listFiles(modelDir(name));
        expect(await listFiles(join(second, name))).toEqual(files);
        for (const file of files) {
          const a = await readFile(join(modelDir(name), file));
          const b = await readFile(join(second, name, file));
          expect(a.equals(b), `${name}/${file}`).toBe(true);
        }
      }
    } finally {
      await rm(second, { recursive: true, force: true });
    }
  });

  it("differ between variants that differ only in size", async () => {
    const small = await stat(join(modelDir("sd1"), "unet", "model.onnx"));
    const bench = await stat(join(modelDir("bench"), "unet", "model.onnx"));
    expect(bench.size).toBeGreaterThan(10 * small.size);
  });
});

describe("tiny model configs", () => {
  const readJson = async (variant: string, file: string): Promise<Record<string, unknown>> =>
    JSON.parse(await readFile(join(modelDir(variant), file), "utf8")) as Record<string, unknown>;

  /** The pad token as HF writes it: a string or an AddedToken object. */
  const padOf = (config: Record<string, unknown>): unknown => {
    const pad = config.pad_token;
    return typeof pad === "object" && pad !== null ? (pad as { content?: unknown }).content : pad;
  };

  it("pad with <|endoftext|> for CLIP-L families and with ! for OpenCLIP families", async () => {
    const cases: [string, string, string][] = [
      ["sd1", "tokenizer", "<|endoftext|>"],
      ["lcm", "tokenizer", "<|endoftext|>"],
      ["sd2", "tokenizer", "!"],
      ["sd2-v", "tokenizer", "!"],
      ["turbo", "tokenizer", "!"],
      ["sdxl", "tokenizer", "<|endoftext|>"],
      ["sdxl", "tokenizer_2", "!"],
    ];
    for (const [variant, folder, pad] of cases) {
      expect(padOf(await readJson(variant, `${folder}/tokenizer_config.json`)), variant).toBe(pad);
      expect(padOf(await readJson(variant, `${folder}/special_tokens_map.json`)), variant).toBe(pad);
    }
  });

  it("name each family's scheduler and prediction type", async () => {
    const cases: [string, string, string | undefined, string | undefined][] = [
      ["sd1", "PNDMScheduler", undefined, undefined],
      ["sd2", "PNDMScheduler", "epsilon", undefined],
      ["sd2-v", "DDIMScheduler", "v_prediction", undefined],
      ["turbo", "EulerDiscreteScheduler", "epsilon", "trailing"],
      ["lcm", "LCMScheduler", "epsilon", "leading"],
    ];
    for (const [variant, className, prediction, spacing] of cases) {
      const config = await readJson(variant, "scheduler/scheduler_config.json");
      expect(config._class_name, variant).toBe(className);
      expect(config.prediction_type, variant).toBe(prediction);
      expect(config.timestep_spacing, variant).toBe(spacing);
      expect(config.beta_schedule, variant).toBe("scaled_linear");
    }
  });

  it("record the VAE scaling factor and LCM's time_cond_proj_dim", async () => {
    expect((await readJson("sd1", "vae_decoder/config.json")).scaling_factor).toBe(0.18215);
    expect((await readJson("lcm", "unet/config.json")).time_cond_proj_dim).toBe(256);
    expect((await readJson("sd1", "unet/config.json")).time_cond_proj_dim).toBeNull();
  });
});

describe("tiny model options", () => {
  it("reject a size the graphs cannot be built with, naming the field", () => {
    expect(() => resolveTinyModelOptions({ channels: 0 })).toThrow(/channels/);
    let caught: unknown;
    try {
      resolveTinyModelOptions({ hidden: 2.5 });
    } catch (err) {
      caught = err;
    }
    expect(isEaselError(caught, "invalid_argument")).toBe(true);
    expect(String((caught as Error).message)).toMatch(/hidden/);
  });

  it("fill per-family defaults", () => {
    expect(resolveTinyModelOptions({}).hidden).toBe(32);
    expect(resolveTinyModelOptions({ family: "sd2" }).hidden).toBe(48);
    expect(resolveTinyModelOptions({ family: "turbo" }).timestep).toBe("int64[1]");
  });

  it("convert float32 to float16 bits with round-to-nearest-even and back", () => {
    expect(float32ToFloat16(1)).toBe(0x3c00);
    expect(float32ToFloat16(-2)).toBe(0xc000);
    expect(float32ToFloat16(65504)).toBe(0x7bff);
    expect(float32ToFloat16(1e6)).toBe(0x7c00);
    expect(float32ToFloat16(2 ** -24)).toBe(0x0001);
    expect(float32ToFloat16(1e-9)).toBe(0);
    // 1 + 2^-11 is halfway between 1 and the next half; ties go to the even mantissa (1).
    expect(float32ToFloat16(1 + 2 ** -11)).toBe(0x3c00);
    expect(float32ToFloat16(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(Number.isNaN(float16ToFloat32(float32ToFloat16(Number.NaN)))).toBe(true);
    for (const v of [0.5, -0.333, 999, 6.1e-5, 3e-7]) {
      expect(Math.abs(float16ToFloat32(float32ToFloat16(v)) - v)).toBeLessThanOrEqual(
        Math.abs(v) * 2 ** -11 + 2 ** -25,
      );
    }
  });
});
