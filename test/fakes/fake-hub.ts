import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A local stand-in for the Hugging Face hub, speaking the endpoints `easel models pull` calls (the tree through
 * @huggingface/hub's `listFiles`, `resolve` itself), with the real hub's headers:
 * - `GET /api/models/{repo}/tree/{revision}?recursive=true&expand=false`: the tree JSON with git blob oids and
 *   LFS sha256 oids, paginated with an absolute `Link: <…>; rel="next"` header when asked;
 * - `GET /{repo}/resolve/{revision}/{path}`: small files served by the hub itself (`ETag` the git oid), LFS
 *   files redirected with a 302 to a separate CDN server (another origin, as on the real hub) with
 *   `X-Linked-Size`, `X-Linked-Etag` (the sha256) and `X-Repo-Commit`; gated repos answer 401/403 with
 *   `X-Error-Code: GatedRepo`, `X-Error-Message` and the message as a text body.
 * Hub and CDN serve Range requests (206 with `Content-Range`, 416). Failures can be injected: a connection
 * dropped or stalled after N bytes once, corrupted bytes, a server ignoring Range, a hub that accepts
 * connections and never answers.
 */

/** One file of a fake repo; `lfs` defaults to true for weights (`.onnx`, `.pb`, `.onnx_data`). */
export interface FakeHubFile {
  path: string;
  content: Uint8Array;
  lfs?: boolean;
}

/** A fake repo at one revision. */
export interface FakeHubRepo {
  repo: string;
  revision: string;
  files: FakeHubFile[];
  /** When set, `resolve` answers 401 without `Authorization: Bearer <token>` and 403 with another token. */
  token?: string;
  /** Tree entries per page; pages link with `Link: <…>; rel="next"`. Default: one page. */
  pageSize?: number;
}

/** One request either server received. */
export interface FakeHubRequest {
  server: "hub" | "cdn";
  url: string;
  range?: string;
  authorization?: string;
  status: number;
}

interface StoredFile {
  repo: FakeHubRepo;
  path: string;
  content: Buffer;
  lfs: boolean;
  sha256: string;
  gitOid: string;
  pointerSize: number;
}

const isWeight = (path: string) => /\.(onnx|pb|onnx_data|onnx\.data|safetensors|bin)$/.test(path);

const gitBlobSha1 = (content: Uint8Array) =>
  createHash("sha1").update(`blob ${content.length}\0`).update(content).digest("hex");

/** The text git stores for an LFS file; the tree's `oid` of an LFS file is the blob sha1 of this pointer. */
const lfsPointer = (sha256: string, size: number) =>
  Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256}\nsize ${size}\n`);

/** The fake hub: two local servers (hub and CDN), request log, bytes served and failure switches. */
export class FakeHub {
  /** Every request, in order. */
  readonly requests: FakeHubRequest[] = [];
  /** When true, Range headers are ignored and whole files are sent with 200. */
  ignoreRange = false;
  /** When true, the hub accepts each request and never answers it (logged with status 0). */
  neverAnswer = false;

  private readonly files = new Map<string, StoredFile>();
  private readonly served = new Map<string, number>();
  private readonly drops = new Map<string, { bytes: number; stall: boolean }>();
  private readonly corrupted = new Set<string>();
  private hubServer: Server | undefined;
  private cdnServer: Server | undefined;
  private hubBase = "";
  private cdnBase = "";

  private constructor(private readonly repos: FakeHubRepo[]) {
    for (const repo of repos) {
      for (const file of repo.files) {
        const content = Buffer.from(file.content);
        const sha256 = createHash("sha256").update(content).digest("hex");
        const lfs = file.lfs ?? isWeight(file.path);
        const pointer = lfsPointer(sha256, content.length);
        this.files.set(key(repo.repo, file.path), {
          repo,
          path: file.path,
          content,
          lfs,
          sha256,
          gitOid: gitBlobSha1(lfs ? pointer : content),
          pointerSize: pointer.length,
        });
      }
    }
  }

  /** Starts the hub and its CDN on 127.0.0.1 with free ports. */
  static async start(repos: FakeHubRepo[]): Promise<FakeHub> {
    const hub = new FakeHub(repos);
    hub.hubServer = createServer((req, res) => hub.onHub(req, res));
    hub.cdnServer = createServer((req, res) => hub.onCdn(req, res));
    hub.hubBase = await listen(hub.hubServer);
    hub.cdnBase = await listen(hub.cdnServer);
    return hub;
  }

  /** The hub's base URL, the `endpoint` of a pull. */
  get url(): string {
    return this.hubBase;
  }

  /** Content bytes of `path` in `repo` written to clients so far (by either server). */
  bytesServed(repo: string, path: string): number {
    return this.served.get(key(repo, path)) ?? 0;
  }

  /**
   * The next response with more than `bytes` bytes of `path` stops after `bytes` and drops the connection
   * (a probe such as `Range: bytes=0-0` is not it).
   */
  dropConnectionOnce(repo: string, path: string, bytes: number): void {
    this.drops.set(key(repo, path), { bytes, stall: false });
  }

  /** Like {@link dropConnectionOnce}, but the connection stays open and silent after `bytes`. */
  stallOnce(repo: string, path: string, bytes: number): void {
    this.drops.set(key(repo, path), { bytes, stall: true });
  }

  /** Serves `path` with one byte flipped (same length) until switched off. */
  corrupt(repo: string, path: string, on = true): void {
    if (on) this.corrupted.add(key(repo, path));
    else this.corrupted.delete(key(repo, path));
  }

  /** The tree JSON entries of a repo, as the real API lists them (directories first, then files). */
  treeOf(repo: FakeHubRepo): Record<string, unknown>[] {
    const stored = [...this.files.values()].filter((f) => f.repo === repo);
    const dirs = new Set<string>();
    for (const file of stored) {
      const parts = file.path.split("/");
      for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join("/"));
    }
    return [
      ...[...dirs].sort().map((path) => ({
        type: "directory",
        oid: createHash("sha1").update(`tree ${path}`).digest("hex"),
        size: 0,
        path,
      })),
      ...stored
        .sort((a, b) => a.path.localeCompare(b.path))
        .map((file) => ({
          type: "file",
          oid: file.gitOid,
          size: file.content.length,
          path: file.path,
          ...(file.lfs
            ? { lfs: { oid: file.sha256, size: file.content.length, pointerSize: file.pointerSize } }
            : {}),
        })),
    ];
  }

  /** Stops both servers and drops open connections. */
  async close(): Promise<void> {
    await Promise.all(
      [this.hubServer, this.cdnServer].map(
        (server) =>
          new Promise<void>((done) => {
            if (!server) return done();
            server.closeAllConnections();
            server.close(() => done());
          }),
      ),
    );
  }

  private log(server: "hub" | "cdn", req: IncomingMessage, status: number): void {
    this.requests.push({
      server,
      url: req.url ?? "",
      status,
      ...(req.headers.range ? { range: req.headers.range } : {}),
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
    });
  }

  private reply(
    server: "hub" | "cdn",
    req: IncomingMessage,
    res: ServerResponse,
    status: number,
    body = "",
    headers: Record<string, string> = {},
  ): void {
    this.log(server, req, status);
    res.writeHead(status, { "content-length": Buffer.byteLength(body), ...headers });
    res.end(body);
  }

  private onHub(req: IncomingMessage, res: ServerResponse): void {
    if (this.neverAnswer) {
      this.log("hub", req, 0);
      return;
    }
    const url = new URL(req.url ?? "/", this.hubBase);
    const tree = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/([^/]+)$/.exec(url.pathname);
    if (tree?.[1] && tree[2]) {
      this.onTree(req, res, url, tree[1], decodeURIComponent(tree[2]));
      return;
    }
    const resolved = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (resolved?.[1] && resolved[2] && resolved[3]) {
      const path = resolved[3].split("/").map(decodeURIComponent).join("/");
      this.onResolve(req, res, resolved[1], decodeURIComponent(resolved[2]), path);
      return;
    }
    this.reply("hub", req, res, 404, "{}", { "x-error-code": "EntryNotFound" });
  }

  private findRepo(repo: string, revision: string): FakeHubRepo | undefined {
    return this.repos.find((r) => r.repo === repo && r.revision === revision);
  }

  private onTree(req: IncomingMessage, res: ServerResponse, url: URL, repo: string, revision: string): void {
    const found = this.findRepo(repo, revision);
    if (!found) {
      this.reply("hub", req, res, 404, '{"error":"Revision Not Found"}', {
        "x-error-code": "RevisionNotFound",
      });
      return;
    }
    // Like the hub: without recursive=true only the top level is listed.
    const recursive = url.searchParams.get("recursive") === "true";
    const entries = this.treeOf(found).filter((e) => recursive || !String(e.path).includes("/"));
    const size = found.pageSize ?? entries.length;
    const start = Number(url.searchParams.get("cursor") ?? 0);
    const page = entries.slice(start, start + size);
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (start + size < entries.length) {
      const next = new URL(url);
      next.searchParams.set("cursor", String(start + size));
      headers.link = `<${next.href}>; rel="next"`;
    }
    this.reply("hub", req, res, 200, JSON.stringify(page), headers);
  }

  private onResolve(
    req: IncomingMessage,
    res: ServerResponse,
    repo: string,
    revision: string,
    path: string,
  ): void {
    const found = this.findRepo(repo, revision);
    if (found?.token !== undefined) {
      const auth = req.headers.authorization;
      if (auth !== `Bearer ${found.token}`) {
        const status = auth === undefined ? 401 : 403;
        const message =
          status === 401
            ? `Access to model ${repo} is restricted. You must have access to it and be authenticated to access it. Please log in.`
            : `Access to model ${repo} is restricted and you are not in the authorized list. Visit https://huggingface.co/${repo} to ask for access.`;
        this.reply("hub", req, res, status, message, {
          "content-type": "text/plain; charset=utf-8",
          "x-error-code": "GatedRepo",
          "x-error-message": message,
        });
        return;
      }
    }
    const file = found && this.files.get(key(repo, path));
    if (!file) {
      this.reply("hub", req, res, 404, "", { "x-error-code": "EntryNotFound" });
      return;
    }
    if (file.lfs) {
      // Like the hub: LFS content comes from a pre-signed CDN URL on another origin.
      const location = `${this.cdnBase}/cdn/${encodeURIComponent(repo)}/${file.sha256}?X-Amz-Signature=fake`;
      this.reply("hub", req, res, 302, "", {
        location,
        "x-linked-size": String(file.content.length),
        "x-linked-etag": `"${file.sha256}"`,
        "x-repo-commit": commitOf(found),
        etag: `"${file.gitOid}"`,
      });
      return;
    }
    this.sendContent("hub", req, res, file, { "x-repo-commit": commitOf(found) });
  }

  private onCdn(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", this.cdnBase);
    const match = /^\/cdn\/([^/]+)\/([0-9a-f]{64})$/.exec(url.pathname);
    const repo = match?.[1] ? decodeURIComponent(match[1]) : "";
    const file = [...this.files.values()].find((f) => f.repo.repo === repo && f.sha256 === match?.[2]);
    if (!file) {
      this.reply("cdn", req, res, 404, "NoSuchKey");
      return;
    }
    this.sendContent("cdn", req, res, file);
  }

  /** Sends a file (or the asked range of it) with 200/206/416, applying the injected failures. */
  private sendContent(
    server: "hub" | "cdn",
    req: IncomingMessage,
    res: ServerResponse,
    file: StoredFile,
    extra: Record<string, string> = {},
  ): void {
    const id = key(file.repo.repo, file.path);
    let content = file.content;
    if (this.corrupted.has(id)) {
      content = Buffer.from(content);
      content[content.length >> 1] = (content[content.length >> 1] ?? 0) ^ 0xff;
    }
    const total = content.length;
    let start = 0;
    let status = 200;
    const headers: Record<string, string> = {
      "content-type": "application/octet-stream",
      "accept-ranges": "bytes",
      etag: `"${file.lfs ? file.sha256 : file.gitOid}"`,
      ...extra,
    };
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    if (range?.[1] !== undefined && !this.ignoreRange) {
      start = Number(range[1]);
      if (start >= total) {
        this.reply(server, req, res, 416, "", { "content-range": `bytes */${total}` });
        return;
      }
      const end = range[2] ? Math.min(Number(range[2]), total - 1) : total - 1;
      content = content.subarray(start, end + 1);
      status = 206;
      headers["content-range"] = `bytes ${start}-${end}/${total}`;
    }
    this.log(server, req, status);
    res.writeHead(status, { ...headers, "content-length": content.length });
    const drop = this.drops.get(id);
    if (drop !== undefined && drop.bytes < content.length) {
      this.drops.delete(id);
      const sent = content.subarray(0, drop.bytes);
      this.count(id, sent.length);
      // Headers promise the whole length; cutting the socket after part of it is a dropped connection, and
      // sending nothing more on it is a stalled one.
      res.write(sent, () => {
        if (!drop.stall) res.socket?.destroy();
      });
      return;
    }
    this.count(id, content.length);
    res.end(content);
  }

  private count(id: string, bytes: number): void {
    this.served.set(id, (this.served.get(id) ?? 0) + bytes);
  }
}

const key = (repo: string, path: string) => `${repo}\n${path}`;

/** The commit a fake revision resolves to, as the hub's `X-Repo-Commit` header names it. */
const commitOf = (repo: FakeHubRepo) =>
  createHash("sha1").update(`${repo.repo}@${repo.revision}`).digest("hex");

function listen(server: Server): Promise<string> {
  return new Promise((done, fail) => {
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      done(`http://127.0.0.1:${port}`);
    });
  });
}
