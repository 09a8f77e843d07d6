import type { FromWorker, ToWorker } from "../../src/backends/ldm/worker-protocol.ts";

/**
 * A stand-in LDM worker that fails by the model's name, the way real workers fail: "broken" cannot load (an
 * onnxruntime error, no EaselError code), "crashy" loads and dies on every generate call (a process crash),
 * any other model loads and answers every generate call with an internal error (a bug in the pipeline).
 */
let model = "";
const send = (message: FromWorker) => process.send?.(message);
process.on("message", (message: ToWorker) => {
  if (message.type === "load") {
    model = message.spec.model;
    if (model === "broken") {
      send({ type: "error", id: null, code: "internal", message: "protobuf parsing failed" });
      return;
    }
    send({
      type: "loaded",
      info: { name: model, provider: "cpu", io: {}, defaults: {}, hasVaeEncoder: false, loadMs: 0 },
    } as FromWorker);
  } else if (message.type === "generate") {
    if (model === "crashy") process.exit(1);
    send({ type: "error", id: message.id, code: "internal", message: "Cannot read properties of undefined" });
  }
});
setInterval(() => {}, 1000);
