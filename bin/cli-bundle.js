// Builds and finds the bundle `easel` runs: the TypeScript CLI compiled once by esbuild (the compiler tsx uses),
// instead of module by module through tsx's loader at every start, which cost about 0.5 s of each command. It
// is made on first use and again whenever the files under src/ (or this recipe) change, in
// node_modules/.cache/easel (about 0.1 s), so `npm install` stays the only set-up step.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SOURCES = join(ROOT, "src");
const CACHE = join(ROOT, "node_modules", ".cache", "easel");
/** Bundles of earlier sources kept (a CLI still running may import one's chunks lazily). */
const KEEP = 3;

/** What the inputs are now: every file under src/ and this recipe, by count, total size and newest change. */
function stamp() {
  const recipe = statSync(fileURLToPath(import.meta.url));
  let count = 1;
  let size = recipe.size;
  let newest = recipe.mtimeMs;
  for (const entry of readdirSync(SOURCES, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const stat = statSync(join(entry.parentPath ?? entry.path, entry.name));
    count += 1;
    size += stat.size;
    newest = Math.max(newest, stat.mtimeMs);
  }
  return `${count}-${size}-${Math.floor(newest)}`;
}

async function build(outDir) {
  const { build: esbuild } = await import("esbuild");
  // Built in a folder of its own and renamed into place: CLIs started together each build, the first rename wins
  // and the others use its bundle.
  const staging = `${outDir}.${process.pid}`;
  await esbuild({
    entryPoints: { cli: join(SOURCES, "cli.ts") },
    bundle: true,
    // Each lazily imported command stays its own chunk, with the packages it imports: `easel --help` loads
    // neither onnxruntime nor sharp.
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    outdir: staging,
    packages: "external",
    logLevel: "silent",
    plugins: [
      {
        // A module that finds files next to itself (the tokenizer's vocabulary, package.json, the worker's
        // script) gets its own source location, not the chunk's.
        name: "source-import-meta-url",
        setup(b) {
          b.onLoad({ filter: /\.ts$/ }, async (args) => {
            const text = await readFile(args.path, "utf8");
            const url = JSON.stringify(relative(outDir, args.path).split("\\").join("/"));
            return {
              contents: text.replaceAll("import.meta.url", `new URL(${url}, import.meta.url).href`),
              loader: "ts",
            };
          });
        },
      },
    ],
  });
  try {
    renameSync(staging, outDir);
  } catch {
    rmSync(staging, { recursive: true, force: true });
    if (!existsSync(join(outDir, "cli.js"))) throw new Error("the CLI bundle could not be put in place");
  }
  const bundles = readdirSync(CACHE)
    .filter((name) => /^cli-[\d-]+$/.test(name))
    .map((name) => ({ name, at: statSync(join(CACHE, name)).mtimeMs }))
    .sort((a, b) => b.at - a.at);
  for (const old of bundles.slice(KEEP)) rmSync(join(CACHE, old.name), { recursive: true, force: true });
}

/** The bundle's entry as a file URL, built if needed; undefined when it cannot be built (read-only install). */
export async function cliBundle() {
  if (process.env.EASEL_CLI_TSX === "1") return undefined;
  try {
    const outDir = join(CACHE, `cli-${stamp()}`);
    const entry = join(outDir, "cli.js");
    if (!existsSync(entry)) {
      mkdirSync(CACHE, { recursive: true });
      await build(outDir);
    }
    return pathToFileURL(entry).href;
  } catch {
    return undefined;
  }
}
