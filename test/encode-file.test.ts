import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { encodeImageFile, imageFileFormat } from "../src/render/encode-file.ts";
import { type RgbImage, readPngText } from "../src/render/png.ts";
import { readUserComment } from "./cli-harness.ts";

/** Image files in the format their name asks for, with A1111's settings text inside. */

/** A 16×8 gradient, so that a lossy encoder has something to keep. */
function gradient(): RgbImage {
  const width = 16;
  const height = 8;
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set([(i * 7) % 256, (i * 13) % 256, (i * 29) % 256], i * 3);
  return { width, height, data };
}

const TEXT =
  "a café in Kyōto, 猫 🐈\nNegative prompt: blur\nSteps: 2, Sampler: Euler a, CFG scale: 7, Seed: 1";

describe("imageFileFormat", () => {
  it.each([
    ["x.png", "png"],
    ["x.PNG", "png"],
    ["out/x.jpg", "jpeg"],
    ["x.Jpeg", "jpeg"],
    ["x.webp", "webp"],
    ["x.gif", undefined],
    ["x", undefined],
    ["x.png/y", undefined],
  ])("%s → %s", (name, format) => {
    expect(imageFileFormat(name)).toBe(format);
  });
});

describe("encodeImageFile", () => {
  it("writes PNG with the text as its parameters chunk, pixels exact", async () => {
    const image = gradient();
    const png = await encodeImageFile(image, "png", TEXT);
    expect(readPngText(png).parameters).toBe(TEXT);
    const { data } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect(new Uint8Array(data)).toEqual(image.data);
  });

  it.each(["jpeg", "webp"] as const)(
    "writes %s with the text as a UNICODE EXIF UserComment, emoji and CJK intact",
    async (format) => {
      const file = await encodeImageFile(gradient(), format, TEXT);
      expect(await sharp(file).metadata()).toMatchObject({ format, width: 16, height: 8 });
      expect(await readUserComment(file)).toEqual({ charset: "UNICODE", text: TEXT });
    },
  );

  it("writes no EXIF when there is no text", async () => {
    const file = await encodeImageFile(gradient(), "jpeg");
    expect(await readUserComment(file)).toBeUndefined();
  });

  it.each(["jpeg", "webp"] as const)(
    "keeps a 31,000-character text in %s and refuses a longer one",
    async (format) => {
      // 31,000 UTF-16 characters is a 62 kB block, under the 63 kB bound; 33,000 is past EXIF's 64 kB.
      const fits = "x".repeat(31_000);
      const comment = await readUserComment(await encodeImageFile(gradient(), format, fits));
      expect(comment?.text.length).toBe(fits.length);
      expect(comment?.text === fits).toBe(true);
      await expect(encodeImageFile(gradient(), format, "x".repeat(33_000))).rejects.toThrow(
        /JPEG and WebP files hold at most 64512: write a \.png/,
      );
    },
  );
});
