import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LdmModel } from "../src/backends/ldm/ldm-model.ts";
import { readModelFolder, resolveModelDir } from "../src/backends/ldm/model-folder.ts";
import { SessionFactory } from "../src/backends/ldm/onnx-session.ts";
import {
  type GenerateParams,
  type GenerateResult,
  generate,
  type RgbPixels,
} from "../src/backends/ldm/pipeline.ts";
import {
  TINY_MODEL_VARIANTS,
  type TinyModelVariantName,
  writeTinyModel,
} from "../src/backends/ldm/tiny-model.ts";
import { CLIP_BPE_DIR } from "../src/backends/ldm/tokenizer/clip-tokenizer.ts";
import { isEaselError } from "../src/core/errors.ts";
import { failure } from "./support.ts";

const TOKENIZER = CLIP_BPE_DIR;
const modelsDir = mkdtempSync(join(tmpdir(), "easel-models-"));
const factory = new SessionFactory({ device: "cpu" });
const loaded = new Map<string, LdmModel>();

async function model(variant: TinyModelVariantName): Promise<LdmModel> {
  const existing = loaded.get(variant);
  if (existing) return existing;
  await writeTinyModel(join(modelsDir, variant), TINY_MODEL_VARIANTS[variant], TOKENIZER);
  const m = await LdmModel.load(readModelFolder(resolveModelDir(modelsDir, variant)), factory);
  loaded.set(variant, m);
  return m;
}

const BASE: GenerateParams = {
  prompt: "a lighthouse in a storm",
  seed: 42,
  steps: 4,
  guidance: 7.5,
  scheduler: "euler_ancestral",
  width: 64,
  height: 64,
  count: 1,
};

