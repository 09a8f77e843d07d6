/**
 * A one-line progress bar for the terminal, redrawn in place on stderr; silent when stderr is not a terminal
 * (logs and pipes get the summary lines only). Ten lines do not justify a dependency.
 */
export class ProgressBar {
  private readonly started = performance.now();
  private readonly enabled: boolean;

  constructor(
    private readonly label: string,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    this.enabled = Boolean(stream.isTTY);
  }

  /** Redraws the bar at `done` of `total`, with an optional unit (e.g. "steps", "MB"). */
  update(done: number, total: number, unit = ""): void {
    if (!this.enabled || total <= 0) return;
    const width = 30;
    const filled = Math.round((Math.min(done, total) / total) * width);
    const seconds = ((performance.now() - this.started) / 1000).toFixed(1);
    const bar = `${"█".repeat(filled)}${"░".repeat(width - filled)}`;
    this.stream.write(`\r${this.label} ${bar} ${done}/${total}${unit ? ` ${unit}` : ""}  ${seconds} s`);
  }

  /** Ends the bar's line so that later output starts on a fresh one. */
  finish(): void {
    if (this.enabled) this.stream.write("\n");
  }
}
