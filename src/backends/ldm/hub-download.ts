import { createHash, type Hash } from "node:crypto";
import { createReadStream, readFileSync } from "node:fs";
import { mkdir, open, rename, rm, stat } from "node:fs/promises";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { EaselError } from "../../core/errors.ts";
import { MODEL_NAME } from "./model-folder.ts";

/**
 * `easel models pull NAME`: downloads a known ONNX Stable Diffusion export from the Hugging Face hub into
 * `models/NAME/`. Files stream to `<path>.part` and resume with a Range request after an interruption; every
 * byte is checked against the checksum the hub's tree API publishes (sha256 for LFS files, the git blob sha1
 * for small files) before the file gets its final name, so a folder never holds a truncated or corrupt file.
 */

/** The hub `easel models pull` talks to unless an endpoint is given (mirrors speak the same API). */
export const DEFAULT_HUB_ENDPOINT = "https://huggingface.co";

/** The bundled list of known exports, `models/known-models.json` in the project. */
export const DEFAULT_KNOWN_MODELS_FILE = fileURLToPath(
  new URL("../../../models/known-models.json", import.meta.url),
);

/** Redirect hops followed per request; the hub needs one (resolve → CDN). */
const MAX_REDIRECTS = 10;

/** Tree pages followed per listing; a guard against a `Link: rel="next"` loop. */
const MAX_TREE_PAGES = 1000;

/** Model families, as the scheduler defaults and docs know them. */
export type ModelFamily = "sd1" | "sd2" | "turbo" | "lcm";

const FAMILIES: readonly ModelFamily[] = ["sd1", "sd2", "turbo", "lcm"];

/** A checksum or size pinned in known-models.json; the hub's tree must agree with it. */
export interface PinnedFile {
  path: string;
  sha256?: string;
  size?: number;
}

/** One entry of known-models.json: where an export lives on the hub and what it is. */
export interface KnownModel {
  /** The folder name under the models folder. */
  name: string;
  /** `owner/name` on the hub. */
  repo: string;
  /** Branch, tag or commit. */
  revision: string;
  description: string;
  family: ModelFamily;
  license: string;
  /** True when the repo needs an accepted license and HF_TOKEN. */
  gated: boolean;
  files?: PinnedFile[];
}

/** Progress of a pull, in bytes; files already present or resumed count as received. */
export interface PullProgress {
  file: string;
  received: number;
  total: number;
  overallReceived: number;
  overallTotal: number;
}

/** How and where `pullModel` downloads. */
export interface PullOptions {
  /** The models folder; the export lands in `<modelsDir>/<name>/`. */
  modelsDir: string;
  /** Hub base URL; default {@link DEFAULT_HUB_ENDPOINT}. */
  endpoint?: string;
  /** Hugging Face access token (HF_TOKEN), sent to the hub only, never to the CDN it redirects to. */
  token?: string;
  /** The known models to pick from; default {@link loadKnownModels}(). */
  models?: KnownModel[];
  fetch?: typeof fetch;
  onProgress?: (progress: PullProgress) => void;
  signal?: AbortSignal;
}

/** What happened to one file of a pull. */
export interface PulledFile {
  path: string;
  bytes: number;
  sha256: string;
  /** Continued from a `.part` file left by an earlier pull. */
  resumed: boolean;
  /** Already present with the right checksum; nothing downloaded. */
  skipped: boolean;
}

/** The result of a pull: the model folder and every file of the export in it. */
export interface PullResult {
  dir: string;
  files: PulledFile[];
}

/** A folder name: letters, digits, `.`, `_`, `-`; no separators, no leading dot (as in model-folder.ts). */
const REPO_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** The ONNX export's components and the files of each that the pipeline (or ORT, for external data) reads. */
const COMPONENT_FILES = ["model.onnx", "weights.pb", "model.onnx_data", "model.onnx.data", "config.json"];
const TOKENIZER_FILES = [
  "vocab.json",
  "merges.txt",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "added_tokens.json",
];

/** Files of the export layout; everything else in a repo (PyTorch weights, safety checker, docs) is skipped. */
const LAYOUT_FILES: ReadonlySet<string> = new Set([
  "model_index.json",
  "scheduler/scheduler_config.json",
  ...TOKENIZER_FILES.map((file) => `tokenizer/${file}`),
  ...["text_encoder", "unet", "vae_decoder", "vae_encoder"].flatMap((component) =>
    COMPONENT_FILES.map((file) => `${component}/${file}`),
  ),
]);

