import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Native modules (onnxruntime-node, better-sqlite3, sharp) are safest in child processes.
    pool: "forks",
    testTimeout: 30_000,
  },
});
