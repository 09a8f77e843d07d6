import type { BackendImage, BackendResult, EncodedImage } from "../core/backend.ts";
import {
  formatA1111GridParameters,
  formatA1111Parameters,
  type ImageParameters,
} from "../core/parameters.ts";
import type { GenerationRequest } from "../core/request.ts";
import { decodeImage } from "./decode.ts";
import { makeGrid } from "./grid.ts";
import { encodePng, type RgbImage } from "./png.ts";

/**
 * The engine's ImageEncoder: every image becomes a PNG carrying its own settings (A1111 `parameters`), and a job
 * with several images also gets a grid (variant 0), the picture the buttons V1–V4 / U1–U4 refer to, whose
 * `parameters` carry every image's settings (see `formatA1111GridParameters`).
 */

async function toRgb(image: BackendImage, name: string): Promise<RgbImage> {
  if (image.format === "rgb") return image;
  return decodeImage(image.data, name);
}

/** Encodes a job's images as PNGs with their settings, plus a grid (variant 0) when there are several. */
export async function encodeJobImages(
  request: GenerationRequest,
  result: BackendResult,
): Promise<EncodedImage[]> {
  const out: EncodedImage[] = [];
  const pixels: RgbImage[] = [];
  const settings: ImageParameters[] = [];
  for (const [i, image] of result.images.entries()) {
    const rgb = await toRgb(image, `image ${i + 1} from the ${request.backend} backend`);
    pixels.push(rgb);
    const parameters: ImageParameters = {
      prompt: request.prompt,
      ...(request.negativePrompt ? { negativePrompt: request.negativePrompt } : {}),
      steps: result.used.steps ?? request.steps,
      sampler: result.used.sampler ?? request.sampler,
      cfgScale: result.used.guidance ?? request.guidance,
      seed: image.seed ?? "n/a",
      width: rgb.width,
      height: rgb.height,
      model: result.used.model ?? request.model,
      ...(request.init ? { denoisingStrength: request.init.strength } : {}),
    };
    settings.push(parameters);
    // A provider's PNG is re-encoded so that it carries the settings like every other image.
    const png = await encodePng(rgb, { parameters: formatA1111Parameters(parameters) });
    out.push({
      variant: i + 1,
      png,
      width: rgb.width,
      height: rgb.height,
      seed: image.seed,
      ...(image.flagged ? { flagged: true } : {}),
    });
  }
  if (
    pixels.length > 1 &&
    pixels.every((p) => p.width === pixels[0]?.width && p.height === pixels[0]?.height)
  ) {
    const grid = makeGrid(pixels);
    out.unshift({
      variant: 0,
      png: await encodePng(grid, { parameters: formatA1111GridParameters(settings) }),
      width: grid.width,
      height: grid.height,
      seed: null,
    });
  }
  return out;
}