/** Without these the folder is no usable model, so a repo lacking one is refused before any download. */
const REQUIRED_FILES = [
  "text_encoder/model.onnx",
  "unet/model.onnx",
  "vae_decoder/model.onnx",
  "tokenizer/vocab.json",
  "tokenizer/merges.txt",
  "scheduler/scheduler_config.json",
];

/** Reads and checks a known-models list (default: the project's `models/known-models.json`). */
export function loadKnownModels(file: string = DEFAULT_KNOWN_MODELS_FILE): KnownModel[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (cause) {
    throw new EaselError("config", `cannot read the known models list ${file}`, { cause });
  }
  const list = isRecord(parsed) ? parsed.models : undefined;
  if (!Array.isArray(list)) throw new EaselError("config", `${file} must hold { "models": [ … ] }`);
  const models = list.map((entry, index) => parseKnownModel(entry, `${file}: models[${index}]`));
  const seen = new Set<string>();
  for (const model of models) {
    if (seen.has(model.name))
      throw new EaselError("config", `${file}: model "${model.name}" is listed twice`);
    seen.add(model.name);
  }
  return models;
}

function parseKnownModel(entry: unknown, where: string): KnownModel {
  if (!isRecord(entry)) throw new EaselError("config", `${where} must be an object`);
  const text = (key: string, pattern?: RegExp): string => {
    const value = entry[key];
    if (typeof value !== "string" || value.trim() === "" || (pattern && !pattern.test(value))) {
      throw new EaselError("config", `${where}.${key} is missing or malformed`);
    }
    return value;
  };
  const family = text("family");
  if (!(FAMILIES as readonly string[]).includes(family)) {
    throw new EaselError("config", `${where}.family must be one of ${FAMILIES.join(", ")}`);
  }
  if (typeof entry.gated !== "boolean")
    throw new EaselError("config", `${where}.gated must be true or false`);
  const model: KnownModel = {
    name: text("name", MODEL_NAME),
    repo: text("repo", REPO_ID),
    revision: text("revision", /^[^\s]+$/),
    description: text("description"),
    family: family as ModelFamily,
    license: text("license"),
    gated: entry.gated,
  };
  if (entry.files !== undefined) {
    if (!Array.isArray(entry.files)) throw new EaselError("config", `${where}.files must be an array`);
    model.files = entry.files.map((pin, i) => parsePin(pin, `${where}.files[${i}]`));
  }
  return model;
}

