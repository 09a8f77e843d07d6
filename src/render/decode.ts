import sharp from "sharp";
import { EaselError } from "../core/errors.ts";
import type { RgbImage } from "./png.ts";

/** Largest image easel decodes (pixels): a guard against decompression bombs in user uploads. */
const MAX_INPUT_PIXELS = 64 * 1024 * 1024;

/**
 * Decodes any image sharp reads (PNG, JPEG, WebP, …) to RGB, flattening transparency onto white and, when a
 * size is given, scaling to cover it and cropping the centre (the framing img2img and variations expect).
 */
export async function decodeImage(
  input: Uint8Array,
  name: string,
  size?: { width: number; height: number },
): Promise<RgbImage> {
  try {
    let pipeline = sharp(input, { limitInputPixels: MAX_INPUT_PIXELS })
      .rotate()
      .flatten({ background: "#ffffff" });
    if (size) pipeline = pipeline.resize(size.width, size.height, { fit: "cover", position: "centre" });
    const { data, info } = await pipeline.removeAlpha().raw().toBuffer({ resolveWithObject: true });
    return {
      width: info.width,
      height: info.height,
      data: new Uint8Array(data.buffer, data.byteOffset, data.length),
    };
  } catch (cause) {
    throw new EaselError(
      "invalid_argument",
      `${name} is not an image easel can read (${(cause as Error).message})`,
      {
        cause,
      },
    );
  }
}
