import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { deflateSync } from "node:zlib";
import { loadSpec } from "./specs/load-spec.ts";

/**
 * A local OpenAI images server for tests: the real SDK talks HTTP to it. It speaks POST /v1/images/generations
 * (JSON), /v1/images/edits and /v1/images/variations (multipart) and GET /v1/models/{id}; answers with real
 * PNGs in b64_json (or URLs, as DALL·E does when not asked for base64); checks the bearer key (401, echoing
 * the key it got, worse than OpenAI's masked echo, so that redaction is tested), unknown models (404
 * model_not_found), the request bodies against OpenAI's OpenAPI document (test/fakes/specs/openai, parsed once
 * with JSON.parse and checked by a small validator: ajv is not a dependency) and the per-model rules the spec
 * leaves to prose (dall-e-3 n=1, sizes per model, GPT-image models refusing response_format, variation images
 * square PNGs under 4 MB). A script of replies plays 429 with Retry-After, 500, content-policy 400s, slow
 * replies, hangs and resets. Every request is recorded.
 */

/** A file part of a multipart request. */
export interface FakeFile {
  file: true;
  filename: string;
  type: string;
  bytes: Uint8Array;
}

/** One request the fake received. */
export interface FakeOpenAiCall {
  method: string;
  path: string;
  endpoint: "generations" | "edits" | "variations" | "models" | "other";
  authorized: boolean;
  /** The JSON body, or the multipart fields (files as FakeFile). */
  body: Record<string, unknown>;
  /** The status the fake answered (0: it never answered). */
  status: number;
  /** Why the fake refused the request as invalid, when it did. */
  rejection?: string;
}

/** A scripted reply to one image request. */
export type FakeReply =
  | {
      kind: "error";
      status: number;
      code?: string | null;
      type?: string;
      message?: string;
      /** Retry-After header value, in seconds. */
      retryAfter?: string;
    }
  /** Answers normally (a placeholder in a script). */
  | { kind: "ok" }
  /** Answers normally after `ms`. */
  | { kind: "delay"; ms: number }
  /** Never answers. */
  | { kind: "hang" }
  /** Closes the connection without an answer. */
  | { kind: "reset" };

/** A 429 as OpenAI sends it, with Retry-After. */
export const rateLimited = (retryAfter = "0"): FakeReply => ({
  kind: "error",
  status: 429,
  code: "rate_limit_exceeded",
  type: "requests",
  message: "Rate limit reached for images per minute. Please try again later.",
  retryAfter,
});

/** A 500 (with Retry-After 0 so that the SDK retries without its backoff sleep). */
export const serverError = (status = 500, retryAfter: string | undefined = "0"): FakeReply => ({
  kind: "error",
  status,
  type: "server_error",
  message: "The server had an error while processing your request. Sorry about that!",
  ...(retryAfter === undefined ? {} : { retryAfter }),
});

/** A content-policy refusal: HTTP 400 with code content_policy_violation or moderation_blocked. */
export const contentPolicy = (
  code: "content_policy_violation" | "moderation_blocked" = "content_policy_violation",
): FakeReply => ({
  kind: "error",
  status: 400,
  code,
  type: code === "moderation_blocked" ? "image_generation_user_error" : "invalid_request_error",
  message:
    code === "moderation_blocked"
      ? "Your request was rejected by the safety system. If you believe this is an error, contact us."
      : "Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed by our safety system.",
});

/** Models OpenAI's spec lists (generations and edits), all offered unless a test says otherwise. */
export const SPEC_MODELS = [
  "gpt-image-1",
  "gpt-image-1-mini",
  "gpt-image-1.5",
  "gpt-image-2",
  "gpt-image-2-2026-04-21",
  "chatgpt-image-latest",
  "dall-e-2",
  "dall-e-3",
];

export interface FakeOpenAiOptions {
  /** The key the fake accepts. */
  apiKey?: string;
  /** Models it offers (default SPEC_MODELS). */
  models?: readonly string[];
  /** Shutdown dates it reports on GET /models/{id}. */
  shutdownDates?: Record<string, string>;
}

