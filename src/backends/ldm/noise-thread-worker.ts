import { type MessagePort, parentPort, receiveMessageOnPort, workerData } from "node:worker_threads";
import {
  DONE,
  type NoiseDoorbell,
  type NoiseRegistration,
  type NoiseRequest,
  RING_SIZE,
} from "./noise-protocol.ts";
import { TorchGenerator } from "./torch-random.ts";

/**
 * The noise thread (see noise-thread.ts): waits on the doorbell; for each request rung, continues that
 * generator's stream from the state it was handed, draws `randn(n)` into the shared output, writes the state
 * after the draw back and marks the request done. It never returns to its event loop: it only ever blocks in
 * Atomics.wait, which the process's exit interrupts.
 */
const { doorbell, port } = workerData as { doorbell: NoiseDoorbell; port: MessagePort };
const bell = new Int32Array(doorbell.bell);
const ring = new Int32Array(doorbell.ring);
const generator = new TorchGenerator(0);
const requests = new Map<number, NoiseRequest>();

function readRegistrations(): void {
  for (let message = receiveMessageOnPort(port); message; message = receiveMessageOnPort(port)) {
    const registration = message.message as NoiseRegistration;
    if ("drop" in registration) requests.delete(registration.drop);
    else requests.set(registration.id, registration.request);
  }
}

function serve(request: NoiseRequest): void {
  const control = new Int32Array(request.control);
  const words = new Uint32Array(request.words);
  const normal = new Float64Array(request.normal);
  generator.loadState(words, normal);
  generator.randnInto(new Float32Array(request.out));
  generator.saveState(words, normal);
  Atomics.store(control, 0, DONE);
  Atomics.notify(control, 0);
}

parentPort?.postMessage("ready");
let served = 0;
for (;;) {
  Atomics.wait(bell, 0, served);
  const rung = Atomics.load(bell, 0);
  // A generator registers before it rings: its registration is in the port's queue by now.
  readRegistrations();
  for (; served < rung; served++) {
    const request = requests.get(ring[served % RING_SIZE] as number);
    if (request) serve(request);
    Atomics.store(bell, 1, served + 1);
  }
}
