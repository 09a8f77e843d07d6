import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import sharp from "sharp";
import { TINY_MODEL_VARIANTS, writeTinyModel } from "../src/backends/ldm/tiny-model.ts";
import { CLIP_BPE_DIR } from "../src/backends/ldm/tokenizer/clip-tokenizer.ts";

/**
 * The CLI tests' harness: runs bin/easel.js in a child process as an operator would, in a folder of its own
 * with its own models folder, and reports which native modules the process had loaded when it exited, so a
 * test can tell that a refusal came before onnxruntime (or sharp) was ever loaded.
 */

const EASEL = resolve("bin/easel.js");
const NATIVE_MARK = "[cli-harness native]";

/** Loaded before the CLI: on exit, prints the onnxruntime and sharp shared objects the process loaded. */
const PRELOAD = `data:text/javascript,process.on("exit", () => {
  const loaded = process.report.getReport().sharedObjects.filter((p) => /onnxruntime|sharp/.test(p));
  process.stderr.write("\\n${NATIVE_MARK} " + JSON.stringify(loaded.map((p) => p.split("/").pop())) + "\\n");
});`;

/** One CLI run: its output (without the harness's line), exit code, and the native libraries it loaded. */
export interface CliRun {
  stdout: string;
  stderr: string;
  code: number;
  /** File names of the onnxruntime and sharp libraries that were loaded (empty: neither). */
  native: string[];
  /** Whether onnxruntime's library was loaded. */
  onnxruntime: boolean;
}

/** Options of one run: more environment variables, and what standard input holds (default: nothing). */
export interface RunOptions {
  env?: Record<string, string>;
  input?: string;
}

/** A working folder with a models folder; `run` starts the CLI there. */
export class CliHarness {
  private constructor(
    readonly work: string,
    readonly modelsDir: string,
  ) {}

  /** A fresh folder; with `tinyModel`, models/tiny holds the tiny sd1 model. */
  static async create(options: { tinyModel?: boolean } = {}): Promise<CliHarness> {
    const work = mkdtempSync(join(tmpdir(), "easel-cli-"));
    const harness = new CliHarness(work, join(work, "models"));
    if (options.tinyModel)
      await writeTinyModel(join(harness.modelsDir, "tiny"), TINY_MODEL_VARIANTS.sd1, CLIP_BPE_DIR);
    return harness;
  }

  /** Runs `easel ...args` to its end. */
  run(args: readonly string[], options: RunOptions = {}): Promise<CliRun> {
    // The runner's own EASEL_* settings must not reach the CLI: each test states the ones it means.
    const inherited = Object.fromEntries(
      Object.entries(process.env).filter(([key]) => !key.startsWith("EASEL_")),
    );
    const env = { ...inherited, EASEL_MODELS_DIR: this.modelsDir, EASEL_DEVICE: "cpu", ...options.env };
    return new Promise((done, fail) => {
      const child = spawn(process.execPath, [`--import=${PRELOAD}`, EASEL, ...args], { cwd: this.work, env });
      let stdout = "";
      let stderr = "";
      child.stdout.setEncoding("utf8").on("data", (text: string) => {
        stdout += text;
      });
      child.stderr.setEncoding("utf8").on("data", (text: string) => {
        stderr += text;
      });
      child.on("error", fail);
      child.on("close", (code, signal) => {
        const at = stderr.lastIndexOf(`\n${NATIVE_MARK} `);
        const native: string[] =
          at < 0 ? [] : JSON.parse(stderr.slice(at + NATIVE_MARK.length + 2).split("\n")[0] ?? "[]");
        done({
          stdout,
          stderr: at < 0 ? stderr : stderr.slice(0, at),
          code: code ?? (signal === null ? -1 : 128),
          native,
          onnxruntime: native.some((name) => name.includes("onnxruntime")),
        });
      });
      child.stdin.end(options.input ?? "");
    });
  }

  /** Removes the folder. */
  close(): void {
    rmSync(this.work, { recursive: true, force: true });
  }
}

/**
 * The EXIF UserComment of a JPEG or WebP, read as piexif's `UserComment.load` (A1111's reader) does: the
 * 8-byte charset prefix, then "UNICODE" text as UTF-16 big-endian or "ASCII" text. Written here from the TIFF
 * layout, independently of src/render/encode-file.ts, so a mistake there cannot hide in a shared reader.
 */
export async function readUserComment(file: Buffer): Promise<{ charset: string; text: string } | undefined> {
  const exif = (await sharp(file).metadata()).exif;
  if (!exif) return undefined;
  const tiff = exif.subarray(exif.toString("latin1", 0, 6) === "Exif\0\0" ? 6 : 0);
  const big = tiff.toString("latin1", 0, 2) === "MM";
  const u16 = (at: number) => (big ? tiff.readUInt16BE(at) : tiff.readUInt16LE(at));
  const u32 = (at: number) => (big ? tiff.readUInt32BE(at) : tiff.readUInt32LE(at));
  /** The entry `tag` of the IFD at `ifd`: its count and where its value is. */
  const entry = (ifd: number, tag: number) => {
    for (let i = 0; i < u16(ifd); i++) {
      const at = ifd + 2 + 12 * i;
      if (u16(at) === tag) return { count: u32(at + 4), value: u32(at + 8), inline: at + 8 };
    }
    return undefined;
  };
  const pointer = entry(u32(4), 0x8769);
  if (!pointer) return undefined;
  const comment = entry(pointer.value, 0x9286);
  if (!comment) return undefined;
  const start = comment.count > 4 ? comment.value : comment.inline;
  const bytes = tiff.subarray(start, start + comment.count);
  const charset = bytes.toString("latin1", 0, 8).replace(/\0+$/, "");
  const body = Buffer.from(bytes.subarray(8));
  const text = charset === "UNICODE" ? body.swap16().toString("utf16le") : body.toString("latin1");
  return { charset, text };
}
