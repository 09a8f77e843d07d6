import { fileURLToPath } from "node:url";
import { MessageChannel, type MessagePort, Worker } from "node:worker_threads";
import {
  DONE,
  IDLE,
  type NoiseDoorbell,
  type NoiseRegistration,
  type NoiseRequest,
  REQUESTED,
  RING_SIZE,
} from "./noise-protocol.ts";
import { STATE_WORDS, TorchGenerator } from "./torch-random.ts";

/**
 * Ancestral noise drawn ahead, on a thread of its own, while the UNet runs. A sampler that adds fresh noise at
 * every step (Euler ancestral, LCM) asks its generator for `randn(n)` once per step; those values do not depend
 * on the UNet's output, only on the generator's state. So after each draw, a PrefetchingGenerator hands its state
 * to the noise thread, which draws the next `n` values while onnxruntime computes the next step (onnxruntime's
 * run blocks this thread, not that one), and the step takes them instead of spending half a millisecond or more
 * on 16 384 logarithms, square roots, cosines and sines of its own. The values and the state after them are
 * exactly what drawing here would give (the same code runs there); a draw of another length, a reseed or a
 * thread that is not (yet) running just draws here.
 */

interface NoiseThread {
  worker: Worker | undefined;
  ready: boolean;
  failed: boolean;
  port: MessagePort | undefined;
  bell: Int32Array;
  ring: Int32Array;
  nextId: number;
}

/** The process's noise thread, started on first use; `ready` once its code runs. */
let thread: NoiseThread | undefined;

function noiseThread(): NoiseThread {
  if (thread === undefined) {
    const doorbell: NoiseDoorbell = {
      bell: new SharedArrayBuffer(8),
      ring: new SharedArrayBuffer(4 * RING_SIZE),
    };
    const state: NoiseThread = {
      worker: undefined,
      ready: false,
      failed: false,
      port: undefined,
      bell: new Int32Array(doorbell.bell),
      ring: new Int32Array(doorbell.ring),
      nextId: 1,
    };
    thread = state;
    startThread(state, doorbell).catch(() => {
      state.failed = true;
    });
  }
  return thread;
}

/**
 * The thread's code is noise-thread-worker.ts and what it imports, bundled by esbuild into one script: a worker
 * thread cannot load TypeScript through tsx's loader on Node 20. Built in the background; until it runs, draws
 * are made here.
 */
async function startThread(state: NoiseThread, doorbell: NoiseDoorbell): Promise<void> {
  const { build, stop } = await import("esbuild");
  const bundled = await build({
    entryPoints: [fileURLToPath(new URL("./noise-thread-worker.ts", import.meta.url))],
    bundle: true,
    write: false,
    format: "cjs",
    platform: "node",
    target: "node20",
    logLevel: "silent",
  });
  // esbuild's service is a child process: none is left running beside the worker.
  await stop();
  const code = bundled.outputFiles[0]?.text;
  if (code === undefined) throw new Error("esbuild produced no noise thread");
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(code, {
    eval: true,
    workerData: { doorbell, port: port2 },
    transferList: [port2],
  });
  // Only ever read by the thread itself (receiveMessageOnPort): it must not keep this process alive.
  port1.unref();
  state.port = port1;
  worker.on("message", (message) => {
    if (message === "ready") state.ready = true;
  });
  worker.on("error", () => {
    state.failed = true;
  });
  worker.on("exit", () => {
    state.failed = true;
  });
  // The thread never keeps a process alive.
  worker.unref();
  state.worker = worker;
}

/**
 * Starts the noise thread. Only a long-lived process does (the LDM worker, when it loads a model): starting it
 * costs more CPU than it saves in a one-off render (the CLI), where every draw is made here.
 */
export function startNoiseThread(): void {
  noiseThread();
}

/** Whether the noise thread is running (tests wait for it). */
export function noiseThreadReady(): boolean {
  return thread?.ready === true && !thread.failed;
}

/** Drops a collected generator's buffers from the thread. */
const registrations = new FinalizationRegistry<number>((id) => {
  if (thread?.failed === false) thread.port?.postMessage({ drop: id } satisfies NoiseRegistration);
});

