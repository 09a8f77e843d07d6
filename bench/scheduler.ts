import {
  noiseThreadReady,
  PrefetchingGenerator,
  startNoiseThread,
} from "../src/backends/ldm/noise-thread.ts";
import {
  createScheduler,
  SCHEDULER_NAMES,
  type SchedulerName,
} from "../src/backends/ldm/schedulers/index.ts";
import { SIMD_KERNELS } from "../src/backends/ldm/simd-kernels.ts";
import { TorchGenerator } from "../src/backends/ldm/torch-random.ts";
import { SD15_SCHEDULER_CONFIG } from "../test/support.ts";
import { quantile, report, timeRuns } from "./measure.ts";

const SIZE = 2 * 4 * 64 * 64;
const STEPS = 50;

/**
 * `scheduler_step_us_<sampler>`: one step of each sampler on [2,4,64,64] (two 512² latents), as the pipeline
 * runs it: the UNet input divided into a reused buffer, then the step (its noise included), cycling through a
 * 50-step schedule. Median of 500 steps, after a first round over every sampler that lets V8 finish compiling
 * the shared loops (the first sampler measured is otherwise up to twice as slow).
 */
export async function benchScheduler(): Promise<void> {
  const generator = new TorchGenerator(1);
  const sample = generator.randn(SIZE);
  const modelOutput = generator.randn(SIZE);
  for (const name of SCHEDULER_NAMES) stepMicroseconds(name, sample, modelOutput, generator);
  for (const name of SCHEDULER_NAMES) {
    report(`scheduler_step_us_${name}`, stepMicroseconds(name, sample, modelOutput, generator), 0);
  }
  // In the pipeline, the samplers that draw noise at every step get it from the noise thread, drawn while the
  // UNet ran: here a 10 ms pause that blocks this thread as onnxruntime's run does stands for the UNet.
  startNoiseThread();
  // Its "ready" arrives as an event: wait with the event loop free.
  while (!noiseThreadReady()) await new Promise((resolve) => setTimeout(resolve, 10));
  const ahead = new PrefetchingGenerator(1, SIZE);
  for (const name of ["euler_ancestral", "lcm"] as const) {
    const us = stepMicroseconds(name, sample, modelOutput, ahead, () => blockFor(10));
    report(`scheduler_step_us_${name}_noise_ahead`, us, 0);
  }
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/** Blocks this thread for `ms` (as a synchronous onnxruntime run does). */
function blockFor(ms: number): void {
  Atomics.wait(pause, 0, 0, ms);
}

function stepMicroseconds(
  name: SchedulerName,
  sample: Float32Array,
  modelOutput: Float32Array,
  generator: TorchGenerator,
  between: () => void = () => {},
): number {
  const scheduler = createScheduler(name, SD15_SCHEDULER_CONFIG);
  scheduler.setTimesteps(STEPS);
  const calls = scheduler.timesteps.length;
  const input = new Float32Array(SIZE);
  let index = 0;
  const runs = timeRuns(
    () => {
      if (index === 0) scheduler.setTimesteps(STEPS);
      divideInto(sample, scheduler.modelInputDivisor(index), input);
      scheduler.step(modelOutput, index, sample, generator);
      index = (index + 1) % calls;
    },
    500,
    100,
    between,
  );
  return quantile(runs, 0.5) * 1000;
}

/** The input division as the pipeline does it: the SIMD kernel where there is one. */
function divideInto(values: Float32Array, divisor: number, out: Float32Array): void {
  if (SIMD_KERNELS) {
    SIMD_KERNELS.divide(values, divisor, out);
    return;
  }
  for (let i = 0; i < out.length; i++) out[i] = (values[i] as number) / divisor;
}
