import { parentPort } from "node:worker_threads";
import type { NoiseRequest } from "./noise-thread.ts";
import { TorchGenerator } from "./torch-random.ts";

/**
 * The noise thread (see noise-thread.ts): continues a generator's stream from the state it is handed, draws
 * `randn(n)` into the shared output, writes the state after the draw back, and marks the request done.
 */
const generator = new TorchGenerator(0);

parentPort?.on("message", (request: NoiseRequest) => {
  const control = new Int32Array(request.control);
  const words = new Uint32Array(request.words);
  const normal = new Float64Array(request.normal);
  generator.loadState(words, normal);
  generator.randnInto(new Float32Array(request.out));
  generator.saveState(words, normal);
  Atomics.store(control, 0, 2);
  Atomics.notify(control, 0);
});
parentPort?.postMessage("ready");
