import { mkdir, open, rename, rm, stat } from "node:fs/promises";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { HubApiError, type ListFileEntry, listFiles } from "@huggingface/hub";
import { EaselError } from "../../core/errors.ts";
import { Digest } from "./hub/checksum.ts";
import { DEFAULT_HUB_TIMEOUT_MS, HubTimeoutError, hubFetch } from "./hub/hub-fetch.ts";
import { findKnownModel, type KnownModel, loadKnownModels } from "./hub/known-models.ts";
import { type PlannedFile, planFiles } from "./hub/layout.ts";
import { MODEL_NAME } from "./model-folder.ts";

/**
 * `easel models pull NAME`: downloads a known ONNX Stable Diffusion export from the Hugging Face hub into
 * `models/NAME/`. Files stream to `<path>.part` and resume with a Range request after an interruption; every
 * byte is checked against the checksum the hub's tree publishes (sha256 for LFS files, the git blob sha1 for
 * small files) before the file gets its final name, so a folder never holds a truncated or corrupt file.
 *
 * From @huggingface/hub: `listFiles`, for the recursive tree of the revision with each file's git oid and LFS
 * sha256 (`lfs.oid`), its `Link: rel="next"` pagination and the hub's API errors (HubApiError).
 *
 * Hand-written, because the package lacks it or does it in a way a resumable, verified pull cannot use:
 * - the GET of each file's bytes (`resolve`, with `Range` to resume a `.part`): `downloadFile` returns a
 *   WebBlob whose `stream()` hides the response (a 200 answering a Range looks like a 206) and turns errors
 *   into strings; `fileDownloadInfo` probes every file first with `Range: bytes=0-0` (two more requests per
 *   LFS file) and throws when a server ignores Range, which a mirror may; its xet path is not used: a
 *   xet-stored file comes through the hub's redirect like an LFS file, Range included;
 * - the `.part` files, their resume and the checks before the rename (the package verifies nothing it
 *   downloads), the layout filter (hub/layout.ts), the HF_TOKEN messages;
 * - in hub/hub-fetch.ts, the fetch given to the package: the token kept off the CDN (the package sends it on
 *   every request and lets fetch follow redirects) and a 30 s deadline on every answer and body chunk.
 */

export { DEFAULT_HUB_TIMEOUT_MS } from "./hub/hub-fetch.ts";
export {
  DEFAULT_KNOWN_MODELS_FILE,
  findKnownModel,
  type KnownModel,
  loadKnownModels,
  type ModelFamily,
  type PinnedFile,
} from "./hub/known-models.ts";

/** The hub `easel models pull` talks to unless an endpoint is given (mirrors speak the same API). */
export const DEFAULT_HUB_ENDPOINT = "https://huggingface.co";

/** Progress of a pull, in bytes; files already present or resumed count as received. */
export interface PullProgress {
  file: string;
  /** Position of `file` in the pull, from 0, and the number of files. */
  index: number;
  count: number;
  /** "checking": hashing a file or part already on disk; "downloading": bytes arriving. */
  stage: "checking" | "downloading";
  received: number;
  total: number;
  overallReceived: number;
  overallTotal: number;
  /** Bytes this pull took from the network so far (what a transfer rate is made of). */
  downloaded: number;
}

