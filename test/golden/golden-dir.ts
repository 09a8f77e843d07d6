import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The golden folder: `GOLDEN_DIR`, or the repository's own copy in test/golden/vectors (DESIGN.md). */
export const GOLDEN_DIR = process.env.GOLDEN_DIR
  ? resolve(process.env.GOLDEN_DIR)
  : fileURLToPath(new URL("./vectors", import.meta.url));

/** Parses one golden JSON file from the golden folder. */
export function loadGolden<T>(file: string): T {
  return JSON.parse(readFileSync(resolve(GOLDEN_DIR, file), "utf8")) as T;
}

/** Golden float32 values are written as the exact decimal of the float32: parse as double, then round. */
export function toFloat32Array(values: readonly number[]): Float32Array {
  return Float32Array.from(values, (v) => Math.fround(v));
}
