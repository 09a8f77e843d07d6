/**
 * Loaded with `--import` into easel's own process by the soak_rss bench (run with --expose-gc): answers
 * `{ type: "rss" }` on the IPC channel with the resident set size after full garbage collections, so that the
 * bench measures easel's memory from outside it without changing how `npm start` composes easel.
 */

type Gc = () => void;

process.on("message", (message: unknown) => {
  if ((message as { type?: unknown } | null)?.type !== "rss") return;
  const gc = (globalThis as { gc?: Gc }).gc;
  if (!gc) {
    process.send?.({ type: "rss", error: "run with --expose-gc" });
    return;
  }
  // Twice: the first collection's finalizers free more for the second.
  gc();
  gc();
  const usage = process.memoryUsage();
  process.send?.({ type: "rss", rss: usage.rss, heapUsed: usage.heapUsed, external: usage.external });
});
