import { crc32 } from "node:zlib";
import sharp from "sharp";
import { EaselError } from "../core/errors.ts";

/**
 * PNG encoding with text metadata. Settings travel inside the image as a `parameters` text chunk in the
 * AUTOMATIC1111 format, so other tools (A1111's PNG Info, ComfyUI, Civitai) read them back. sharp writes no
 * arbitrary text chunks, so the chunk is spliced in after encoding.
 */

/** An RGB image as raw interleaved bytes, the form the pipelines produce. */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  /** width × height × 3 bytes, row-major RGB. */
  readonly data: Uint8Array;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Encodes raw RGB as PNG, adding one text chunk per entry of `text` (tEXt when Latin-1, else UTF-8 iTXt). */
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
  return chunks.length === 0 ? png : insertBeforeIend(png, chunks);
}

function chunk(type: string, data: Buffer): Buffer {
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
  // Latin-1 text without NUL fits tEXt; anything else (emoji, CJK) needs iTXt, as PIL does for A1111.
  const latin1 = [...value].every((ch) => {
    const code = ch.codePointAt(0) ?? 0;
    return code > 0 && code <= 0xff;
  });
  if (latin1) {
    return chunk(
      "tEXt",
      Buffer.concat([Buffer.from(keyword, "latin1"), Buffer.from([0]), Buffer.from(value, "latin1")]),
    );
  }
  // iTXt: keyword, NUL, compression flag 0, method 0, empty language tag NUL, empty translated keyword NUL, UTF-8.
  return chunk(
    "iTXt",
    Buffer.concat([
      Buffer.from(keyword, "latin1"),
      Buffer.from([0, 0, 0, 0, 0]),
      Buffer.from(value.replaceAll("\0", ""), "utf8"),
    ]),
  );
}

function insertBeforeIend(png: Buffer, chunks: Buffer[]): Buffer {
  const iend = png.length - 12;
  if (png.toString("latin1", iend + 4, iend + 8) !== "IEND") {
    throw new EaselError("invalid_argument", "encoded PNG does not end with IEND");
  }
  return Buffer.concat([png.subarray(0, iend), ...chunks, png.subarray(iend)]);
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