const MAX_BODY = 64 * 1024 * 1024;

/** The fake OpenAI server. */
export class FakeOpenAi {
  apiKey: string;
  readonly models: Set<string>;
  readonly shutdownDates: Record<string, string>;
  readonly calls: FakeOpenAiCall[] = [];
  /** Replies for the next valid image requests, one each, in order; then normal answers. */
  readonly script: FakeReply[] = [];
  /** Decides the reply for a valid image request (e.g. by prompt); wins over the script. */
  onImageRequest: ((call: FakeOpenAiCall) => FakeReply | undefined) | undefined;
  private imageCount = 0;

  private constructor(
    private readonly server: Server,
    readonly baseUrl: string,
    options: FakeOpenAiOptions,
  ) {
    this.apiKey = options.apiKey ?? "sk-fake-test-key-0000000000";
    this.models = new Set(options.models ?? SPEC_MODELS);
    this.shutdownDates = options.shutdownDates ?? {};
  }

  /** Starts a fake on a free local port. */
  static async start(options: FakeOpenAiOptions = {}): Promise<FakeOpenAi> {
    let fake: FakeOpenAi | undefined;
    const server = createServer((req, res) => {
      void fake?.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) send(res, 500, { error: apiError(String(err), "server_error") });
      });
    });
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    const { port } = server.address() as AddressInfo;
    fake = new FakeOpenAi(server, `http://127.0.0.1:${port}/v1`, options);
    return fake;
  }

  /** Image requests (generations, edits, variations), valid or not. */
  imageCalls(): FakeOpenAiCall[] {
    return this.calls.filter((c) => c.endpoint !== "models" && c.endpoint !== "other");
  }

  /** Reasons of every request the fake refused as invalid. */
  rejections(): string[] {
    return this.calls.flatMap((c) => (c.rejection ? [`${c.path}: ${c.rejection}`] : []));
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((done) => this.server.close(() => done()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://fake");
    const path = url.pathname;
    const endpoint = endpointOf(req.method ?? "GET", path);
    const call: FakeOpenAiCall = {
      method: req.method ?? "GET",
      path,
      endpoint,
      authorized: false,
      body: {},
      status: 0,
    };
    this.calls.push(call);
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      call.status = status;
      send(res, status, body, headers);
    };
    const bytes = await readBody(req);

    const presented = /^Bearer (.*)$/.exec(req.headers.authorization ?? "")?.[1] ?? "";
    if (presented !== this.apiKey) {
      reply(401, {
        error: apiError(
          `Incorrect API key provided: ${presented}. You can find your API key at https://platform.openai.com/account/api-keys.`,
          "invalid_request_error",
          "invalid_api_key",
        ),
      });
      return;
    }
    call.authorized = true;

    if (endpoint === "models") {
      const id = decodeURIComponent(path.slice("/v1/models/".length));
      if (!this.models.has(id)) {
        reply(404, { error: modelNotFound(id) });
        return;
      }
      reply(200, {
        id,
        object: "model",
        created: 1_700_000_000,
        owned_by: "system",
        ...(this.shutdownDates[id] ? { shutdown_date: this.shutdownDates[id] } : {}),
      });
      return;
    }
    if (endpoint === "other") {
      reply(404, { error: apiError(`Invalid URL (${call.method} ${path})`, "invalid_request_error") });
      return;
    }

    try {
      call.body = await parseBody(endpoint, req.headers["content-type"] ?? "", bytes);
    } catch (err) {
      call.rejection = `unreadable body: ${(err as Error).message}`;
      reply(400, { error: apiError(call.rejection, "invalid_request_error") });
      return;
    }
    // The API's defaults when no model is named.
    const defaultModel = endpoint === "edits" ? "gpt-image-1.5" : "dall-e-2";
    const model = typeof call.body.model === "string" ? call.body.model : defaultModel;
    const invalid = validateAgainstSpec(endpoint, call.body) ?? checkModelRules(endpoint, model, call.body);
    if (invalid) {
      call.rejection = invalid.message;
      reply(400, { error: apiError(invalid.message, "invalid_request_error", null, invalid.param ?? null) });
      return;
    }
    if (!this.models.has(model)) {
      reply(404, { error: modelNotFound(model) });
      return;
    }

    const scripted = this.onImageRequest?.(call) ?? this.script.shift();
    if (scripted?.kind === "hang") return;
    if (scripted?.kind === "reset") {
      req.socket.destroy();
      return;
    }
    if (scripted?.kind === "error") {
      reply(
        scripted.status,
        {
          error: apiError(
            scripted.message ?? `HTTP ${scripted.status}`,
            scripted.type ?? "invalid_request_error",
            scripted.code ?? null,
          ),
        },
        scripted.retryAfter === undefined ? {} : { "retry-after": scripted.retryAfter },
      );
      return;
    }
    if (scripted?.kind === "delay") await new Promise((r) => setTimeout(r, scripted.ms));
    if (res.destroyed) return;
    reply(200, this.imagesResponse(endpoint, model, call.body), {
      "x-request-id": `req_fake_${this.calls.length}`,
    });
  }

  private imagesResponse(endpoint: string, model: string, body: Record<string, unknown>): unknown {
    const family = familyOf(model);
    const n = typeof body.n === "number" ? body.n : 1;
    const sizeField = typeof body.size === "string" && body.size !== "auto" ? body.size : "1024x1024";
    const [width, height] = sizeField.split("x").map(Number) as [number, number];
    const base64 = family === "gpt-image" || body.response_format === "b64_json";
    const data = Array.from({ length: n }, (_, i) => {
      const index = this.imageCount++;
      const png = makePng(width, height, [(index * 53) % 256, (index * 97 + 40) % 256, (i * 31 + 90) % 256]);
      return {
        ...(base64
          ? { b64_json: Buffer.from(png).toString("base64") }
          : { url: `${this.baseUrl}/files/image-${index}.png` }),
        ...(family === "dall-e-3"
          ? { revised_prompt: `A detailed illustration of ${String(body.prompt)}` }
          : {}),
      };
    });
    const gpt =
      family === "gpt-image"
        ? {
            size: `${width}x${height}`,
            quality: body.quality === undefined || body.quality === "auto" ? "high" : body.quality,
            output_format: "png",
            background: "opaque",
            usage: {
              input_tokens: 50,
              input_tokens_details: { image_tokens: endpoint === "edits" ? 40 : 0, text_tokens: 10 },
              output_tokens: 4160,
              total_tokens: 4210,
            },
          }
        : {};
    return { created: Math.floor(Date.now() / 1000), data, ...gpt };
  }
}

