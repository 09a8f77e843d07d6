import type { BackendImage, ImageRequest } from "../core/backend.ts";
import { EaselError } from "../core/errors.ts";
import { decodeImage } from "./decode.ts";
import { encodePng } from "./png.ts";

/**
 * Converts a stored image into what a backend asked for: RGB at a size (img2img start images) or a PNG,
 * optionally square and under a byte limit (DALL·E 2 variations take a square PNG under 4 MB).
 */
export async function prepareImage(bytes: Uint8Array, name: string, as: ImageRequest): Promise<BackendImage> {
  if (as.format === "rgb") {
    const rgb = await decodeImage(bytes, name, { width: as.width, height: as.height });
    return { format: "rgb", ...rgb, seed: null };
  }
  let side = as.square;
  for (let attempt = 0; attempt < 4; attempt++) {
    const rgb = await decodeImage(
      bytes,
      name,
      side === undefined ? undefined : { width: side, height: side },
    );
    const png = await encodePng(rgb);
    if (as.maxBytes === undefined || png.length <= as.maxBytes) {
      return { format: "png", data: png, width: rgb.width, height: rgb.height, seed: null };
    }
    // Too big: halve the pixel count and try again.
    side = Math.floor((side ?? Math.min(rgb.width, rgb.height)) / Math.SQRT2);
  }
  throw new EaselError(
    "invalid_argument",
    `${name} cannot be made smaller than ${as.maxBytes} bytes as a PNG`,
  );
}
