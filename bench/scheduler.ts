import {
  createScheduler,
  SCHEDULER_NAMES,
  type SchedulerName,
} from "../src/backends/ldm/schedulers/index.ts";
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
export function benchScheduler(): void {
  const generator = new TorchGenerator(1);
  const sample = generator.randn(SIZE);
  const modelOutput = generator.randn(SIZE);
  for (const name of SCHEDULER_NAMES) stepMicroseconds(name, sample, modelOutput, generator);
  for (const name of SCHEDULER_NAMES) {
    report(`scheduler_step_us_${name}`, stepMicroseconds(name, sample, modelOutput, generator), 0);
  }
}

function stepMicroseconds(
  name: SchedulerName,
  sample: Float32Array,
  modelOutput: Float32Array,
  generator: TorchGenerator,
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
  );
  return quantile(runs, 0.5) * 1000;
}

function divideInto(values: Float32Array, divisor: number, out: Float32Array): void {
  for (let i = 0; i < out.length; i++) out[i] = (values[i] as number) / divisor;
}