/** How and where `pullModel` downloads. */
export interface PullOptions {
  /** The models folder; the export lands in `<modelsDir>/<name>/`. */
  modelsDir: string;
  /** Hub base URL (HF_ENDPOINT); default {@link DEFAULT_HUB_ENDPOINT}. */
  endpoint?: string;
  /** Hugging Face access token (HF_TOKEN), sent to the hub only, never to the CDN it redirects to. */
  token?: string;
  /** The known models to pick from; default {@link loadKnownModels}(). */
  models?: KnownModel[];
  /** How long the hub may take to answer, or to send the next chunk; default 30 s. */
  timeoutMs?: number;
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

/** One pull: the model, the hub parameters every @huggingface/hub call takes (its fetch is hubFetch). */
interface Pull {
  model: KnownModel;
  signal: AbortSignal | undefined;
  hub: { repo: string; revision: string; hubUrl: string; fetch: typeof fetch; accessToken?: string };
}

type Report = (stage: PullProgress["stage"], received: number) => void;

/** Downloads the known export `name` into `<modelsDir>/<name>/`, resuming and verifying every file. */
export async function pullModel(name: string, options: PullOptions): Promise<PullResult> {
  const model = findKnownModel(name, options.models ?? loadKnownModels());
  const dir = modelDir(options.modelsDir, model.name);
  const { token, signal, timeoutMs = DEFAULT_HUB_TIMEOUT_MS } = options;
  const hubUrl = (options.endpoint ?? DEFAULT_HUB_ENDPOINT).replace(/\/+$/, "");
  const endpoint = new URL(hubUrl);
  const fetch = hubFetch({
    endpoint,
    timeoutMs,
    ...(signal && { signal }),
    ...(options.fetch && { fetch: options.fetch }),
  });
  const { repo, revision } = model;
  const pull: Pull = {
    model,
    signal,
    hub: { repo, revision, hubUrl, fetch, ...(token && { accessToken: token }) },
  };

  const tree = await guarded(pull, "the file list", async () => {
    const entries: ListFileEntry[] = [];
    // listFiles puts the revision into the URL as it is given.
    const listing = { ...pull.hub, revision: encodeURIComponent(revision), recursive: true };
    for await (const entry of listFiles(listing)) {
      // listFiles follows `Link: rel="next"` for as long as there is one: guard against a loop.
      if (entries.push(entry) > 1_000_000) throw fail(`the file list of ${repo}@${revision} never ends`);
    }
    return entries;
  });
  const plan = planFiles(model, tree);
  const overallTotal = plan.reduce((sum, file) => sum + file.size, 0);
  let overallDone = 0;
  let downloaded = 0;
  const files: PulledFile[] = [];
  for (const [index, file] of plan.entries()) {
    let last = 0;
    const report: Report = (stage, received) => {
      // Only bytes that arrive count as downloaded: not a file checked on disk, not a part resumed from.
      if (stage === "downloading" && received > last) downloaded += received - last;
      last = received;
      const overallReceived = overallDone + received;
      options.onProgress?.({
        file: file.path,
        index,
        count: plan.length,
        stage,
        received,
        total: file.size,
        overallReceived,
        overallTotal,
        downloaded,
      });
    };
    files.push(await fetchFile(pull, file, join(dir, ...file.path.split("/")), report));
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

async function sizeOf(path: string): Promise<number | undefined> {
  const info = await stat(path).catch(() => undefined);
  return info?.isFile() ? info.size : undefined;
}

const fail = (message: string, cause?: unknown) =>
  new EaselError("download_failed", message, cause === undefined ? undefined : { cause });

const rerun = (pull: Pull) => `rerun \`easel models pull ${pull.model.name}\` to resume where it stopped`;

/** Brings one file to its final name: skips it when present and intact, else finishes, resumes or downloads it. */
async function fetchFile(
  pull: Pull,
  file: PlannedFile,
  finalPath: string,
  report: Report,
): Promise<PulledFile> {
  const partPath = `${finalPath}.part`;
  // A file or a complete part on disk is trusted for its checksum, never for its size alone.
  for (const path of [finalPath, partPath]) {
    if ((await sizeOf(path)) !== file.size) continue;
    report("checking", 0);
    const { sha256, mismatch } = (await new Digest(file).updateFromFile(path)).finish();
    const isPart = path === partPath;
    if (mismatch === undefined) {
      if (isPart) await rename(partPath, finalPath);
      report("checking", file.size);
      return { path: file.path, bytes: file.size, sha256, resumed: isPart, skipped: !isPart };
    }
    if (isPart) await rm(partPath, { force: true });
  }
  await mkdir(dirname(finalPath), { recursive: true });
  const { digest, resumed } = await downloadToPart(pull, file, partPath, report);
  const { sha256, mismatch } = digest.finish();
  if (mismatch !== undefined) {
    await rm(partPath, { force: true });
    throw fail(
      `checksum mismatch for ${file.path} of ${pull.model.repo}: ${mismatch}; the download was deleted, ` +
        `rerun \`easel models pull ${pull.model.name}\` to fetch it again`,
    );
  }
  await rename(partPath, finalPath);
  report("downloading", file.size);
  return { path: file.path, bytes: file.size, sha256, resumed, skipped: false };
}

/**
 * Fills `<path>.part` with the whole file, continuing an existing part with a Range request. Returns the
 * digest of the complete part; the part is fsynced so that a rename after it cannot expose lost bytes.
 */
async function downloadToPart(pull: Pull, file: PlannedFile, partPath: string, report: Report) {
  let offset = (await sizeOf(partPath)) ?? 0;
  if (offset > file.size) await rm(partPath, { force: true });
  if (offset > file.size) offset = 0;
  let digest = new Digest(file);
  if (offset > 0) {
    report("checking", 0);
    await digest.updateFromFile(partPath);
    report("checking", offset);
  }
  const { hubUrl, repo, revision, accessToken } = pull.hub;
  const path = file.path.split("/").map(encodeURIComponent).join("/");
  // Identity encoding: byte offsets of a Range must count stored bytes, not compressed ones.
  const headers: Record<string, string> = { "accept-encoding": "identity" };
  if (offset > 0) headers.range = `bytes=${offset}-`;
  if (accessToken) headers.authorization = `Bearer ${accessToken}`;
  const url = `${hubUrl}/${repo}/resolve/${encodeURIComponent(revision)}/${path}`;
  const res = await guarded(pull, file.path, () => pull.hub.fetch(url, { headers }));
  const range = /^bytes (\d+)-/i.exec(res.headers.get("content-range") ?? "");
  const start = res.status === 200 ? 0 : res.status === 206 ? Number(range?.[1]) : Number.NaN;
  if (start !== 0 && start !== offset) {
    // A 416 (the hub's file is shorter) or a range other than asked: the part goes, a rerun starts over.
    if (res.status === 206 || res.status === 416) await rm(partPath, { force: true });
    if (res.status !== 206) throw await statusError(pull, res, file.path);
    await res.body?.cancel();
    throw fail(`the hub answered a resume of ${file.path} from byte ${start}, not ${offset}; ${rerun(pull)}`);
  }
  // A 200 to a Range request means the server sends the whole file: start the part over.
  if (start === 0 && offset > 0) {
    digest = new Digest(file);
    report("downloading", 0);
  }
  await appendBody(pull, res, file, partPath, start, digest, report);
  return { digest, resumed: start > 0 };
}

/** Appends the response body to the part from `offset` on, hashing and reporting each chunk; never buffers. */
async function appendBody(
  pull: Pull,
  res: Response,
  file: PlannedFile,
  partPath: string,
  offset: number,
  digest: Digest,
  report: Report,
): Promise<void> {
  const handle = await open(partPath, offset > 0 ? "a" : "w");
  let received = offset;
  try {
    for await (const chunk of res.body ?? []) {
      if (received + chunk.length > file.size) {
        await handle.close();
        await rm(partPath, { force: true });
        throw fail(`the hub sent more than the ${file.size} bytes of ${file.path}; the part was deleted`);
      }
      await handle.write(chunk);
      digest.update(chunk);
      received += chunk.length;
      report("downloading", received);
    }
    await handle.sync();
  } catch (err) {
    throw translate(pull, err, `${file.path} after ${received} of ${file.size} bytes`);
  } finally {
    await handle.close().catch(() => {});
  }
  if (received !== file.size) {
    throw fail(`the download of ${file.path} ended after ${received} of ${file.size} bytes; ${rerun(pull)}`);
  }
}

async function guarded<T>(pull: Pull, what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw translate(pull, err, what);
  }
}

/** Any failure of a request as an EaselError that says what to do: cancelled, timed out, refused, offline. */
function translate(pull: Pull, err: unknown, what: string): EaselError {
  const { hubUrl } = pull.hub;
  if (err instanceof EaselError) return err;
  if (pull.signal?.aborted) {
    const message = `download of ${pull.model.name} cancelled during ${what}; ${rerun(pull)}`;
    return new EaselError("cancelled", message, { cause: err });
  }
  if (err instanceof HubTimeoutError) {
    const server =
      err.url.origin === new URL(hubUrl).origin
        ? `the Hugging Face hub at ${hubUrl}`
        : `${err.url.host} (where the hub at ${hubUrl} sent the download)`;
    const stalled = err.stage === "answer" ? "did not answer within" : "stopped sending for";
    return fail(
      `${server} ${stalled} ${err.timeoutMs / 1000} s while fetching ${what}; check the network, and ` +
        `HF_ENDPOINT if it points at a mirror; ${rerun(pull)}`,
    );
  }
  if (err instanceof HubApiError) {
    const said = err.data?.error ?? err.data?.message; // the hub's explanation, parsed by @huggingface/hub
    return statusMessage(pull, err.statusCode, what, typeof said === "string" ? said : "");
  }
  if (err instanceof SyntaxError)
    return fail(`the hub at ${hubUrl} answered ${what} with something not JSON`);
  if (err instanceof TypeError && /access token/i.test(err.message)) {
    return new EaselError("config", `HF_TOKEN must be a Hugging Face access token (hf_…): ${err.message}`);
  }
  const reason = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : "";
  const from = `from ${new URL(hubUrl).host}${reason ? ` (${reason})` : ""}`;
  return fail(`network error while downloading ${what} ${from}; ${rerun(pull)}`, err);
}

/** A refusal the pull made itself: the hub explains it in `X-Error-Message` (and the body). */
async function statusError(pull: Pull, res: Response, what: string): Promise<EaselError> {
  const header = res.headers.get("x-error-message");
  const said = header ?? (await res.text().catch(() => ""));
  if (header !== null) await res.body?.cancel().catch(() => {});
  return statusMessage(pull, res.status, what, said);
}

/** The error for an HTTP status the pull cannot continue past; 401/403 explain HF_TOKEN. */
function statusMessage(pull: Pull, status: number, what: string, detail: string): EaselError {
  const { repo, revision } = pull.model;
  // The hub never echoes the token, but keep what it says short and printable.
  const shown = detail.replace(/[^\x20-\x7e]/g, "").slice(0, 200);
  const said = shown ? ` (the hub says: ${shown})` : "";
  const terms = `https://huggingface.co/${repo}`;
  if (status === 401 || status === 403) {
    const hint = pull.hub.accessToken
      ? `the HF_TOKEN given has no access to it: accept the model's terms on ${terms} with the account the ` +
        "token belongs to, or use a token with read access"
      : "set HF_TOKEN to a Hugging Face access token (https://huggingface.co/settings/tokens) of an account " +
        `that accepted the model's terms on ${terms}`;
    return fail(`${repo} is gated or private: HTTP ${status} for ${what}${said}; ${hint}`);
  }
  if (status === 404) {
    return fail(
      `${what} was not found on the hub at ${repo}@${revision} (HTTP 404)${said}; check models/known-models.json`,
    );
  }
  return fail(`the hub answered HTTP ${status} for ${what}${said}; ${rerun(pull)}`);
}
