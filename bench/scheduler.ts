import { createScheduler } from "../src/backends/ldm/schedulers/index.ts";
import { TorchGenerator } from "../src/backends/ldm/torch-random.ts";
import { SD15_SCHEDULER_CONFIG } from "../test/support.ts";
import { quantile, report, timeRuns } from "./measure.ts";

/** `scheduler_step_us`: one euler_ancestral step (input scaling + step, noise included) on [2,4,64,64]. */
export function benchScheduler(): void {
  const size = 2 * 4 * 64 * 64;
  const generator = new TorchGenerator(1);
  const sample = generator.randn(size);
  const modelOutput = generator.randn(size);
  const scheduler = createScheduler("euler_ancestral", SD15_SCHEDULER_CONFIG);
  const steps = 50;
  let index = 0;
  const runs = timeRuns(
    () => {
      if (index === 0) scheduler.setTimesteps(steps);
      scheduler.scaleModelInput(sample, index);
      scheduler.step(modelOutput, index, sample, generator);
      index = (index + 1) % steps;
    },
    500,
    50,
  );
  report("scheduler_step_us", quantile(runs, 0.5) * 1000, 0);
}
