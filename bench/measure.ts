/** Small timing helpers shared by the benchmarks: every figure is measured in the run that prints it. */

/**
 * Runs `fn` `warmup` times untimed, then `runs` times, and returns each run's duration in milliseconds;
 * `between` runs untimed before each run.
 */
export function timeRuns(
  fn: () => void,
  runs: number,
  warmup = Math.ceil(runs / 10),
  between: () => void = () => {},
): number[] {
  for (let i = 0; i < warmup; i++) {
    between();
    fn();
  }
  const durations: number[] = [];
  for (let i = 0; i < runs; i++) {
    between();
    const start = performance.now();
    fn();
    durations.push(performance.now() - start);
  }
  return durations;
}

/** The q-quantile (0..1) of `values`, nearest-rank. */
export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

/** Prints one `key: value` line, the format `npm run bench` promises. */
export function report(key: string, value: number, digits = 2): void {
  console.log(`${key}: ${value.toFixed(digits)}`);
}
