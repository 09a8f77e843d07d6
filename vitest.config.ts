import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Native modules (onnxruntime-node, better-sqlite3, sharp) are safest in child processes.
    pool: "forks",
    // Generous: a shared 2-core CI machine can run several times slower than usual for a while.
    testTimeout: 90_000,
  },
});
