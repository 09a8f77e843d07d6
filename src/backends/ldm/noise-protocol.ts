/** What the noise thread (noise-thread.ts) and its code (noise-thread-worker.ts) share. */

/** One generator's request to the noise thread, in shared memory. */
export interface NoiseRequest {
  /** Int32 [status]: 0 idle, 1 requested, 2 done (DONE). */
  control: SharedArrayBuffer;
  /** The generator's state (STATE_WORDS uint32), before the draw and, once done, after it. */
  words: SharedArrayBuffer;
  /** Float64 [has cached normal, its value]. */
  normal: SharedArrayBuffer;
  /** float32 × n: the draw. */
  out: SharedArrayBuffer;
}

/**
 * How requests reach the thread without a message per step (a postMessage costs 0.1–0.2 ms between UNet runs,
 * most of a sampler step): each generator registers its request once, through `port`, under an id; a request
 * is then its id written into `ring` at the doorbell's count, the count raised and the thread woken with
 * Atomics.notify. The thread waits on the doorbell, reads registrations from its port
 * (receiveMessageOnPort), serves the ids in order and counts them done.
 */
export interface NoiseDoorbell {
  /** Int32 [requests rung, requests served]. */
  bell: SharedArrayBuffer;
  /** Int32 × RING_SIZE: the id of request k at k mod RING_SIZE. */
  ring: SharedArrayBuffer;
}

/** A registration through the thread's port: a generator's request buffers under its id, or the id dropped. */
export type NoiseRegistration = { id: number; request: NoiseRequest } | { drop: number };

export const RING_SIZE = 64;
export const IDLE = 0;
export const REQUESTED = 1;
export const DONE = 2;