function parsePin(pin: unknown, where: string): PinnedFile {
  if (!isRecord(pin) || typeof pin.path !== "string" || pin.path === "") {
    throw new EaselError("config", `${where} needs a path`);
  }
  const parsed: PinnedFile = { path: pin.path };
  if (pin.sha256 !== undefined) {
    if (typeof pin.sha256 !== "string" || !SHA256_HEX.test(pin.sha256)) {
      throw new EaselError("config", `${where}.sha256 must be 64 lowercase hex digits`);
    }
    parsed.sha256 = pin.sha256;
  }
  if (pin.size !== undefined) {
    if (typeof pin.size !== "number" || !Number.isSafeInteger(pin.size) || pin.size < 0) {
      throw new EaselError("config", `${where}.size must be a whole number of bytes`);
    }
    parsed.size = pin.size;
  }
  return parsed;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** One file to fetch, with every checksum known for it. */
interface PlannedFile {
  path: string;
  size: number;
  /** From the tree's `lfs.oid`, or a pin. */
  sha256?: string;
  /** The tree's `oid` of a non-LFS file: sha1("blob <size>\0" + content). */
  gitSha1?: string;
}

/** Everything a request needs to know about the pull it belongs to. */
interface HubContext {
  model: KnownModel;
  endpoint: URL;
  token?: string;
  fetch: typeof fetch;
  signal?: AbortSignal;
}

/** Downloads the known export `name` into `<modelsDir>/<name>/`, resuming and verifying every file. */
export async function pullModel(name: string, options: PullOptions): Promise<PullResult> {
  const models = options.models ?? loadKnownModels();
  const model = models.find((candidate) => candidate.name === name);
  if (!model) {
    const shown = name.replace(/[^\x20-\x7e]/g, "?").slice(0, 64);
    throw new EaselError(
      "invalid_argument",
      `unknown model "${shown}"; known models: ${models.map((m) => m.name).join(", ") || "none"}`,
    );
  }
  const dir = modelDir(options.modelsDir, model.name);
  const ctx: HubContext = {
    model,
    endpoint: new URL(`${(options.endpoint ?? DEFAULT_HUB_ENDPOINT).replace(/\/+$/, "")}/`),
    fetch: options.fetch ?? fetch,
    ...(options.token ? { token: options.token } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  };

  const plan = planFiles(model, await listRepoFiles(ctx));
  const overallTotal = plan.reduce((sum, file) => sum + file.size, 0);
  let overallDone = 0;
  const files: PulledFile[] = [];
  await mkdir(dir, { recursive: true });
  for (const file of plan) {
    const base = overallDone;
    const report = (received: number) =>
      options.onProgress?.({
        file: file.path,
        received,
        total: file.size,
        overallReceived: base + received,
        overallTotal,
      });
    files.push(await fetchFile(ctx, file, join(dir, ...file.path.split("/")), report));
    overallDone += file.size;
  }
  return { dir, files };
}

/** The folder of a model, refused unless it is a plain name inside `modelsDir`. */
function modelDir(modelsDir: string, name: string): string {
  const dir = resolve(modelsDir, name);
  const rel = relative(resolve(modelsDir), dir);
  if (!MODEL_NAME.test(name) || rel !== name || isAbsolute(rel)) {
    throw new EaselError("invalid_argument", `model name "${name}" must be a plain folder name`);
  }
  return dir;
}

/** An entry of the hub's tree API (`GET /api/models/{repo}/tree/{revision}?recursive=true`). */
interface TreeEntry {
  type: string;
  path: string;
  size: number;
  oid: string;
  lfs?: { oid: string; size: number };
}

/** Lists every file of the repo at the revision, following `Link: rel="next"` pages. */
async function listRepoFiles(ctx: HubContext): Promise<TreeEntry[]> {
  const { repo, revision } = ctx.model;
  let url: URL | undefined = new URL(
    `api/models/${repo}/tree/${encodeURIComponent(revision)}?recursive=true`,
    ctx.endpoint,
  );
  const entries: TreeEntry[] = [];
  for (let page = 0; url; page++) {
    if (page >= MAX_TREE_PAGES) throw hubError(ctx, `the file list of ${repo} never ends`);
    const res = await hubRequest(ctx, url, { accept: "application/json" }, "the file list");
    if (!res.ok) throw await statusError(ctx, res, "the file list");
    let body: unknown;
    try {
      body = await res.json();
    } catch (cause) {
      throw hubError(ctx, `the hub's file list for ${repo}@${revision} is not JSON`, cause);
    }
    if (!Array.isArray(body))
      throw hubError(ctx, `the hub's file list for ${repo}@${revision} is not a list`);
    for (const item of body) entries.push(parseTreeEntry(ctx, item));
    url = nextPage(res.headers.get("link"), url);
  }
  return entries;
}

function parseTreeEntry(ctx: HubContext, item: unknown): TreeEntry {
  if (!isRecord(item) || typeof item.type !== "string" || typeof item.path !== "string") {
    throw hubError(ctx, "the hub's file list has an entry without type or path");
  }
  const entry: TreeEntry = {
    type: item.type,
    path: item.path,
    size: typeof item.size === "number" ? item.size : 0,
    oid: typeof item.oid === "string" ? item.oid.toLowerCase() : "",
  };
  if (isRecord(item.lfs) && typeof item.lfs.oid === "string") {
    entry.lfs = {
      oid: item.lfs.oid.toLowerCase(),
      size: typeof item.lfs.size === "number" ? item.lfs.size : entry.size,
    };
  }
  return entry;
}

/** The `rel="next"` target of a Link header, resolved against the page it came with. */
function nextPage(link: string | null, current: URL): URL | undefined {
  for (const part of link?.split(",") ?? []) {
    const match = /<([^>]*)>\s*;(.*)$/.exec(part.trim());
    if (match?.[1] !== undefined && /\brel="?next"?/.test(match[2] ?? "")) return new URL(match[1], current);
  }
  return undefined;
}

/** The layout files of the tree with their checksums, checked against the pins and for completeness. */
function planFiles(model: KnownModel, tree: TreeEntry[]): PlannedFile[] {
  const where = `${model.repo}@${model.revision}`;
  const byPath = new Map(tree.filter((e) => e.type === "file").map((e) => [e.path, e]));
  for (const pin of model.files ?? []) {
    const entry = byPath.get(pin.path);
    if (!entry) {
      throw new EaselError("download_failed", `${where} has no ${pin.path}, which known-models.json pins`);
    }
    const size = entry.lfs?.size ?? entry.size;
    if (pin.size !== undefined && pin.size !== size) {
      throw new EaselError(
        "download_failed",
        `refusing ${where}: ${pin.path} is ${size} bytes on the hub but known-models.json pins ${pin.size}`,
      );
    }
    if (pin.sha256 !== undefined && entry.lfs && pin.sha256 !== entry.lfs.oid) {
      throw new EaselError(
        "download_failed",
        `refusing ${where}: ${pin.path} has sha256 ${entry.lfs.oid} on the hub but known-models.json pins ${pin.sha256}`,
      );
    }
  }
  const missing = REQUIRED_FILES.filter((path) => !byPath.has(path));
  if (missing.length > 0) {
    throw new EaselError(
      "not_supported",
      `${where} is not an ONNX export in the diffusers layout: it lacks ${missing.join(", ")}`,
    );
  }
  const pins = new Map((model.files ?? []).map((pin) => [pin.path, pin]));
  return [...byPath.values()]
    .filter((entry) => LAYOUT_FILES.has(entry.path))
    .sort((a, b) => a.path.localeCompare(b.path))
    .map((entry) => {
      const sha256 = entry.lfs?.oid ?? pins.get(entry.path)?.sha256;
      return {
        path: entry.path,
        size: entry.lfs?.size ?? entry.size,
        ...(sha256 ? { sha256 } : {}),
        ...(!entry.lfs && entry.oid ? { gitSha1: entry.oid } : {}),
      };
    });
}

/** The checksums of one file, computed as its bytes go by (git's sha1 only where the tree gives one). */
class Digest {
  private readonly sha256: Hash = createHash("sha256");
  private readonly gitSha1: Hash | undefined;

  constructor(file: PlannedFile) {
    // git hashes a blob with its header: the hub's oid of a small file is sha1("blob <size>\0" + content).
    this.gitSha1 = file.gitSha1 === undefined ? undefined : createHash("sha1").update(`blob ${file.size}\0`);
  }

  update(chunk: Uint8Array): void {
    this.sha256.update(chunk);
    this.gitSha1?.update(chunk);
  }

  digest(): Checksums {
    const sha256 = this.sha256.digest("hex");
    return this.gitSha1 ? { sha256, gitSha1: this.gitSha1.digest("hex") } : { sha256 };
  }
}

interface Checksums {
  sha256: string;
  gitSha1?: string;
}

/** Which expected checksum a computed one misses, or undefined when all agree. */
function checksumMismatch(file: PlannedFile, got: Checksums): string | undefined {
  if (file.sha256 !== undefined && file.sha256 !== got.sha256) {
    return `expected sha256 ${file.sha256}, got ${got.sha256}`;
  }
  if (file.gitSha1 !== undefined && file.gitSha1 !== got.gitSha1) {
    return `expected git blob sha1 ${file.gitSha1}, got ${got.gitSha1}`;
  }
  return undefined;
}

/** Feeds a file on disk to a digest in chunks (files are GBs, never read whole). */
async function hashFile(path: string, digest: Digest): Promise<void> {
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }))
    digest.update(chunk as Buffer);
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    const info = await stat(path);
    return info.isFile() ? info.size : undefined;
  } catch {
    return undefined;
  }
}

