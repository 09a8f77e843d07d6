import sharp from "sharp";
import { describe, expect, it } from "vitest";
import type { BackendResult } from "../src/core/backend.ts";
import {
  escapeControlCharacters,
  formatA1111GridParameters,
  formatA1111Parameters,
  type ImageParameters,
} from "../src/core/parameters.ts";
import type { GenerationRequest } from "../src/core/request.ts";
import { encodeJobImages } from "../src/render/encode-job.ts";
import { makeGrid } from "../src/render/grid.ts";
import { encodePng, type RgbImage, readPngText } from "../src/render/png.ts";

function solid(width: number, height: number, rgb: [number, number, number]): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(rgb, i * 3);
  return { width, height, data };
}

/** The chunks of a PNG in file order: type and data. */
function chunksOf(png: Uint8Array): { type: string; data: Buffer }[] {
  const buf = Buffer.from(png);
  const out: { type: string; data: Buffer }[] = [];
  for (let offset = 8; offset + 12 <= buf.length; ) {
    const length = buf.readUInt32BE(offset);
    out.push({
      type: buf.toString("latin1", offset + 4, offset + 8),
      data: buf.subarray(offset + 8, offset + 8 + length),
    });
    offset += 12 + length;
  }
  return out;
}

/**
 * AUTOMATIC1111's `parse_generation_parameters` (modules/infotext_utils.py), ported: the last line is the
 * settings line when it holds at least 3 "Key: value" pairs; quoted values are JSON strings.
 */
function parseA1111(text: string): {
  prompt: string;
  negativePrompt: string;
  settings: Record<string, string>;
} {
  const pair = /\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)/g;
  const lines = text.trim().split("\n");
  let last = lines.pop() ?? "";
  if ([...last.matchAll(pair)].length < 3) {
    lines.push(last);
    last = "";
  }
  let prompt = "";
  let negativePrompt = "";
  let inNegative = false;
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    if (line.startsWith("Negative prompt:")) {
      inNegative = true;
      negativePrompt += line.slice(16).trim();
    } else if (inNegative) negativePrompt += `\n${line}`;
    else prompt += i === 0 ? line : `\n${line}`;
  }
  const settings: Record<string, string> = {};
  for (const [, key = "", value = ""] of last.matchAll(pair)) {
    settings[key.trim()] = value.startsWith('"') && value.endsWith('"') ? JSON.parse(value) : value;
  }
  return { prompt, negativePrompt, settings };
}

const SETTINGS: ImageParameters = {
  prompt: "a lighthouse in a storm",
  negativePrompt: "blurry",
  steps: 20,
  sampler: "euler_ancestral",
  cfgScale: 7.5,
  seed: 42,
  width: 4,
  height: 2,
  model: "sd15",
};

