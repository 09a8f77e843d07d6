import { EaselError } from "../core/errors.ts";
import type { RgbImage } from "./png.ts";

/**
 * Tiles same-sized images into one grid, row by row: 2 images side by side, 3–4 in a 2×2 grid (as Midjourney
 * shows variants, so "V2" means the top-right one). Plain row copies: no resampling is needed.
 */
export function makeGrid(images: readonly RgbImage[], columns = Math.min(images.length, 2)): RgbImage {
  const first = images[0];
  if (first === undefined) throw new EaselError("invalid_argument", "a grid needs at least one image");
  const { width, height } = first;
  for (const image of images) {
    if (image.width !== width || image.height !== height) {
      throw new EaselError("invalid_argument", "grid images must all have the same size");
    }
  }
  const rows = Math.ceil(images.length / columns);
  const gridWidth = width * columns;
  const data = new Uint8Array(gridWidth * height * rows * 3);
  const rowBytes = width * 3;
  images.forEach((image, index) => {
    const x0 = (index % columns) * width;
    const y0 = Math.floor(index / columns) * height;
    for (let y = 0; y < height; y++) {
      const src = y * rowBytes;
      data.set(image.data.subarray(src, src + rowBytes), ((y0 + y) * gridWidth + x0) * 3);
    }
  });
  return { width: gridWidth, height: height * rows, data };
}