/** Brings one file to its final name: skips it when present and intact, else downloads or resumes it. */
async function fetchFile(
  ctx: HubContext,
  file: PlannedFile,
  finalPath: string,
  report: (received: number) => void,
): Promise<PulledFile> {
  if ((await sizeOf(finalPath)) === file.size) {
    const got = new Digest(file);
    await hashFile(finalPath, got);
    const sums = got.digest();
    if (!checksumMismatch(file, sums)) {
      report(file.size);
      return { path: file.path, bytes: file.size, sha256: sums.sha256, resumed: false, skipped: true };
    }
  }
  await mkdir(dirname(finalPath), { recursive: true });
  const partPath = `${finalPath}.part`;
  const { digest, resumed } = await downloadToPart(ctx, file, partPath, report);
  const sums = digest.digest();
  const mismatch = checksumMismatch(file, sums);
  if (mismatch) {
    await rm(partPath, { force: true });
    throw new EaselError(
      "download_failed",
      `checksum mismatch for ${file.path} of ${ctx.model.repo}: ${mismatch}; the download was deleted, ` +
        `rerun \`easel models pull ${ctx.model.name}\` to fetch it again`,
    );
  }
  await rename(partPath, finalPath);
  return { path: file.path, bytes: file.size, sha256: sums.sha256, resumed, skipped: false };
}

