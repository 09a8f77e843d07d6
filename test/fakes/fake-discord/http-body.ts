import type { IncomingMessage } from "node:http";
import busboy from "busboy";
import { ApiError, type RecordedFile } from "./state.ts";

/**
 * Reading request bodies the way Discord receives them from discord.js: JSON, or multipart/form-data with a
 * `payload_json` field and `files[n]` parts (undici's FormData, decoded here with busboy).
 */

/** The most the fake reads of one body; Discord's own limits (413) are enforced per upload, well below. */
export const MAX_BODY = 128 * 1024 * 1024;

/** Marks a body that was not JSON, so that the route can answer 50109 after auth and rate limits. */
export const INVALID_JSON = Symbol("invalid JSON");

/** The decoded body: JSON (or `payload_json`), other form fields when there is no payload_json, and files. */
export interface DecodedBody {
  body: unknown;
  files: RecordedFile[];
}

/** Reads and decodes a request body. */
export async function decodeBody(req: IncomingMessage): Promise<DecodedBody> {
  const bytes = await readBody(req);
  if (bytes.length === 0) return { body: undefined, files: [] };
  const type = req.headers["content-type"] ?? "";
  if (type.startsWith("multipart/form-data")) {
    const { fields, files } = await parseMultipart(req, bytes);
    if (fields.payload_json === undefined) return { body: fields, files };
    return { body: parseJson(fields.payload_json), files };
  }
  return { body: parseJson(bytes.toString("utf8")), files: [] };
}

/** Reads and discards a body (for requests answered without looking at it). */
export async function drain(req: IncomingMessage): Promise<void> {
  for await (const _ of req) {
    // discarded
  }
}

/** Decodes one path segment ("%40original" → "@original"), leaving malformed escapes as they are. */
export function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return INVALID_JSON;
  }
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new ApiError(413, 40005, "Request entity too large");
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Decodes a multipart body with busboy: text fields by name, and the file parts in order. */
function parseMultipart(
  req: IncomingMessage,
  bytes: Buffer,
): Promise<{ fields: Record<string, string>; files: RecordedFile[] }> {
  return new Promise((resolve, reject) => {
    const fields: Record<string, string> = {};
    const files: RecordedFile[] = [];
    const parser = busboy({
      headers: req.headers,
      // The fake enforces Discord's limits itself (413), so busboy must not truncate anything.
      limits: { fieldSize: MAX_BODY, fileSize: MAX_BODY, files: 1000, fields: 1000 },
    });
    parser.on("field", (name, value) => {
      fields[name] = value;
    });
    parser.on("file", (name, stream, info) => {
      const chunks: Buffer[] = [];
      const file: RecordedFile = {
        name,
        filename: info.filename ?? "file",
        contentType: info.mimeType,
        bytes: new Uint8Array(),
      };
      // Pushed now, filled at the end: parts keep their order even if their streams end out of order.
      files.push(file);
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        file.bytes = new Uint8Array(Buffer.concat(chunks));
      });
    });
    parser.on("close", () => resolve({ fields, files }));
    parser.on("error", (err) => {
      const message = `Invalid multipart body: ${String(err)}`;
      reject(new ApiError(400, 50035, message, undefined, [{ path: [], code: "MULTIPART", message }]));
    });
    parser.end(bytes);
  });
}
