import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { CLIP_BPE_DIR } from "../src/backends/ldm/tokenizer/clip-tokenizer.ts";
import { specPath } from "./fakes/specs/load-spec.ts";
import { GOLDEN_DIR } from "./golden/golden-dir.ts";

/**
 * The repository stands alone (DESIGN.md): what the tests, the benchmarks and the CLI read is inside it, with
 * the licence files that came with it; the team's reading library beside the clone is never read.
 */

const ROOT = resolve(".");
const CODE_FOLDERS = ["src", "test", "bench", "commands", "scripts", "bin"];
const CODE_FILE = /\.(ts|js|mjs|cjs)$/;
// Built from parts so that this file does not match itself.
const SHARED = "shared";
const READS_SHARED = new RegExp(`\\.\\./${SHARED}\\b|['"\`/]${SHARED}/(golden|fixtures|specs|reference)`);

function codeFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === "node_modules" ? [] : codeFiles(path);
    return CODE_FILE.test(entry.name) ? [path] : [];
  });
}

describe("the repository stands alone", () => {
  it("no source, test, benchmark or script file reads the folder beside the clone", () => {
    const files = CODE_FOLDERS.flatMap((folder) => codeFiles(join(ROOT, folder)));
    expect(files.length).toBeGreaterThan(100);
    const offenders = files
      .filter((file) => READS_SHARED.test(readFileSync(file, "utf8")))
      .map((file) => relative(ROOT, file));
    expect(offenders).toEqual([]);
  });

  it("carries the CLIP vocabulary, the golden vectors and the platform specs inside the repository, each with its licence", () => {
    const inside = (path: string) => !relative(ROOT, path).startsWith("..");
    expect(inside(CLIP_BPE_DIR)).toBe(true);
    for (const file of ["vocab.json", "merges.txt", "LICENSE"])
      expect(statSync(join(CLIP_BPE_DIR, file)).size).toBeGreaterThan(0);
    if (!process.env.GOLDEN_DIR) expect(inside(GOLDEN_DIR)).toBe(true);
    for (const name of ["discord", "openai", "slack"] as const) {
      const spec = specPath(name);
      if (!process.env[`${name.toUpperCase()}_SPEC`]) expect(inside(spec)).toBe(true);
      expect(statSync(spec).size).toBeGreaterThan(100_000);
      expect(readFileSync(join(spec, "../LICENSE"), "utf8")).toMatch(/MIT|Permission is hereby granted/);
    }
  });

  it("ignores none of those files in git, so a clone has them", () => {
    const files = [
      join(CLIP_BPE_DIR, "vocab.json"),
      join(GOLDEN_DIR, "torch_randn.json"),
      ...(["discord", "openai", "slack"] as const).map((name) => specPath(name)),
    ].filter((file) => !relative(ROOT, file).startsWith(".."));
    expect(files.length).toBeGreaterThan(0);
    // check-ignore exits 1 when none of the paths is ignored; it prints the ignored ones.
    let ignored = "";
    try {
      ignored = execFileSync("git", ["check-ignore", ...files], { encoding: "utf8" });
    } catch (err) {
      expect((err as { status?: number }).status).toBe(1);
    }
    expect(ignored).toBe("");
  });

  it("installs from the npm registry alone: onnxruntime-node's CUDA download is skipped by npm 10 and 11 alike", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
      allowScripts?: Record<string, boolean>;
    };
    // npm 11: the supported per-package switch for install scripts.
    expect(pkg.allowScripts?.["onnxruntime-node"]).toBe(false);
    // The native builds easel needs still run.
    expect(pkg.allowScripts?.["better-sqlite3"]).toBe(true);
    // npm 10 has no allowScripts: onnxruntime-node's own script reads this setting.
    expect(readFileSync(join(ROOT, ".npmrc"), "utf8")).toMatch(/^onnxruntime-node-install=skip$/m);
  });
});
