import sharp from "sharp";
import type { RgbImage } from "./png.ts";

/**
 * The denoising as an animated GIF ("how it was made"): the latent previews the worker sent while rendering,
 * in order, scaled up to a viewable size with nearest-neighbour (the previews are latent-sized, 1/8 of the
 * image, and blurring them would hide what they are), the last frame held longer.
 */

export interface AnimationOptions {
  /** Milliseconds per frame (default 250); the last frame stays four times as long. */
  frameMs?: number;
  /** Long side of the output in pixels (default 256). */
  side?: number;
}

/** Encodes same-sized RGB frames as a looping GIF; throws on no frames or mixed sizes. */
export async function encodeAnimation(
  frames: readonly RgbImage[],
  options: AnimationOptions = {},
): Promise<Buffer> {
  const first = frames[0];
  if (!first) throw new Error("an animation needs at least one frame");
  const { width, height } = first;
  if (frames.some((f) => f.width !== width || f.height !== height)) {
    throw new Error("every frame of an animation must have the same size");
  }
  const side = options.side ?? 256;
  const frameMs = options.frameMs ?? 250;
  const scale = Math.max(1, Math.floor(side / Math.max(width, height)));
  const stacked = Buffer.concat(frames.map((f) => f.data));
  const delay = frames.map((_, i) => (i === frames.length - 1 ? frameMs * 4 : frameMs));
  return sharp(stacked, { raw: { width, height: height * frames.length, channels: 3, pageHeight: height } })
    .resize({ width: width * scale, height: height * scale * frames.length, kernel: "nearest" })
    .gif({ delay, loop: 0 })
    .toBuffer();
}