/** A TorchGenerator whose draws of `n` values are made ahead on the noise thread (see above). */
export class PrefetchingGenerator extends TorchGenerator {
  private readonly request: NoiseRequest;
  private readonly control: Int32Array;
  private readonly words: Uint32Array;
  private readonly normal: Float64Array;
  private readonly drawn: Float32Array;
  /** Whether the request in shared memory continues this generator's current state. */
  private pending = false;
  /** The id the thread knows this generator's buffers by, once registered. */
  private id: number | undefined;
  /** Draws served by the noise thread so far (the others were made here). */
  drawsAhead = 0;

  /**
   * @param n the draw size made ahead.
   * @param ahead `every draw`: after each draw of n, the next one is made ahead; `first draw`: only the first.
   */
  constructor(
    seed: number | bigint | string,
    private readonly n: number,
    private readonly ahead: "every draw" | "first draw" = "every draw",
  ) {
    super(seed);
    this.request = {
      control: new SharedArrayBuffer(4),
      words: new SharedArrayBuffer(4 * STATE_WORDS),
      normal: new SharedArrayBuffer(16),
      out: new SharedArrayBuffer(4 * n),
    };
    this.control = new Int32Array(this.request.control);
    this.words = new Uint32Array(this.request.words);
    this.normal = new Float64Array(this.request.normal);
    this.drawn = new Float32Array(this.request.out);
    this.prefetch();
  }

  override manualSeed(seed: number | bigint | string): this {
    this.pending = false;
    return super.manualSeed(seed);
  }

  override nextUint32(): number {
    // A raw draw moves the stream on too.
    this.pending = false;
    return super.nextUint32();
  }

  override loadState(words: Uint32Array, normal: Float64Array): void {
    this.pending = false;
    super.loadState(words, normal);
  }

  override randnInto(out: Float32Array): Float32Array {
    if (out.length !== this.n) {
      // Any other draw moves the stream on: a prefetch made from the state before it is stale.
      this.pending = false;
      return super.randnInto(out);
    }
    if (this.pending && Atomics.load(this.control, 0) === DONE) {
      Atomics.store(this.control, 0, IDLE);
      out.set(this.drawn);
      super.loadState(this.words, this.normal);
      this.drawsAhead += 1;
    } else {
      // Not drawn yet (onnxruntime's threads had the cores): drawing here costs no more than waiting would,
      // often less. The thread's late answer is discarded by the next prefetch.
      super.randnInto(out);
    }
    this.pending = false;
    if (this.ahead === "every draw") this.prefetch();
    return out;
  }

  /** Hands the current state to the noise thread for the next draw of n values, when the thread is up. */
  private prefetch(): void {
    const t = thread;
    if (t === undefined || !t.ready || t.failed || t.port === undefined) return;
    const status = Atomics.load(this.control, 0);
    // Still drawing a draw that was not waited for: this one is made here, not queued behind it.
    if (status === REQUESTED) return;
    const rung = t.bell[0] as number;
    // Every generator has at most one request in flight; a full ring (never in practice) draws here.
    if (rung - Atomics.load(t.bell, 1) >= RING_SIZE) return;
    if (this.id === undefined) {
      this.id = t.nextId++;
      t.port.postMessage({ id: this.id, request: this.request } satisfies NoiseRegistration);
      registrations.register(this, this.id);
    }
    this.saveState(this.words, this.normal);
    Atomics.store(this.control, 0, REQUESTED);
    t.ring[rung % RING_SIZE] = this.id;
    Atomics.store(t.bell, 0, rung + 1);
    Atomics.notify(t.bell, 0);
    this.pending = true;
  }

  /** Resolves once the draw made ahead, if one is on its way, is there to take (in the pipeline a UNet run gives it this time). */
  async drawnAhead(): Promise<void> {
    if (!this.pending) return;
    const wait = Atomics.waitAsync(this.control, 0, REQUESTED);
    if (wait.async) await wait.value;
  }
}
