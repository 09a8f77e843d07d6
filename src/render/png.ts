import { crc32 } from "node:zlib";
import sharp from "sharp";
import { EaselError } from "../core/errors.ts";
import { escapeControlCharacters } from "../core/parameters.ts";

/**
 * PNG encoding with text metadata. Settings travel inside the image as a `parameters` text chunk in the
 * AUTOMATIC1111 format, so other tools (A1111's PNG Info, ComfyUI, Civitai) read them back. sharp writes no
 * arbitrary text chunks, so the chunk is spliced in after encoding, right after IHDR: readers that stop at the
 * image data (Pillow's `Image.open(f).info` without `.load()`, most PNG Info tools) only see text chunks
 * that come before the first IDAT, and the PNG spec allows tEXt and iTXt anywhere after IHDR.
 */

/** An RGB image as raw interleaved bytes, the form the pipelines produce. */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  /** width × height × 3 bytes, row-major RGB. */
  readonly data: Uint8Array;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/**
 * Encodes raw RGB as PNG, adding one text chunk per entry of `text` (tEXt when Latin-1, else UTF-8 iTXt)
 * before the image data, with control characters escaped (see `escapeControlCharacters`).
 */
export async function encodePng(image: RgbImage, text: Record<string, string> = {}): Promise<Buffer> {
  if (image.data.length !== image.width * image.height * 3) {
    throw new EaselError(
      "invalid_argument",
      `image data is ${image.data.length} bytes, expected ${image.width}×${image.height}×3`,
    );
  }
  const png = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
    .png({ compressionLevel: 6 })
    .toBuffer();
  const chunks = Object.entries(text).map(([keyword, value]) => textChunk(keyword, value));
  return chunks.length === 0 ? png : insertAfterIhdr(png, chunks);
}

/** A PNG chunk: length, type, data, CRC of type and data. */
export function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, "latin1");
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

function textChunk(keyword: string, value: string): Buffer {
  if (!/^[\x20-\x7e]{1,79}$/.test(keyword)) {
    throw new EaselError(
      "invalid_argument",
      `PNG text keyword "${keyword}" must be 1–79 printable ASCII characters`,
    );
  }
  // Escaped here too, not only in formatA1111Parameters, so that no caller can write NUL (which tEXt forbids)
  // or a raw terminal control into a file.
  const safe = escapeControlCharacters(value);
  // Latin-1 text fits tEXt; anything else (emoji, CJK) needs iTXt, as PIL does for A1111.
  const latin1 = [...safe].every((ch) => (ch.codePointAt(0) ?? 0) <= 0xff);
  if (latin1) {
    return pngChunk(
      "tEXt",
      Buffer.concat([Buffer.from(keyword, "latin1"), Buffer.from([0]), Buffer.from(safe, "latin1")]),
    );
  }
  // iTXt: keyword, NUL, compression flag 0, method 0, empty language tag NUL, empty translated keyword NUL, UTF-8.
  return pngChunk(
    "iTXt",
    Buffer.concat([Buffer.from(keyword, "latin1"), Buffer.from([0, 0, 0, 0, 0]), Buffer.from(safe, "utf8")]),
  );
}

/** `png` with `chunks` right after IHDR: before any image data, where readers look without decoding. */
export function insertAfterIhdr(png: Buffer, chunks: Buffer[]): Buffer {
  // IHDR is always the first chunk (PNG spec 5.6): 8 bytes of signature, then length, type, data, CRC.
  const ihdrEnd = 8 + 12 + png.readUInt32BE(8);
  if (png.toString("latin1", 12, 16) !== "IHDR") {
    throw new EaselError("invalid_argument", "encoded PNG does not start with IHDR");
  }
  return Buffer.concat([png.subarray(0, ihdrEnd), ...chunks, png.subarray(ihdrEnd)]);
}

/** Reads the tEXt and uncompressed iTXt chunks of a PNG (what `encodePng` writes), keyword → text. */
export function readPngText(png: Uint8Array): Record<string, string> {
  const buf = Buffer.from(png.buffer, png.byteOffset, png.byteLength);
  if (buf.length < 8 || !buf.subarray(0, 8).equals(PNG_SIGNATURE)) {
    throw new EaselError("invalid_argument", "not a PNG file");
  }
  const out: Record<string, string> = {};
  for (let offset = 8; offset + 12 <= buf.length; ) {
    const length = buf.readUInt32BE(offset);
    const type = buf.toString("latin1", offset + 4, offset + 8);
    const data = buf.subarray(offset + 8, offset + 8 + length);
    const nul = data.indexOf(0);
    if (type === "tEXt" && nul > 0) {
      out[data.toString("latin1", 0, nul)] = data.toString("latin1", nul + 1);
    } else if (type === "iTXt" && nul > 0 && data[nul + 1] === 0) {
      const language = data.indexOf(0, nul + 3);
      const translated = data.indexOf(0, language + 1);
      if (language >= 0 && translated >= 0)
        out[data.toString("latin1", 0, nul)] = data.toString("utf8", translated + 1);
    }
    if (type === "IEND") break;
    offset += 12 + length;
  }
  return out;
}
