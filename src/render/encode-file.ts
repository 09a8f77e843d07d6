import { EaselError } from "../core/errors.ts";
import { insertAfterIhdr, pngChunk, type RgbImage } from "./png.ts";

/**
 * Image files in the format their name asks for, with the settings inside as AUTOMATIC1111 writes them: PNG
 * gets a `parameters` text chunk (encodePng), JPEG and WebP an EXIF UserComment in piexif's "UNICODE" form
 * (an 8-byte charset prefix, then UTF-16 big-endian), which A1111's PNG Info, Civitai and Pillow read back.
 *
 * sharp cannot write that UserComment itself: `withExif` passes values through libvips, which stores
 * UserComment as "ASCII" and transliterates everything else ("ü" becomes "u", CJK is lost). libvips does keep
 * an EXIF block it read from its input byte for byte (`keepExif`), so the block is built here, carried in a
 * lossless PNG's eXIf chunk, and sharp re-encodes that PNG to JPEG or WebP with the block kept.
 *
 * sharp is imported on first use, so that a caller can check a file name against the formats (the CLI does,
 * before rendering) without loading the native module.
 */

/** A format easel writes image files in. */
export type ImageFileFormat = "png" | "jpeg" | "webp";

/** File name extensions (lower case) and the format each asks for. */
export const IMAGE_FILE_EXTENSIONS: Readonly<Record<string, ImageFileFormat>> = {
  ".png": "png",
  ".jpg": "jpeg",
  ".jpeg": "jpeg",
  ".webp": "webp",
};

/** The format `fileName` asks for by its extension (in any case), or undefined for any other name. */
export function imageFileFormat(fileName: string): ImageFileFormat | undefined {
  const dot = fileName.lastIndexOf(".");
  if (dot < 0 || /[\\/]/.test(fileName.slice(dot))) return undefined;
  const extension = fileName.slice(dot).toLowerCase();
  return Object.hasOwn(IMAGE_FILE_EXTENSIONS, extension) ? IMAGE_FILE_EXTENSIONS[extension] : undefined;
}

/** JPEG and WebP quality: A1111's default (its `jpeg_quality` setting, which its WebP saving uses too). */
const LOSSY_QUALITY = 80;

/**
 * The largest block written. libvips re-serialises EXIF through libexif, which drops a whole block over 64 kB
 * without an error (a JPEG APP1 segment cannot be longer either); libvips adds about 200 bytes of its own
 * fields, so 1 kB is left for them.
 */
const MAX_EXIF_BYTES = 63 * 1024;

const EXIF_IFD_POINTER = 0x8769;
const USER_COMMENT = 0x9286;
const TIFF_LONG = 4;
const TIFF_UNDEFINED = 7;
/** piexif's prefix for UTF-16 text (`UserComment.dump(text, encoding="unicode")`, as A1111 writes). */
const UNICODE_PREFIX = Buffer.from("UNICODE\0", "latin1");

/**
 * A big-endian TIFF block (piexif writes "MM" too) holding only the Exif IFD's UserComment: IFD0 with the Exif
 * IFD pointer at offset 8, the Exif IFD at 26, the comment's bytes at 44.
 */
function userCommentExif(text: string): Buffer {
  const comment = Buffer.concat([UNICODE_PREFIX, Buffer.from(text, "utf16le").swap16()]);
  const head = Buffer.alloc(44);
  head.write("MM", 0, "latin1");
  head.writeUInt16BE(42, 2);
  head.writeUInt32BE(8, 4);
  // IFD0: one entry, the Exif IFD pointer; no next IFD.
  head.writeUInt16BE(1, 8);
  head.writeUInt16BE(EXIF_IFD_POINTER, 10);
  head.writeUInt16BE(TIFF_LONG, 12);
  head.writeUInt32BE(1, 14);
  head.writeUInt32BE(26, 18);
  head.writeUInt32BE(0, 22);
  // Exif IFD: one entry, UserComment, its bytes after the IFD; no next IFD.
  head.writeUInt16BE(1, 26);
  head.writeUInt16BE(USER_COMMENT, 28);
  head.writeUInt16BE(TIFF_UNDEFINED, 30);
  head.writeUInt32BE(comment.length, 32);
  head.writeUInt32BE(44, 36);
  head.writeUInt32BE(0, 40);
  return Buffer.concat([head, comment]);
}

/**
 * Encodes RGB pixels as a `format` file; `parameters` (A1111's settings text) goes in a PNG `parameters` chunk
 * or a JPEG/WebP EXIF UserComment.
 */
export async function encodeImageFile(
  image: RgbImage,
  format: ImageFileFormat,
  parameters?: string,
): Promise<Buffer> {
  const { encodePng } = await import("./png.ts");
  if (format === "png") return encodePng(image, parameters === undefined ? {} : { parameters });
  const { default: sharp } = await import("sharp");
  let carrier: Buffer = await sharp(image.data, {
    raw: { width: image.width, height: image.height, channels: 3 },
  })
    .png({ compressionLevel: 0 })
    .toBuffer();
  if (parameters !== undefined) {
    const exif = userCommentExif(parameters);
    if (exif.length > MAX_EXIF_BYTES)
      throw new EaselError(
        "invalid_argument",
        `the settings text is ${exif.length} bytes as EXIF; JPEG and WebP files hold at most ${MAX_EXIF_BYTES}: write a .png`,
      );
    carrier = insertAfterIhdr(carrier, [pngChunk("eXIf", exif)]);
  }
  const pipeline = sharp(carrier).keepExif();
  const file =
    format === "jpeg"
      ? await pipeline.jpeg({ quality: LOSSY_QUALITY }).toBuffer()
      : await pipeline.webp({ quality: LOSSY_QUALITY }).toBuffer();
  // libvips drops EXIF it cannot write without an error; a file that lost its settings is refused, not saved.
  if (parameters !== undefined && (await sharp(file).metadata()).exif === undefined)
    throw new EaselError("render_failed", `the ${format} encoder dropped the EXIF block with the settings`);
  return file;
}
