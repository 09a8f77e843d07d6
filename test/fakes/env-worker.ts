import type { FromWorker, ToWorker } from "../../src/backends/ldm/worker-protocol.ts";

/**
 * A stand-in LDM worker that loads any model and names, as the model's name, the variables it was given; it
 * prints a line on stdout and one on stderr first.
 */
process.on("message", (message: ToWorker) => {
  if (message.type !== "load") return;
  // What onnxruntime's native code would print: it must reach the supervisor's log, not the terminal.
  console.log("a line on stdout");
  console.error("a line on stderr");
  process.send?.({
    type: "loaded",
    info: {
      name: JSON.stringify(process.env),
      provider: "cpu",
      io: {},
      defaults: {},
      hasVaeEncoder: false,
      loadMs: 0,
    },
  } as unknown as FromWorker);
});
setInterval(() => {}, 1000);
