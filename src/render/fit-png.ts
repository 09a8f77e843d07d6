import sharp from "sharp";

/**
 * A PNG made to fit an upload limit: first re-encoded at the strongest compression (lossless, same pixels),
 * then scaled down by 1/√2 per try until it fits. The A1111 "parameters" text travels along
 * (keepMetadata), so the settings stay readable from the smaller file.
 */
export async function fitPng(png: Uint8Array, maxBytes: number): Promise<Buffer> {
  const input = Buffer.from(png);
  if (input.length <= maxBytes) return input;
  const meta = await sharp(input).metadata();
  let width = meta.width ?? 0;
  let best = await sharp(input)
    .keepMetadata()
    .png({ compressionLevel: 9, adaptiveFiltering: true })
    .toBuffer();
  for (let attempt = 0; best.length > maxBytes && attempt < 8 && width > 64; attempt++) {
    width = Math.floor(width / Math.SQRT2);
    best = await sharp(input)
      .keepMetadata()
      .resize({ width })
      .png({ compressionLevel: 9, adaptiveFiltering: true })
      .toBuffer();
  }
  if (best.length > maxBytes) throw new Error(`the image cannot be made smaller than ${maxBytes} bytes`);
  return best;
}