function pixels(result: GenerateResult, index = 0): Uint8Array {
  const image = result.images[index];
  if (!image) throw new Error(`no image ${index}`);
  return image.pixels.data;
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

beforeAll(async () => {
  await model("sd1");
});

afterAll(async () => {
  for (const m of loaded.values()) await m.release();
  rmSync(modelsDir, { recursive: true, force: true });
});

describe("txt2img on a tiny SD 1.x model", () => {
  it("gives identical pixels for the same settings and seed, different pixels for another seed", async () => {
    const m = await model("sd1");
    const a = await generate(m, BASE);
    const b = await generate(m, BASE);
    const c = await generate(m, { ...BASE, seed: 43 });
    expect(a.images[0]?.pixels.width).toBe(64);
    expect(pixels(a).length).toBe(64 * 64 * 3);
    expect(same(pixels(a), pixels(b))).toBe(true);
    expect(same(pixels(a), pixels(c))).toBe(false);
  });

  it.each([
    ["prompt", { prompt: "a cat on a sofa" }],
    ["negative prompt", { negativePrompt: "blurry" }],
    ["guidance", { guidance: 3 }],
    ["steps", { steps: 6 }],
    ["scheduler", { scheduler: "dpmpp_2m_karras" }],
  ] as const)("changes the image when the %s changes", async (_what, change) => {
    const m = await model("sd1");
    const a = await generate(m, BASE);
    const b = await generate(m, { ...BASE, ...change });
    expect(same(pixels(a), pixels(b))).toBe(false);
  });

  it("makes image i of a batch equal to a single image with seed+i", async () => {
    const m = await model("sd1");
    const batch = await generate(m, { ...BASE, count: 3 });
    expect(batch.images.map((i) => i.seed)).toEqual([42, 43, 44]);
    const alone = await generate(m, { ...BASE, seed: 44 });
    expect(same(pixels(batch, 2), pixels(alone))).toBe(true);
  });

  it("runs every scheduler", async () => {
    const m = await model("sd1");
    for (const scheduler of [
      "ddim",
      "pndm",
      "euler",
      "euler_ancestral",
      "dpmpp_2m",
      "dpmpp_2m_karras",
      "euler_trailing",
    ]) {
      const result = await generate(m, { ...BASE, scheduler });
      expect(result.scheduler).toBe(scheduler);
      expect(pixels(result).length).toBe(64 * 64 * 3);
    }
  });

  it("renders non-square sizes with the right shape", async () => {
    const result = await generate(await model("sd1"), { ...BASE, width: 96, height: 64 });
    expect([result.width, result.height]).toEqual([96, 64]);
    expect(pixels(result).length).toBe(96 * 64 * 3);
  });

  it("reports each step and a preview every k steps", async () => {
    const steps: number[] = [];
    const previews: RgbPixels[] = [];
    await generate(
      await model("sd1"),
      { ...BASE, steps: 6, previewEvery: 2 },
      {
        onProgress: (p) => {
          steps.push(p.step);
          expect(p.total).toBe(6);
          if (p.previews) previews.push(...p.previews);
        },
      },
    );
    expect(steps).toEqual([1, 2, 3, 4, 5, 6]);
    expect(previews).toHaveLength(2);
    expect([previews[0]?.width, previews[0]?.height, previews[0]?.data.length]).toEqual([8, 8, 8 * 8 * 3]);
  });

  it("counts PNDM's progress in the steps asked for, though PLMS makes one more UNet call", async () => {
    const m = await model("sd1");
    const reports: { step: number; total: number; previews: number }[] = [];
    const params = { ...BASE, scheduler: "pndm", steps: 6, previewEvery: 2 } as const;
    const result = await generate(m, params, {
      onProgress: (p) => reports.push({ step: p.step, total: p.total, previews: p.previews?.length ?? 0 }),
    });
    expect(reports.map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(new Set(reports.map((r) => r.total))).toEqual(new Set([6]));
    expect(reports.filter((r) => r.previews > 0).map((r) => r.step)).toEqual([2, 4]);
    expect([result.steps, result.denoisingSteps, result.unetCalls]).toEqual([6, 6, 7]);
    // Progress hooks only observe: the same call without them gives the same pixels.
    expect(same(pixels(result), pixels(await generate(m, params)))).toBe(true);

    const init = {
      image: { width: 64, height: 64, data: new Uint8Array(64 * 64 * 3).fill(90) },
      strength: 0.6,
    };
    const seen: number[] = [];
    const img2img = await generate(
      await model("sd1-optimum"),
      { ...params, steps: 10, init },
      { onProgress: (p) => seen.push(p.total === 6 ? p.step : -p.total) },
    );
    expect(seen).toEqual([1, 2, 3, 4, 5, 6]);
    expect([img2img.denoisingSteps, img2img.unetCalls]).toEqual([6, 7]);
  });

  it("makes one UNet call per step for the other schedulers", async () => {
    const result = await generate(await model("sd1"), { ...BASE, scheduler: "ddim", steps: 5 });
    expect([result.denoisingSteps, result.unetCalls]).toEqual([5, 5]);
  });

  it("stops between UNet calls when cancelled", async () => {
    const controller = new AbortController();
    let seen = 0;
    const err = await failure(
      generate(
        await model("sd1"),
        { ...BASE, steps: 10 },
        {
          signal: controller.signal,
          onProgress: (p) => {
            seen = p.step;
            if (p.step === 2) controller.abort();
          },
        },
      ),
    );
    expect(err.code).toBe("cancelled");
    expect(seen).toBe(2);
  });

  it("measures the time spent inside onnxruntime", async () => {
    const { timings } = await generate(await model("sd1"), BASE);
    expect(timings.sessionMs).toBeGreaterThan(0);
    expect(timings.sessionMs).toBeLessThanOrEqual(timings.totalMs);
    expect(timings.unetMs + timings.textEncoderMs + timings.vaeMs).toBeCloseTo(timings.sessionMs, 5);
  });

  it("reports how many prompt tokens were cut", async () => {
    const result = await generate(await model("sd1"), { ...BASE, prompt: "storm ".repeat(100) });
    expect(result.tokens.truncated).toBe(25);
    expect(result.notes.join(" ")).toContain("25 tokens");
  });
});

describe("img2img", () => {
  const init = (width: number, height: number): RgbPixels => {
    const data = new Uint8Array(width * height * 3);
    for (let i = 0; i < data.length; i++) data[i] = (i * 37) % 256;
    return { width, height, data };
  };

  it("runs steps × strength UNet steps from the start image, deterministically", async () => {
    const m = await model("sd1-optimum");
    const params = { ...BASE, steps: 10, init: { image: init(64, 64), strength: 0.6 } };
    const seen: number[] = [];
    const a = await generate(m, params, { onProgress: (p) => seen.push(p.step) });
    const b = await generate(m, params);
    const txt = await generate(m, { ...BASE, steps: 10 });
    expect(a.denoisingSteps).toBe(6);
    expect(seen).toEqual([1, 2, 3, 4, 5, 6]);
    expect(same(pixels(a), pixels(b))).toBe(true);
    expect(same(pixels(a), pixels(txt))).toBe(false);
    const weaker = await generate(m, { ...params, init: { image: init(64, 64), strength: 0.3 } });
    expect(same(pixels(a), pixels(weaker))).toBe(false);
  });

  it("refuses a start image of the wrong size and a strength that runs no step", async () => {
    const m = await model("sd1");
    const wrong = await failure(generate(m, { ...BASE, init: { image: init(32, 32), strength: 0.5 } }));
    expect(wrong.message).toContain("64×64");
    const none = await failure(
      generate(m, { ...BASE, steps: 4, init: { image: init(64, 64), strength: 0.1 } }),
    );
    expect(none.message).toContain("strength");
  });
});

describe("export variants", () => {
  it.each([
    "sd1-float-timestep",
    "sd1-legacy",
    "sd1-optimum",
    "sd1-fp16",
    "sd1-optimum-fp16",
    "sd2",
    "sd2-v",
    "turbo",
    "lcm",
  ] as const)("generates with %s", async (variant) => {
    const m = await model(variant);
    const result = await generate(m, { ...BASE, scheduler: m.defaults.scheduler, count: 2 });
    expect(result.images).toHaveLength(2);
    expect(same(pixels(result, 0), pixels(result, 1))).toBe(false);
    const again = await generate(m, { ...BASE, scheduler: m.defaults.scheduler, count: 2 });
    expect(same(pixels(result, 1), pixels(again, 1))).toBe(true);
  });

  it("recognises each family and its defaults from the files", async () => {
    expect((await model("sd1")).io.family).toBe("sd1");
    expect((await model("sd2")).io.family).toBe("sd2");
    expect((await model("sd2-v")).io.family).toBe("sd2-v");
    const turbo = await model("turbo");
    expect(turbo.io.family).toBe("turbo");
    expect(turbo.defaults).toEqual({ scheduler: "euler_trailing", steps: 1, guidance: 0 });
    const lcm = await model("lcm");
    expect(lcm.io.family).toBe("lcm");
    expect(lcm.io.timestepCondDim).toBe(256);
    expect((await model("sd1-fp16")).io.floatType).toBe("float16");
    expect((await model("sd1-optimum")).io.timestep).toEqual({ type: "float32", shape: "scalar" });
    expect((await model("sd1-legacy")).io.timestep).toEqual({ type: "float32", shape: "batch" });
  });

  it("changes LCM's image with the guidance it embeds", async () => {
    const m = await model("lcm");
    const a = await generate(m, { ...BASE, scheduler: "lcm", guidance: 8 });
    const b = await generate(m, { ...BASE, scheduler: "lcm", guidance: 2 });
    expect(same(pixels(a), pixels(b))).toBe(false);
  });
});

describe("bad input is refused with the valid range", () => {
  it.each([
    [{ steps: Number.NaN }, "steps"],
    [{ steps: 1_000_000 }, "1 to 150"],
    [{ steps: 0 }, "steps"],
    [{ width: 99999 }, "8 to 2048"],
    [{ height: -8 }, "height"],
    [{ seed: -1 }, "seed"],
    [{ seed: 2 ** 64 }, "seed"],
    [{ seed: 1.5 }, "seed"],
    [{ guidance: Number.NaN }, "guidance"],
    [{ count: 1000 }, "count"],
    [{ scheduler: "../../etc/passwd" }, "valid names"],
  ] as const)("%j", async (change, message) => {
    const err = await failure(generate(await model("sd1"), { ...BASE, ...change }));
    expect(isEaselError(err)).toBe(true);
    expect(err.message).toContain(message);
  });

  it("rounds sizes that are not multiples of 8 down and says so", async () => {
    const result = await generate(await model("sd1"), { ...BASE, width: 70 });
    expect(result.width).toBe(64);
    expect(result.notes.join(" ")).toContain("width 70 rounded down to 64");
  });
});

describe("model folders", () => {
  it.each(["../sd1", "/etc", "sd1/../../x", "a\0b", "..", "", "nope"])(
    "refuses the model name %j",
    (name) => {
      let error: unknown;
      try {
        resolveModelDir(modelsDir, name);
      } catch (err) {
        error = err;
      }
      expect(isEaselError(error, "invalid_argument")).toBe(true);
      expect((error as Error).message).toContain("sd1");
    },
  );

  it("names a missing part of a model folder", async () => {
    const dir = join(modelsDir, "broken-missing");
    await writeTinyModel(dir, TINY_MODEL_VARIANTS.sd1, TOKENIZER);
    rmSync(join(dir, "vae_decoder", "model.onnx"));
    expect(() => readModelFolder(dir)).toThrow(/vae_decoder[/\\]model\.onnx/);
  });

  it("names a corrupt ONNX file", async () => {
    const dir = join(modelsDir, "broken-corrupt");
    await writeTinyModel(dir, TINY_MODEL_VARIANTS.sd1, TOKENIZER);
    writeFileSync(join(dir, "unet", "model.onnx"), "not a model");
    const err = await failure(LdmModel.load(readModelFolder(dir), factory));
    expect(err.code).toBe("model_file");
    expect(err.message).toMatch(/unet[/\\]model\.onnx/);
  });
});

describe("execution providers", () => {
  it("fails EASEL_DEVICE=cuda without the CUDA provider, explaining npm run setup:cuda", async () => {
    const cuda = new SessionFactory({ device: "cuda" });
    const err = await failure(cuda.create(join(modelsDir, "sd1", "unet", "model.onnx")));
    expect(err.code).toBe("device_unavailable");
    expect(err.message).toContain("npm run setup:cuda");
  });

  it("falls back to the CPU under auto with one log line", async () => {
    const lines: string[] = [];
    const auto = new SessionFactory({ device: "auto", log: (line) => lines.push(line) });
    const m = await LdmModel.load(readModelFolder(join(modelsDir, "sd1")), auto);
    expect(m.provider).toBe("cpu");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("CPU");
    await m.release();
  });
});