describe("PNG with a parameters chunk", () => {
  it("keeps the pixels and carries Latin-1 text in tEXt", async () => {
    const image = solid(16, 8, [200, 10, 30]);
    const png = await encodePng(image, { parameters: "a café at night\nSteps: 20" });
    expect(readPngText(png)).toEqual({ parameters: "a café at night\nSteps: 20" });
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([16, 8, 3]);
    expect(Buffer.from(data).equals(Buffer.from(image.data))).toBe(true);
    expect(png.includes(Buffer.from("tEXtparameters"))).toBe(true);
  });

  it("writes emoji and CJK prompts as UTF-8 iTXt that sharp still decodes", async () => {
    const text = "一只猫 🐱 in the rain";
    const png = await encodePng(solid(8, 8, [0, 0, 0]), { parameters: text });
    expect(readPngText(png).parameters).toBe(text);
    expect(png.includes(Buffer.from("iTXtparameters"))).toBe(true);
    expect((await sharp(png).metadata()).width).toBe(8);
  });

  it("puts the text chunk right after IHDR, before the image data, so readers that stop at IDAT see it", async () => {
    const png = await encodePng(solid(32, 32, [1, 2, 3]), { parameters: "p\nSteps: 1" });
    const types = chunksOf(png).map((c) => c.type);
    expect(types[0]).toBe("IHDR");
    expect(types[1]).toBe("tEXt");
    expect(types.indexOf("tEXt")).toBeLessThan(types.indexOf("IDAT"));
    expect(types.filter((t) => t === "tEXt")).toHaveLength(1);
    expect(types.at(-1)).toBe("IEND");
    // sharp (libspng) still decodes it, so the order is valid PNG.
    expect((await sharp(png).metadata()).width).toBe(32);
  });

  it("escapes control characters of a hostile prompt: no raw control byte in the file's text", async () => {
    const hostile = "a\x00b\x1b[31mred\x07 bell\x7f\x85\x9b\u2028 line\r\nkept\ttab\x01";
    for (const suffix of ["", " 🐱"]) {
      const text = formatA1111Parameters({ ...SETTINGS, prompt: hostile + suffix, model: "m\x1b\r\nx" });
      const png = await encodePng(solid(8, 8, [0, 0, 0]), { parameters: text });
      const chunk = chunksOf(png).find((c) => c.type === "tEXt" || c.type === "iTXt");
      if (!chunk) throw new Error("no text chunk");
      expect(chunk.type).toBe(suffix ? "iTXt" : "tEXt");
      // After the keyword's header (NUL separators), only "\n" may be below 0x20, and no DEL or C1 (as UTF-8).
      const value = chunk.data.subarray(chunk.type === "tEXt" ? 11 : 15);
      const bad = [...value].filter((b) => (b < 0x20 && b !== 0x0a) || b === 0x7f);
      expect(bad).toEqual([]);
      expect(value.toString("utf8")).not.toMatch(/[\u0080-\u009f\u2028]/);
      const stored = readPngText(png).parameters ?? "";
      expect(stored.split("\n")[0]).toBe(
        "a\\u0000b\\u001b[31mred\\u0007 bell\\u007f\\u0085\\u009b\\u2028 line",
      );
      expect(stored.split("\n")[1]).toBe(`kept tab\\u0001${suffix}`);
      // The prompt's own line break stays; the model name's does not break the settings line.
      expect(parseA1111(stored).settings).toMatchObject({ Seed: "42", Model: "m\\u001b x" });
    }
  });

  it("escapes control characters even when a caller passes raw text", async () => {
    const png = await encodePng(solid(8, 8, [0, 0, 0]), { parameters: "nul\x00here\x1b" });
    expect(readPngText(png).parameters).toBe("nul\\u0000here\\u001b");
    expect(escapeControlCharacters("line\nstays\r\nand\rthese")).toBe("line\nstays\nand\nthese");
  });

  it("keeps every byte of noisy, graded and odd-sized images (the Up filter wraps modulo 256)", async () => {
    let state = 7;
    const next = () => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state >>> 24;
    };
    const images: RgbImage[] = [
      { width: 1, height: 1, data: Uint8Array.from([255, 0, 128]) },
      { width: 7, height: 3, data: Uint8Array.from({ length: 63 }, next) },
      { width: 64, height: 48, data: Uint8Array.from({ length: 64 * 48 * 3 }, (_, i) => (i * 37) % 256) },
      { width: 33, height: 65, data: Uint8Array.from({ length: 33 * 65 * 3 }, next) },
    ];
    for (const image of images) {
      const png = await encodePng(image, { parameters: "x" });
      const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
      expect([info.width, info.height, info.channels]).toEqual([image.width, image.height, 3]);
      expect(Buffer.from(data).equals(Buffer.from(image.data))).toBe(true);
    }
  });

  it("compresses a smooth 512² render below half its raw size", async () => {
    const data = new Uint8Array(512 * 512 * 3);
    for (let y = 0; y < 512; y++)
      for (let x = 0; x < 512; x++) data.set([x >> 1, y >> 1, (x + y) >> 2], (y * 512 + x) * 3);
    const png = await encodePng({ width: 512, height: 512, data });
    expect(png.length).toBeLessThan(data.length / 2);
  });

  it("refuses pixel data of the wrong length", async () => {
    await expect(encodePng({ width: 4, height: 4, data: new Uint8Array(10) })).rejects.toThrow(/4×4×3/);
  });
});