/**
 * Fills `<path>.part` with the whole file, continuing an existing part with a Range request. Returns the
 * digest of the complete part; the part is fsynced so that a rename after it cannot expose lost bytes.
 */
async function downloadToPart(
  ctx: HubContext,
  file: PlannedFile,
  partPath: string,
  report: (received: number) => void,
): Promise<{ digest: Digest; resumed: boolean }> {
  const what = file.path;
  const url = new URL(
    `${ctx.model.repo}/resolve/${encodeURIComponent(ctx.model.revision)}/${file.path
      .split("/")
      .map(encodeURIComponent)
      .join("/")}`,
    ctx.endpoint,
  );
  // Two rounds at most: a part the server will not continue (a bad 206 or a 416 for a short part) is
  // dropped once and the file fetched from its start.
  for (let round = 0; ; round++) {
    let offset = (await sizeOf(partPath)) ?? 0;
    if (offset > file.size) {
      await rm(partPath, { force: true });
      offset = 0;
    }
    let digest = new Digest(file);
    if (offset > 0) await hashFile(partPath, digest);
    report(offset);

    // Identity encoding: byte offsets of a Range must count stored bytes, not compressed ones.
    const headers: Record<string, string> = { "accept-encoding": "identity" };
    if (offset > 0) headers.range = `bytes=${offset}-`;
    const res = await hubRequest(ctx, url, headers, what);

    if (res.status === 416 && offset > 0) {
      await res.body?.cancel();
      if (offset === file.size) return { digest, resumed: true };
      if (round === 0) {
        await rm(partPath, { force: true });
        continue;
      }
    }
    if (res.status === 206 && offset > 0) {
      if (contentRangeStart(res.headers.get("content-range")) !== offset) {
        await res.body?.cancel();
        if (round === 0) {
          await rm(partPath, { force: true });
          continue;
        }
        throw hubError(ctx, `the hub answered a resume of ${what} with the wrong byte range`);
      }
      await streamToPart(ctx, res, file, partPath, offset, digest, report);
      return { digest, resumed: true };
    }
    if (res.status === 200) {
      // A 200 to a Range request means the server sends the whole file: start the part over.
      if (offset > 0) {
        digest = new Digest(file);
        report(0);
      }
      await streamToPart(ctx, res, file, partPath, 0, digest, report);
      return { digest, resumed: false };
    }
    throw await statusError(ctx, res, what);
  }
}

