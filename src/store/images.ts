import { createHash, randomBytes } from "node:crypto";
import { constants, existsSync, unlinkSync } from "node:fs";
import * as fsp from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import type Database from "better-sqlite3";
import { EaselError } from "../core/errors.ts";
import { fileSystemError, guard, writeTransaction } from "./database.ts";

/**
 * Content-addressed image files under `<dataDir>/images/ab/abcdef….png` (sha256 of the bytes) and the rows
 * that say which job and variant they are.
 *
 * Order of a save: temp file in the final folder → write → fsync → rename → fsync the folder → insert the row.
 * A crash at any point leaves either no file, a stray temp file (swept later), or a durable file with no row
 * (harmless: the same bytes saved again reuse it) — never a row that names a missing or partial file.
 */

/** Folder (inside the data folder) that holds the image files. */
export const IMAGES_DIR = "images";

/** File extension per stored MIME type; anything else is refused. */
const EXTENSIONS: Readonly<Record<string, string>> = {
  "image/png": "png",
  "image/jpeg": "jpg",
  "image/webp": "webp",
};

/** Temp files older than this are leftovers of a crash (a live save takes well under a second). */
export const STALE_TEMP_FILE_MS = 60 * 60 * 1000;

/**
 * The file operations saveImage uses, injectable so tests can fail a write with ENOSPC or EIO. The defaults
 * are node:fs/promises.
 */
export interface ImageFileOps {
  open(path: string, flags: number, mode: number): Promise<fsp.FileHandle>;
  write(handle: fsp.FileHandle, data: Uint8Array, position: number): Promise<number>;
  sync(handle: fsp.FileHandle): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /** fsync a folder, so that a rename in it survives a power loss. */
  syncDir(path: string): Promise<void>;
  unlink(path: string): Promise<void>;
  mkdir(path: string): Promise<string | undefined>;
  stat(path: string): Promise<{ size: number; mtimeMs: number }>;
}

