import { readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

/**
 * DESIGN.md's dependency rules: each SDK is imported in exactly one folder, core imports no SDK and nothing
 * outside core, commands depend on core only, platforms and backends never import each other, and only
 * src/config.ts reads process.env.
 */

const ROOT = resolve(".");

/** SDK package (or scope) → the one folder allowed to import it. */
const SDK_HOME: Record<string, string> = {
  "onnxruntime-node": "src/backends/ldm",
  "onnxruntime-common": "src/backends/ldm",
  openai: "src/backends/openai",
  sharp: "src/render",
  "better-sqlite3": "src/store",
  "discord.js": "src/platforms/discord",
  "@discordjs": "src/platforms/discord",
  "@slack": "src/platforms/slack",
  "@huggingface": "src/backends/ldm",
  commander: "src/cli",
  pino: "src/logging",
};

/** Folder → folders (under src/ or commands/) it must not import from. */
const FORBIDDEN_LAYERS: [string, string[]][] = [
  [
    "src/core",
    ["src/store", "src/backends", "src/render", "src/platforms", "src/main.ts", "src/config.ts", "commands"],
  ],
  ["commands", ["src/store", "src/backends", "src/render", "src/platforms", "src/main.ts"]],
  ["src/store", ["src/backends", "src/render", "src/platforms", "src/main.ts"]],
  ["src/render", ["src/store", "src/backends", "src/platforms", "src/main.ts"]],
  ["src/backends", ["src/platforms", "src/store", "src/main.ts"]],
  ["src/backends/ldm", ["src/backends/openai"]],
  ["src/backends/openai", ["src/backends/ldm"]],
  ["src/platforms", ["src/backends", "src/store", "src/main.ts"]],
  ["src/platforms/discord", ["src/platforms/slack"]],
  ["src/platforms/slack", ["src/platforms/discord"]],
];

const within = (path: string, folder: string): boolean => path === folder || path.startsWith(`${folder}/`);

/** The package name or scope an import starts with: "@slack" for "@slack/bolt", "sharp" for "sharp". */
const packageOf = (specifier: string): string => specifier.split("/")[0] ?? specifier;

/** Every rule `file` (a project-relative path with `/`) breaks with the imports in `source`. */
function boundaryViolations(file: string, source: string): string[] {
  const violations: string[] = [];
  const info = ts.preProcessFile(source, true, true);
  for (const { fileName: specifier } of info.importedFiles) {
    if (specifier.startsWith(".")) {
      const target = relative(ROOT, resolve(ROOT, file, "..", specifier))
        .split(sep)
        .join("/");
      for (const [folder, banned] of FORBIDDEN_LAYERS) {
        if (!within(file, folder)) continue;
        for (const layer of banned) {
          if (within(target, layer))
            violations.push(`${file} imports ${target} (${folder} must not depend on ${layer})`);
        }
      }
      continue;
    }
    const name = packageOf(specifier.replace(/^node:/, ""));
    const home = SDK_HOME[name];
    if (home !== undefined && !within(file, home))
      violations.push(`${file} imports ${specifier} (only ${home} may)`);
  }
  if (/\bprocess\.env\b/.test(source) && file.startsWith("src/") && file !== "src/config.ts") {
    violations.push(`${file} reads process.env (only src/config.ts may)`);
  }
  return violations;
}

function sourceFiles(folder: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(resolve(ROOT, folder), { withFileTypes: true })) {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(path));
    else if (/\.(ts|js|mjs|cjs)$/.test(entry.name)) out.push(path.split(sep).join("/"));
  }
  return out;
}

describe("import boundaries (DESIGN.md)", () => {
  it("catches an SDK imported outside its folder, core reaching out, and platforms importing backends", () => {
    expect(boundaryViolations("src/core/queue.ts", 'import ort from "onnxruntime-node";')).toHaveLength(1);
    expect(
      boundaryViolations("src/platforms/slack/app.ts", 'import { Client } from "discord.js";'),
    ).toHaveLength(1);
    expect(boundaryViolations("src/render/png.ts", 'const s = await import("@slack/bolt");')).toHaveLength(1);
    expect(boundaryViolations("src/core/jobs.ts", 'import { x } from "../store/db.ts";')).toHaveLength(1);
    expect(
      boundaryViolations("src/platforms/discord/bot.ts", 'export { y } from "../../backends/ldm/x.ts";'),
    ).toHaveLength(1);
    expect(
      boundaryViolations("commands/imagine.ts", 'import { z } from "../src/platforms/discord/a.ts";'),
    ).toHaveLength(1);
    expect(boundaryViolations("src/backends/ldm/pipeline.ts", "const t = process.env.TOKEN;")).toHaveLength(
      1,
    );
    // Allowed: the SDK in its home, core imported from anywhere, config reading the environment.
    expect(
      boundaryViolations("src/backends/ldm/session.ts", 'import * as ort from "onnxruntime-node";'),
    ).toEqual([]);
    expect(
      boundaryViolations("src/platforms/discord/bot.ts", 'import { E } from "../../core/errors.ts";'),
    ).toEqual([]);
    expect(boundaryViolations("src/config.ts", "const env = process.env;")).toEqual([]);
  });

  it("holds for every source file", () => {
    const files = ["src", "commands"].flatMap((folder) => sourceFiles(folder));
    expect(files.length).toBeGreaterThan(0);
    const violations = files.flatMap((file) =>
      boundaryViolations(file, readFileSync(resolve(ROOT, file), "utf8")),
    );
    expect(violations).toEqual([]);
  });
});
