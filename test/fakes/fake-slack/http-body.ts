import type { IncomingMessage, ServerResponse } from "node:http";
import busboy from "busboy";

/**
 * Reading and decoding request bodies the way Slack's edge accepts them: `application/x-www-form-urlencoded`
 * (what @slack/web-api sends for every method), `application/json` (allowed for write methods with a bearer
 * token), `multipart/form-data` (what @slack/web-api sends when an argument is a Buffer, including the upload
 * URL post of files.uploadV2, whose single part is named `body`), or raw bytes at the upload URL.
 */

/** Slack's own cap on one upload (1 GB) is far above what a test sends; this guards against runaway bodies. */
const MAX_BODY_BYTES = 100 * 1024 * 1024;

/** A file part of a multipart body. */
export interface BodyFile {
  field: string;
  filename: string;
  mimeType: string;
  bytes: Uint8Array;
}

/** A decoded body: fields (strings for forms, any JSON for JSON bodies) and file parts. */
export interface DecodedBody {
  fields: Record<string, unknown>;
  files: BodyFile[];
  /** Why the body could not be decoded, as a Slack error code. */
  error?: "invalid_json" | "json_not_object" | "invalid_form_data" | "invalid_post_type";
}

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new Error("body too large");
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Decodes a body by its content type; an empty body decodes to no fields. */
export async function decodeBody(contentType: string, bytes: Buffer): Promise<DecodedBody> {
  const type = contentType.split(";")[0]?.trim().toLowerCase() ?? "";
  if (bytes.length === 0) return { fields: {}, files: [] };
  if (type === "application/x-www-form-urlencoded") {
    return { fields: Object.fromEntries(new URLSearchParams(bytes.toString("utf8"))), files: [] };
  }
  if (type === "application/json") {
    let parsed: unknown;
    try {
      parsed = JSON.parse(bytes.toString("utf8"));
    } catch {
      return { fields: {}, files: [], error: "invalid_json" };
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
      return { fields: {}, files: [], error: "json_not_object" };
    return { fields: parsed as Record<string, unknown>, files: [] };
  }
  if (type === "multipart/form-data") {
    try {
      return await decodeMultipart(contentType, bytes);
    } catch {
      return { fields: {}, files: [], error: "invalid_form_data" };
    }
  }
  return { fields: {}, files: [], error: "invalid_post_type" };
}

function decodeMultipart(contentType: string, bytes: Buffer): Promise<DecodedBody> {
  return new Promise((resolve, reject) => {
    const fields: Record<string, unknown> = {};
    const files: BodyFile[] = [];
    const parser = busboy({ headers: { "content-type": contentType } });
    parser.on("field", (name, value) => {
      fields[name] = value;
    });
    parser.on("file", (field, stream, info) => {
      const chunks: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => {
        files.push({
          field,
          filename: info.filename ?? "",
          mimeType: info.mimeType,
          bytes: new Uint8Array(Buffer.concat(chunks)),
        });
      });
    });
    parser.on("close", () => resolve({ fields, files }));
    parser.on("error", reject);
    parser.end(bytes);
  });
}

/** Writes a JSON answer (unless the client is gone). */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.destroyed) return;
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...headers });
  res.end(JSON.stringify(body));
}