function endpointOf(method: string, path: string): FakeOpenAiCall["endpoint"] {
  if (method === "POST" && path === "/v1/images/generations") return "generations";
  if (method === "POST" && path === "/v1/images/edits") return "edits";
  if (method === "POST" && path === "/v1/images/variations") return "variations";
  if (method === "GET" && path.startsWith("/v1/models/")) return "models";
  return "other";
}

function apiError(message: string, type: string, code: string | null = null, param: string | null = null) {
  return { message, type, param, code };
}

const modelNotFound = (model: string) =>
  apiError(
    `The model '${model}' does not exist or you do not have access to it.`,
    "invalid_request_error",
    "model_not_found",
  );

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new Error("body too large");
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

async function parseBody(
  endpoint: string,
  contentType: string,
  bytes: Buffer,
): Promise<Record<string, unknown>> {
  if (endpoint === "generations") {
    if (!contentType.startsWith("application/json")) throw new Error(`expected JSON, got ${contentType}`);
    const parsed: unknown = JSON.parse(bytes.toString("utf8"));
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
      throw new Error("not an object");
    return parsed as Record<string, unknown>;
  }
  if (!contentType.startsWith("multipart/form-data"))
    throw new Error(`expected multipart, got ${contentType}`);
  const form = await new Response(bytes, { headers: { "content-type": contentType } }).formData();
  const schema = requestSchema(endpoint);
  const out: Record<string, unknown> = {};
  for (const [key, value] of form.entries()) {
    let field: unknown;
    if (typeof value === "string") {
      field = coerce(value, schema ? propertySchema(schema, key) : undefined);
    } else {
      const file: FakeFile = {
        file: true,
        filename: value.name,
        type: value.type,
        bytes: new Uint8Array(await value.arrayBuffer()),
      };
      field = file;
    }
    const name = key.endsWith("[]") ? key.slice(0, -2) : key;
    if (key.endsWith("[]")) out[name] = [...((out[name] as unknown[] | undefined) ?? []), field];
    else out[name] = field;
  }
  return out;
}

