import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { formatA1111Parameters } from "../src/core/parameters.ts";
import { makeGrid } from "../src/render/grid.ts";
import { encodePng, type RgbImage, readPngText } from "../src/render/png.ts";

function solid(width: number, height: number, rgb: [number, number, number]): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(rgb, i * 3);
  return { width, height, data };
}

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