describe("grid", () => {
  it("puts four variants in a 2×2 grid in reading order", () => {
    const colors: [number, number, number][] = [
      [255, 0, 0],
      [0, 255, 0],
      [0, 0, 255],
      [9, 9, 9],
    ];
    const grid = makeGrid(colors.map((c) => solid(4, 2, c)));
    expect([grid.width, grid.height]).toEqual([8, 4]);
    const pixel = (x: number, y: number) =>
      Array.from(grid.data.subarray((y * 8 + x) * 3, (y * 8 + x) * 3 + 3));
    expect(pixel(0, 0)).toEqual(colors[0]);
    expect(pixel(7, 1)).toEqual(colors[1]);
    expect(pixel(0, 3)).toEqual(colors[2]);
    expect(pixel(5, 2)).toEqual(colors[3]);
  });

  it("puts two variants side by side", () => {
    const grid = makeGrid([solid(4, 4, [1, 1, 1]), solid(4, 4, [2, 2, 2])]);
    expect([grid.width, grid.height]).toEqual([8, 4]);
  });

  it("refuses images of different sizes", () => {
    expect(() => makeGrid([solid(4, 4, [0, 0, 0]), solid(8, 4, [0, 0, 0])])).toThrow(/same size/);
  });

  it("gives the bot's grid PNG image 1's settings and every image's seed, and each tile its own", async () => {
    const request: GenerationRequest = {
      prompt: "a lighthouse in a storm",
      negativePrompt: "blurry",
      seed: 42,
      steps: 20,
      guidance: 7.5,
      sampler: "euler_ancestral",
      width: 4,
      height: 2,
      count: 4,
      backend: "ldm",
      model: "sd15",
      requester: { platform: "discord", workspaceId: "g", channelId: "c", userId: "u" },
    };
    const result: BackendResult = {
      images: [42, 43, 44, 45].map((seed, i) => ({ format: "rgb", ...solid(4, 2, [i, i, i]), seed })),
      notes: [],
      used: {},
      renderMs: 1,
    };
    const encoded = await encodeJobImages(request, result);
    expect(encoded.map((e) => e.variant)).toEqual([0, 1, 2, 3, 4]);
    const grid = parseA1111(readPngText(encoded[0]?.png ?? new Uint8Array()).parameters ?? "");
    expect(grid.prompt).toBe("a lighthouse in a storm");
    expect(grid.negativePrompt).toBe("blurry");
    expect(grid.settings).toMatchObject({
      Seed: "42",
      Size: "4x2",
      Steps: "20",
      "Grid seeds": "42, 43, 44, 45",
    });
    for (const [i, e] of encoded.slice(1).entries()) {
      const tile = parseA1111(readPngText(e.png).parameters ?? "");
      expect(tile.settings.Seed).toBe(String(42 + i));
      expect(tile.settings["Grid seeds"]).toBeUndefined();
    }
  });
});

describe("grid parameters text", () => {
  it("is image 1's A1111 text, its settings line naming each seed in grid order", () => {
    const images = [0, 1, 2].map((i) => ({ ...SETTINGS, seed: 7 + i }));
    const text = formatA1111GridParameters(images);
    expect(text.startsWith(`${formatA1111Parameters(images[0] as ImageParameters)}, `)).toBe(true);
    expect(text.split("\n")).toHaveLength(3);
    expect(parseA1111(text).settings["Grid seeds"]).toBe("7, 8, 9");
    expect(formatA1111GridParameters([SETTINGS])).toBe(formatA1111Parameters(SETTINGS));
  });

  it("adds the whole text of an image that differs in more than its seed, readable back", () => {
    const second = { ...SETTINGS, seed: 43, prompt: 'a "quoted", comma\nprompt', steps: 30 };
    const text = formatA1111GridParameters([SETTINGS, second, { ...SETTINGS, seed: 44 }]);
    const parsed = parseA1111(text);
    expect(parsed.prompt).toBe(SETTINGS.prompt);
    expect(parsed.settings.Steps).toBe("20");
    expect(parsed.settings["Grid seeds"]).toBe("42, 43, 44");
    expect(parsed.settings["Grid image 2"]).toBe(formatA1111Parameters(second));
    expect(parsed.settings["Grid image 3"]).toBeUndefined();
    expect(parseA1111(parsed.settings["Grid image 2"] ?? "").prompt).toBe(second.prompt);
  });
});

describe("A1111 parameters text", () => {
  it("formats prompt, negative prompt and settings as AUTOMATIC1111 does", () => {
    const text = formatA1111Parameters({
      prompt: "a lighthouse in a storm",
      negativePrompt: "blurry",
      steps: 20,
      sampler: "euler_ancestral",
      cfgScale: 7.5,
      seed: 42,
      width: 768,
      height: 512,
      model: "sd15",
    });
    expect(text).toBe(
      "a lighthouse in a storm\nNegative prompt: blurry\n" +
        "Steps: 20, Sampler: Euler a, CFG scale: 7.5, Seed: 42, Size: 768x512, Model: sd15",
    );
  });

  it("omits an empty negative prompt and records img2img strength", () => {
    const text = formatA1111Parameters({
      prompt: "p",
      steps: 4,
      sampler: "dpmpp_2m_karras",
      cfgScale: 1,
      seed: 7,
      width: 64,
      height: 64,
      model: "m",
      denoisingStrength: 0.6,
    });
    expect(text).toBe(
      "p\nSteps: 4, Sampler: DPM++ 2M Karras, CFG scale: 1, Seed: 7, Size: 64x64, Model: m, Denoising strength: 0.6",
    );
  });
});