// ---- The spec and a small validator for the parts of JSON Schema the image request schemas use ------------

type Schema = { [key: string]: unknown };

let specCache: Schema | undefined;

/** OpenAI's OpenAPI document (OPENAI_SPEC or the repository's copy), parsed once; throws when absent. */
export function openAiSpec(): Schema {
  specCache ??= loadSpec<Schema>("openai");
  return specCache;
}

const SCHEMA_NAMES: Record<string, string> = {
  generations: "CreateImageRequest",
  edits: "CreateImageEditRequest",
  variations: "CreateImageVariationRequest",
};

function requestSchema(endpoint: string): Schema | undefined {
  const spec = openAiSpec();
  const name = SCHEMA_NAMES[endpoint];
  const schemas = (spec.components as { schemas?: Record<string, Schema> } | undefined)?.schemas;
  return name ? schemas?.[name] : undefined;
}

function deref(schema: Schema): Schema {
  let s = schema;
  for (let i = 0; i < 10 && typeof s.$ref === "string"; i++) {
    const parts = (s.$ref as string).replace(/^#\//, "").split("/");
    let node: unknown = openAiSpec();
    for (const part of parts)
      node = (node as Schema | undefined)?.[part.replace(/~1/g, "/").replace(/~0/g, "~")];
    if (typeof node !== "object" || node === null) throw new Error(`unresolved $ref ${String(s.$ref)}`);
    s = node as Schema;
  }
  return s;
}

function propertySchema(schema: Schema, key: string): Schema | undefined {
  const name = key.endsWith("[]") ? key.slice(0, -2) : key;
  return (deref(schema).properties as Record<string, Schema> | undefined)?.[name];
}

/** The JSON types a schema allows (through $ref and anyOf). */
function typesOf(schema: Schema): Set<string> {
  const s = deref(schema);
  const out = new Set<string>();
  if (typeof s.type === "string") out.add(s.type);
  for (const branch of (s.anyOf as Schema[] | undefined) ?? []) for (const t of typesOf(branch)) out.add(t);
  return out;
}

/** A multipart text field as the schema types it (form fields are all strings on the wire). */
function coerce(value: string, schema: Schema | undefined): unknown {
  if (!schema) return value;
  const types = typesOf(schema);
  if (types.has("string")) return value;
  if ((types.has("integer") || types.has("number")) && /^-?\d+(\.\d+)?$/.test(value)) return Number(value);
  if (types.has("boolean") && (value === "true" || value === "false")) return value === "true";
  return value;
}

const isFile = (v: unknown): v is FakeFile =>
  typeof v === "object" && v !== null && (v as FakeFile).file === true;

/** The first way `value` breaks `schema`, or undefined. */
function check(schema: Schema, value: unknown, path: string): string | undefined {
  const s = deref(schema);
  if (value === null) {
    return s.nullable === true || typesOf(s).has("null") ? undefined : `${path} must not be null`;
  }
  if (Array.isArray(s.anyOf)) {
    const errors = (s.anyOf as Schema[]).map((branch) => check(branch, value, path));
    if (errors.some((e) => e === undefined)) return undefined;
    return errors[errors.length - 1];
  }
  const type = s.type;
  if (type === "string") {
    if (s.format === "binary") return isFile(value) ? undefined : `${path} must be a file`;
    if (typeof value !== "string") return `${path} must be a string`;
  } else if (type === "integer") {
    if (typeof value !== "number" || !Number.isInteger(value)) return `${path} must be an integer`;
  } else if (type === "number") {
    if (typeof value !== "number") return `${path} must be a number`;
  } else if (type === "boolean") {
    if (typeof value !== "boolean") return `${path} must be a boolean`;
  } else if (type === "array") {
    if (!Array.isArray(value)) return `${path} must be an array`;
    if (typeof s.maxItems === "number" && value.length > s.maxItems)
      return `${path} has over ${s.maxItems} items`;
    for (const [i, item] of value.entries()) {
      const err = s.items ? check(s.items as Schema, item, `${path}[${i}]`) : undefined;
      if (err) return err;
    }
  } else if (type === "object") {
    if (typeof value !== "object" || Array.isArray(value) || isFile(value))
      return `${path} must be an object`;
  }
  if (Array.isArray(s.enum) && !s.enum.includes(value)) return `${path} must be one of ${s.enum.join(", ")}`;
  if (typeof value === "number") {
    if (typeof s.minimum === "number" && value < s.minimum) return `${path} must be ≥ ${s.minimum}`;
    if (typeof s.maximum === "number" && value > s.maximum) return `${path} must be ≤ ${s.maximum}`;
  }
  return undefined;
}

/** The request body against the spec's request schema: required fields, unknown parameters, each field. */
export function validateAgainstSpec(
  endpoint: string,
  body: Record<string, unknown>,
): { message: string; param?: string } | undefined {
  const schema = requestSchema(endpoint);
  if (!schema) return undefined;
  const s = deref(schema);
  const properties = (s.properties as Record<string, Schema> | undefined) ?? {};
  for (const name of (s.required as string[] | undefined) ?? []) {
    if (body[name] === undefined) return { message: `Missing required parameter: '${name}'.`, param: name };
  }
  for (const [name, value] of Object.entries(body)) {
    const prop = properties[name];
    if (!prop) return { message: `Unknown parameter: '${name}'.`, param: name };
    const err = check(prop, value, name);
    if (err) return { message: `Invalid value: ${err}.`, param: name };
  }
  return undefined;
}

// ---- The rules the spec states in prose only ---------------------------------------------------------------

type Family = "dall-e-2" | "dall-e-3" | "gpt-image" | "other";

function familyOf(model: string): Family {
  if (model.startsWith("dall-e-2")) return "dall-e-2";
  if (model.startsWith("dall-e-3")) return "dall-e-3";
  if (model.startsWith("gpt-image") || model.startsWith("chatgpt-image")) return "gpt-image";
  return "other";
}

const SIZES: Record<Family, readonly string[]> = {
  "dall-e-2": ["256x256", "512x512", "1024x1024"],
  "dall-e-3": ["1024x1024", "1792x1024", "1024x1792"],
  "gpt-image": ["1024x1024", "1536x1024", "1024x1536", "auto"],
  other: [],
};
const QUALITIES: Record<Family, readonly string[]> = {
  "dall-e-2": ["standard", "auto"],
  "dall-e-3": ["standard", "hd", "auto"],
  "gpt-image": ["low", "medium", "high", "auto"],
  other: [],
};
const PROMPT_CHARS: Record<Family, number> = {
  "dall-e-2": 1000,
  "dall-e-3": 4000,
  "gpt-image": 32_000,
  other: Number.POSITIVE_INFINITY,
};

function checkModelRules(
  endpoint: string,
  model: string,
  body: Record<string, unknown>,
): { message: string; param?: string } | undefined {
  const family = familyOf(model);
  if (family === "other") return undefined;
  const bad = (message: string, param: string) => ({ message, param });
  if (endpoint === "variations" && family !== "dall-e-2")
    return bad(`Invalid model ${model}. The model must be dall-e-2 for variations.`, "model");
  if (endpoint === "edits" && family === "dall-e-3")
    return bad("dall-e-3 does not support image edits.", "model");
  if (family === "gpt-image" && body.response_format !== undefined)
    return bad("Unknown parameter: 'response_format'.", "response_format");
  if (family !== "dall-e-3" && body.style !== undefined) return bad("Unknown parameter: 'style'.", "style");
  if (family !== "gpt-image" && (body.moderation !== undefined || body.output_format !== undefined))
    return bad(`${model} does not take moderation or output_format.`, "moderation");
  if (family === "dall-e-3" && body.n !== undefined && body.n !== 1)
    return bad("You must provide n=1 for this model.", "n");
  if (typeof body.size === "string" && !SIZES[family].includes(body.size))
    return bad(`Invalid size '${body.size}' for ${model}; supported: ${SIZES[family].join(", ")}.`, "size");
  if (typeof body.quality === "string" && !QUALITIES[family].includes(body.quality))
    return bad(`Invalid quality '${body.quality}' for ${model}.`, "quality");
  if (typeof body.prompt === "string" && [...body.prompt].length > PROMPT_CHARS[family])
    return bad(`Prompt too long for ${model}: at most ${PROMPT_CHARS[family]} characters.`, "prompt");
  const images = Array.isArray(body.image) ? body.image : body.image === undefined ? [] : [body.image];
  for (const image of images) {
    if (!isFile(image)) continue;
    const info = pngInfo(image.bytes);
    if (family === "dall-e-2") {
      if (!info)
        return bad("Invalid input image - format must be in ['RGBA', 'L', 'LA', 'RGB'] PNG.", "image");
      if (info.width !== info.height) return bad("Uploaded image must be square.", "image");
      if (image.bytes.length >= 4 * 1024 * 1024)
        return bad("Uploaded image must be a PNG and less than 4 MB.", "image");
    } else if (!info && !isJpegOrWebp(image.bytes)) {
      return bad("Invalid image file or mode; use png, webp or jpg.", "image");
    }
  }
  return undefined;
}

function isJpegOrWebp(bytes: Uint8Array): boolean {
  const jpeg = bytes[0] === 0xff && bytes[1] === 0xd8;
  const webp = Buffer.from(bytes.subarray(8, 12)).toString("latin1") === "WEBP";
  return jpeg || webp;
}

// ---- PNG by hand (node:zlib only) ----------------------------------------------------------------------------

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = (CRC_TABLE[(c ^ b) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, "latin1");
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

const pngCache = new Map<string, Uint8Array>();

/** A valid RGB PNG of one colour (cached: tests ask for the same few). */
export function makePng(width: number, height: number, rgb: readonly [number, number, number]): Uint8Array {
  const key = `${width}x${height}:${rgb.join(",")}`;
  const cached = pngCache.get(key);
  if (cached) return cached;
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // colour type RGB
  const row = Buffer.alloc(1 + width * 3);
  for (let x = 0; x < width; x++) row.set(rgb, 1 + x * 3);
  const raw = Buffer.alloc(row.length * height);
  for (let y = 0; y < height; y++) row.copy(raw, y * row.length);
  const png = new Uint8Array(
    Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      chunk("IHDR", header),
      chunk("IDAT", deflateSync(raw)),
      chunk("IEND", new Uint8Array(0)),
    ]),
  );
  pngCache.set(key, png);
  return png;
}

/** Width and height of a PNG (from IHDR), or undefined when the bytes are not one. */
export function pngInfo(bytes: Uint8Array): { width: number; height: number } | undefined {
  const signature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (bytes.length < 24 || signature.some((b, i) => bytes[i] !== b)) return undefined;
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.toString("latin1", 12, 16) !== "IHDR") return undefined;
  return { width: view.readUInt32BE(16), height: view.readUInt32BE(20) };
}