function contentRangeStart(header: string | null): number | undefined {
  const match = /^bytes\s+(\d+)-\d+\/(\d+|\*)$/i.exec(header?.trim() ?? "");
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

/** Appends the response body to the part from `offset` on, hashing and reporting each chunk; never buffers. */
async function streamToPart(
  ctx: HubContext,
  res: Response,
  file: PlannedFile,
  partPath: string,
  offset: number,
  digest: Digest,
  report: (received: number) => void,
): Promise<void> {
  const handle = await open(partPath, offset > 0 ? "a" : "w");
  let received = offset;
  try {
    const reader = res.body?.getReader();
    for (;;) {
      if (!reader) break;
      const { done, value } = await reader.read();
      if (done) break;
      if (received + value.length > file.size) {
        await reader.cancel();
        await handle.close();
        await rm(partPath, { force: true });
        throw hubError(
          ctx,
          `the hub sent more than the ${file.size} bytes of ${file.path}; the part was deleted`,
        );
      }
      await handle.write(value);
      digest.update(value);
      received += value.length;
      report(received);
    }
    await handle.sync();
  } catch (cause) {
    if (cause instanceof EaselError) throw cause;
    throw interrupted(ctx, `${file.path} after ${received} of ${file.size} bytes`, cause);
  } finally {
    await handle.close().catch(() => {});
  }
  if (received !== file.size) {
    throw hubError(
      ctx,
      `the download of ${file.path} ended after ${received} of ${file.size} bytes; ` +
        `rerun \`easel models pull ${ctx.model.name}\` to resume`,
    );
  }
}

/**
 * A GET that follows redirects itself, so the token goes to the hub's origin only: the CDN the hub redirects
 * to gets pre-signed URLs, and an Authorization header there would leak the token.
 */
async function hubRequest(
  ctx: HubContext,
  start: URL,
  headers: Record<string, string>,
  what: string,
): Promise<Response> {
  let url = start;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const sent = new Headers(headers);
    if (ctx.token && url.origin === ctx.endpoint.origin) sent.set("authorization", `Bearer ${ctx.token}`);
    let res: Response;
    try {
      res = await ctx.fetch(url, {
        headers: sent,
        redirect: "manual",
        ...(ctx.signal ? { signal: ctx.signal } : {}),
      });
    } catch (cause) {
      throw interrupted(ctx, what, cause);
    }
    const location = res.headers.get("location");
    if (res.status < 300 || res.status >= 400 || location === null) return res;
    await res.body?.cancel();
    url = new URL(location, url);
  }
  throw hubError(ctx, `more than ${MAX_REDIRECTS} redirects while fetching ${what}`);
}

/** A network failure or cancellation: the part stays, so the message says how to resume. */
function interrupted(ctx: HubContext, what: string, cause: unknown): EaselError {
  if (ctx.signal?.aborted) {
    return new EaselError(
      "cancelled",
      `download of ${ctx.model.name} cancelled during ${what}; rerun \`easel models pull ${ctx.model.name}\` to resume`,
      { cause },
    );
  }
  const reason =
    cause instanceof Error ? (cause.cause instanceof Error ? cause.cause.message : cause.message) : "";
  return new EaselError(
    "download_failed",
    `network error while downloading ${what} from ${ctx.endpoint.host}${reason ? ` (${reason})` : ""}; ` +
      `rerun \`easel models pull ${ctx.model.name}\` to resume where it stopped`,
    { cause },
  );
}

/** The error for an HTTP status the pull cannot continue past; 401/403 explain HF_TOKEN. */
async function statusError(ctx: HubContext, res: Response, what: string): Promise<EaselError> {
  await res.body?.cancel();
  const { repo, revision } = ctx.model;
  // The hub explains refusals in X-Error-Message; it never echoes the token, but keep it short and printable.
  const detail = (res.headers.get("x-error-message") ?? "").replace(/[^\x20-\x7e]/g, "").slice(0, 200);
  const said = detail ? ` (the hub says: ${detail})` : "";
  if (res.status === 401 || res.status === 403) {
    const hint = ctx.token
      ? `the HF_TOKEN given has no access to it: accept the model's terms on https://huggingface.co/${repo} ` +
        "with the account the token belongs to, or use a token with read access"
      : "set HF_TOKEN to a Hugging Face access token (https://huggingface.co/settings/tokens) of an account " +
        `that accepted the model's terms on https://huggingface.co/${repo}`;
    return new EaselError(
      "download_failed",
      `${repo} is gated or private: HTTP ${res.status} for ${what}${said}; ${hint}`,
    );
  }
  if (res.status === 404) {
    return new EaselError(
      "download_failed",
      `${what} was not found on the hub at ${repo}@${revision} (HTTP 404)${said}; check models/known-models.json`,
    );
  }
  return hubError(
    ctx,
    `the hub answered HTTP ${res.status} for ${what}${said}; rerun \`easel models pull ${ctx.model.name}\` to resume`,
  );
}

function hubError(ctx: HubContext, message: string, cause?: unknown): EaselError {
  return new EaselError(
    "download_failed",
    `${ctx.model.name}: ${message}`,
    cause === undefined ? {} : { cause },
  );
}