/** node:fs/promises behind the ImageFileOps seam. */
export const DEFAULT_IMAGE_FILE_OPS: ImageFileOps = {
  open: (path, flags, mode) => fsp.open(path, flags, mode),
  write: async (handle, data, position) => (await handle.write(data, 0, data.length, position)).bytesWritten,
  sync: (handle) => handle.sync(),
  rename: (from, to) => fsp.rename(from, to),
  syncDir: async (path) => {
    // Windows cannot open a folder for fsync; NTFS journals renames itself.
    if (process.platform === "win32") return;
    const handle = await fsp.open(path, constants.O_RDONLY);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
  unlink: (path) => fsp.unlink(path),
  mkdir: (path) => fsp.mkdir(path, { recursive: true }),
  stat: (path) => fsp.stat(path),
};

/** What the caller knows about an image besides its bytes. */
export interface ImageMeta {
  /** The job it belongs to; absent for uploads (img2img inputs). */
  jobId?: string;
  /** 1-based variant index in the job's result (0 = the grid). Required with jobId. */
  variant?: number;
  seed?: number;
  /** Withheld: the safety checker flagged it (job images only). */
  flagged?: boolean;
  width: number;
  height: number;
  /** Default image/png. */
  mime?: string;
  now?: number;
}

/** An image row and where its file is. */
export interface ImageRecord {
  id: number;
  sha256: string;
  jobId?: string;
  variant?: number;
  seed?: number;
  flagged: boolean;
  width: number;
  height: number;
  bytes: number;
  mime: string;
  createdAt: number;
  /** Absolute path of the file. */
  path: string;
}

interface ImageRow {
  id: number;
  sha256: string;
  job_id: string | null;
  variant: number | null;
  seed: number | null;
  flagged: number;
  width: number;
  height: number;
  bytes: number;
  mime: string;
  created_at: number;
}

/** The images table and its files. */
export class ImageStore {
  /** Absolute folder holding the `ab/` shard folders. */
  readonly root: string;
  private readonly ops: ImageFileOps;
  private readonly clock: () => number;
  private readonly upsertJobImage: Database.Statement<unknown[], ImageRow>;
  private readonly insertUpload: Database.Statement<unknown[], ImageRow>;
  private readonly uploadBySha: Database.Statement<[string], ImageRow>;
  private readonly bySha: Database.Statement<[string], ImageRow>;
  private readonly byJob: Database.Statement<[string], ImageRow>;
  private readonly flaggedOfJob: Database.Statement<[string], { variant: number }>;
  private readonly namedBy: Database.Statement<[string, string], { one: number }>;

  constructor(
    private readonly db: Database.Database,
    dataDir: string,
    options: { fileOps?: Partial<ImageFileOps>; clock?: () => number } = {},
  ) {
    this.root = join(dataDir, IMAGES_DIR);
    this.ops = { ...DEFAULT_IMAGE_FILE_OPS, ...options.fileOps };
    this.clock = options.clock ?? Date.now;
    // Saving variant k of a job again (a retried render) points the row at the new bytes; the old file
    // stays until a sweep of unreferenced files, since another row may share it.
    this.upsertJobImage = db.prepare(
      `INSERT INTO images (sha256, job_id, variant, seed, flagged, width, height, bytes, mime, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (job_id, variant) DO UPDATE SET sha256 = excluded.sha256, seed = excluded.seed,
         flagged = excluded.flagged,
         width = excluded.width, height = excluded.height, bytes = excluded.bytes, mime = excluded.mime,
         created_at = excluded.created_at
       RETURNING *`,
    );
    this.insertUpload = db.prepare(
      `INSERT INTO images (sha256, job_id, variant, seed, width, height, bytes, mime, created_at)
       VALUES (?, NULL, NULL, ?, ?, ?, ?, ?, ?) RETURNING *`,
    );
    this.uploadBySha = db.prepare("SELECT * FROM images WHERE sha256 = ? AND job_id IS NULL");
    this.bySha = db.prepare("SELECT * FROM images WHERE sha256 = ? ORDER BY id LIMIT 1");
    this.byJob = db.prepare("SELECT * FROM images WHERE job_id = ? ORDER BY variant");
    this.flaggedOfJob = db.prepare(
      "SELECT variant FROM images WHERE job_id = ? AND flagged = 1 ORDER BY variant",
    );
    this.namedBy = db.prepare("SELECT 1 AS one FROM images WHERE sha256 = ? AND mime = ? LIMIT 1");
  }

  /** The file path for bytes with this hash and type. */
  pathFor(sha256: string, mime = "image/png"): string {
    return join(this.root, sha256.slice(0, 2), `${sha256}.${extensionOf(mime)}`);
  }

  /**
   * Stores the bytes (once per content) and records the row, after the file is durable. Same bytes for two
   * jobs or variants: one file, two rows; the same upload twice: one row. ENOSPC → "disk_full", other I/O
   * failures → "io_error", with the temp file removed and no row written.
   */
  async saveImage(bytes: Uint8Array, meta: ImageMeta): Promise<ImageRecord> {
    const mime = meta.mime ?? "image/png";
    extensionOf(mime);
    checkMeta(meta);
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    const path = this.pathFor(sha256, mime);
    const now = meta.now ?? this.clock();
    for (let attempt = 1; ; attempt++) {
      await this.writeFileDurably(path, bytes, sha256);
      let row: ImageRow | undefined;
      try {
        row = writeTransaction(this.db, `recording image ${sha256.slice(0, 12)}`, () => {
          const recorded = this.recordRow(sha256, meta, bytes.length, mime, now);
          // The pruner removes a file whose last row it deleted, under the write lock this transaction also
          // holds (removeUnreferencedFiles). Bytes that were already on disk (the write above skipped them)
          // may have been removed since: checked here, under the lock, the row never names a missing file.
          if (!existsSync(path)) throw FILE_REMOVED;
          return recorded;
        });
      } catch (err) {
        if (err !== FILE_REMOVED) throw err;
        if (attempt >= 3) {
          throw new EaselError("io_error", `image file ${path} kept being removed while it was saved`);
        }
        continue;
      }
      if (row === undefined) throw new EaselError("io_error", `image ${sha256} was not recorded`);
      return this.toRecord(row);
    }
  }

  private recordRow(
    sha256: string,
    meta: ImageMeta,
    size: number,
    mime: string,
    now: number,
  ): ImageRow | undefined {
    if (meta.jobId === undefined) {
      // The partial unique index on uploads makes this select-then-insert safe across connections too.
      return (
        this.uploadBySha.get(sha256) ??
        this.insertUpload.get(sha256, meta.seed ?? null, meta.width, meta.height, size, mime, now)
      );
    }
    return this.upsertJobImage.get(
      sha256,
      meta.jobId,
      meta.variant,
      meta.seed ?? null,
      meta.flagged ? 1 : 0,
      meta.width,
      meta.height,
      size,
      mime,
      now,
    );
  }

  /**
   * Removes the files of these images that no row names any more (after their rows were deleted), and
   * returns how many it removed. A file is shared by content, so one still named by any row, of a kept job or
   * an upload, stays. The check and the unlink run inside one write transaction: a save of the same bytes
   * (which inserts its row under the same lock and then checks its file, see saveImage) either comes first
   * and keeps the file, or comes after and writes it again. A file already gone is not counted.
   */
  removeUnreferencedFiles(images: readonly { sha256: string; mime: string }[]): number {
    const seen = new Set<string>();
    return writeTransaction(this.db, "removing image files no row names", () => {
      let removed = 0;
      for (const { sha256, mime } of images) {
        const path = this.pathFor(sha256, mime);
        if (seen.has(path)) continue;
        seen.add(path);
        if (this.namedBy.get(sha256, mime) !== undefined) continue;
        try {
          unlinkSync(path);
          removed++;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "ENOENT")
            throw fileSystemError(err, `removing ${path}`);
        }
      }
      return removed;
    });
  }

  /** The first row recorded for these bytes and its file path, or undefined. */
  getImage(sha256: string): { row: ImageRecord; path: string } | undefined {
    const row = guard(`reading image ${sha256.slice(0, 12)}`, () => this.bySha.get(sha256));
    if (row === undefined) return undefined;
    const record = this.toRecord(row);
    return { row: record, path: record.path };
  }

  /** The bytes of a stored image, checked against their hash (a damaged file is an error, not an image). */
  async readImage(sha256: string): Promise<Buffer> {
    const found = this.getImage(sha256);
    if (found === undefined) throw new EaselError("not_found", `no stored image has sha256 ${sha256}`);
    let bytes: Buffer;
    try {
      bytes = await fsp.readFile(found.path);
    } catch (err) {
      throw fileSystemError(err, `reading image file ${found.path}`);
    }
    const actual = createHash("sha256").update(bytes).digest("hex");
    if (actual !== sha256) {
      throw new EaselError(
        "store_corrupt",
        `image file ${found.path} no longer matches its sha256 (${actual})`,
      );
    }
    return bytes;
  }

  /** The variants of a job that the safety checker flagged. */
  flaggedVariants(jobId: string): number[] {
    return this.flaggedOfJob.all(jobId).map((row) => row.variant);
  }

  /** The images of a job, by variant. */
  imagesForJob(jobId: string): ImageRecord[] {
    return guard(`listing images of job ${jobId}`, () => this.byJob.all(jobId)).map((row) =>
      this.toRecord(row),
    );
  }

  /**
   * Removes temp files a crash left behind (older than `olderThanMs`, so a save in progress in another
   * process keeps its file). Returns how many were removed. Best effort: errors are ignored. `now` is wall
   * time, not the store's clock, since it is compared with file modification times. Run it at start-up.
   */
  async sweepTempFiles(olderThanMs = STALE_TEMP_FILE_MS, now = Date.now()): Promise<number> {
    let shards: string[];
    try {
      shards = await fsp.readdir(this.root);
    } catch {
      return 0;
    }
    let removed = 0;
    for (const shard of shards) {
      removed += await sweepStaleTempFiles(join(this.root, shard), {
        olderThanMs,
        now,
        isTemp: isTempName,
        ops: this.ops,
      });
    }
    return removed;
  }

  private async writeFileDurably(path: string, bytes: Uint8Array, sha256: string): Promise<void> {
    const dir = dirname(path);
    const action = `saving image ${sha256.slice(0, 12)} to ${dir}`;
    try {
      await this.makeDirDurably(dir);
      const existing = await this.ops.stat(path).catch(() => undefined);
      if (existing !== undefined && existing.size === bytes.length) {
        // Same content already written by an earlier save (whose file fsync came before its rename). Its
        // rename might not be durable yet if another process is between rename and folder fsync: sync it here.
        await this.ops.syncDir(dir);
        return;
      }
    } catch (err) {
      throw fileSystemError(err, action);
    }
    const temp = join(
      dir,
      `${TEMP_PREFIX}${sha256}.${process.pid}.${randomBytes(4).toString("hex")}${TEMP_SUFFIX}`,
    );
    let handle: fsp.FileHandle | undefined;
    try {
      handle = await this.ops.open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
      let written = 0;
      while (written < bytes.length) {
        const n = await this.ops.write(handle, bytes.subarray(written), written);
        if (n <= 0) throw Object.assign(new Error("write made no progress"), { code: "EIO" });
        written += n;
      }
      await this.ops.sync(handle);
      const closing = handle;
      handle = undefined;
      // close can report a delayed write error (NFS, some FUSE file systems): it must succeed before the rename.
      await closing.close();
      await this.ops.rename(temp, path);
    } catch (err) {
      if (handle !== undefined) await handle.close().catch(() => undefined);
      await this.ops.unlink(temp).catch(() => undefined);
      throw fileSystemError(err, action);
    }
    try {
      await this.ops.syncDir(dir);
    } catch (err) {
      // The file is complete under its final name; only its durability is in doubt, so no row is written.
      // Leaving it is harmless (content-addressed, the next save of these bytes reuses it).
      throw fileSystemError(err, action);
    }
  }

  /** mkdir -p, then fsync the parent of every folder it created, so the new entries survive a power loss. */
  private async makeDirDurably(dir: string): Promise<void> {
    const first = await this.ops.mkdir(dir);
    if (first === undefined) return;
    const created = relative(dirname(first), dir).split(sep);
    let parent = dirname(first);
    for (const part of created) {
      await this.ops.syncDir(parent);
      parent = join(parent, part);
    }
  }

  private toRecord(row: ImageRow): ImageRecord {
    const record: ImageRecord = {
      id: row.id,
      sha256: row.sha256,
      width: row.width,
      height: row.height,
      bytes: row.bytes,
      mime: row.mime,
      flagged: row.flagged === 1,
      createdAt: row.created_at,
      path: this.pathFor(row.sha256, row.mime),
    };
    if (row.job_id !== null) record.jobId = row.job_id;
    if (row.variant !== null) record.variant = row.variant;
    if (row.seed !== null) record.seed = row.seed;
    return record;
  }
}

const TEMP_PREFIX = ".";
const TEMP_SUFFIX = ".tmp";

/** Thrown inside saveImage's transaction when the file it is about to name was removed meanwhile. */
const FILE_REMOVED = Symbol("image file removed");

/** Options for {@link sweepStaleTempFiles}. */
export interface TempSweepOptions {
  /** Only files last modified at least this long ago (default {@link STALE_TEMP_FILE_MS}). */
  olderThanMs?: number;
  /** Wall time in ms (default Date.now()): it is compared with file modification times, not the store clock. */
  now?: number;
  /** Which names are temp files (default: ending in ".tmp"). */
  isTemp?: (name: string) => boolean;
  ops?: Pick<ImageFileOps, "stat" | "unlink">;
}

/**
 * Removes the stale temp files directly in `dir` (not in sub-folders) and returns how many: files written
 * beside their final name and renamed (images, `previews/<job>.gif.<pid>.tmp`) that a crash or a failed
 * write left behind. The age limit keeps a write in progress, in this or another process. Best effort: a
 * missing folder is 0, and a file another sweeper removed first is skipped.
 */
export async function sweepStaleTempFiles(dir: string, options: TempSweepOptions = {}): Promise<number> {
  const olderThanMs = options.olderThanMs ?? STALE_TEMP_FILE_MS;
  const now = options.now ?? Date.now();
  const isTemp = options.isTemp ?? ((name: string) => name.endsWith(TEMP_SUFFIX));
  const ops = options.ops ?? DEFAULT_IMAGE_FILE_OPS;
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    if (!isTemp(name)) continue;
    const path = join(dir, name);
    try {
      if (now - (await ops.stat(path)).mtimeMs < olderThanMs) continue;
      await ops.unlink(path);
      removed++;
    } catch {
      // Another sweeper got there first, or the file is not ours to remove.
    }
  }
  return removed;
}

function isTempName(name: string): boolean {
  return name.startsWith(TEMP_PREFIX) && name.endsWith(TEMP_SUFFIX);
}

function extensionOf(mime: string): string {
  const extension = EXTENSIONS[mime];
  if (extension === undefined) {
    throw new EaselError(
      "invalid_argument",
      `cannot store images of type ${mime}; stored types: ${Object.keys(EXTENSIONS).join(", ")}`,
    );
  }
  return extension;
}

function checkMeta(meta: ImageMeta): void {
  const positive = (value: number) => Number.isInteger(value) && value > 0;
  if (!positive(meta.width) || !positive(meta.height)) {
    throw new EaselError(
      "invalid_argument",
      `image size ${meta.width}x${meta.height} is not a positive size`,
    );
  }
  if (
    meta.jobId !== undefined &&
    (meta.variant === undefined || !Number.isInteger(meta.variant) || meta.variant < 0)
  ) {
    throw new EaselError(
      "invalid_argument",
      `an image of job ${meta.jobId} needs a variant (0 for the grid, 1..n)`,
    );
  }
  if (meta.jobId === undefined && meta.variant !== undefined) {
    throw new EaselError("invalid_argument", "a variant needs the job it belongs to");
  }
}
