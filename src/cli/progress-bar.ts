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

/** Bytes in decimal units, three digits, as the hub shows sizes: 812 B, 41.0 kB, 412 MB, 1.72 GB. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return "? B";
  const units = ["B", "kB", "MB", "GB", "TB", "PB"];
  let value = bytes;
  let unit = 0;
  while (value >= 999.5 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  const digits = unit === 0 || value >= 99.95 ? 0 : value >= 9.995 ? 1 : 2;
  return `${value.toFixed(digits)} ${units[unit]}`;
}

/** A duration as m:ss or h:mm:ss, rounded up to the second; "?" when it cannot be known. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const total = Math.ceil(seconds);
  const [h, m, s] = [Math.floor(total / 3600), Math.floor(total / 60) % 60, total % 60];
  const pad = (n: number) => String(n).padStart(2, "0");
  return h > 0 ? `${h}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
}

/** One moment of a transfer; `total` undefined when unknown, `bytesPerSecond` undefined before a rate is known. */
export interface TransferState {
  label: string;
  received: number;
  total?: number;
  bytesPerSecond?: number;
}

/** `unet/model.onnx  412 MB / 1.72 GB  38.2 MB/s  0:34 left`; the parts it cannot know are left out. */
export function formatTransfer(state: TransferState): string {
  const { label, received, total, bytesPerSecond: rate } = state;
  const parts = [
    label,
    total === undefined ? formatBytes(received) : `${formatBytes(received)} / ${formatBytes(total)}`,
  ];
  if (rate !== undefined && rate > 0) {
    parts.push(`${formatBytes(rate)}/s`);
    if (total !== undefined) parts.push(`${formatDuration(Math.max(0, total - received) / rate)} left`);
  }
  return parts.join("  ");
}

/** The rate of a growing byte count over the last `windowMs`, from samples the caller timestamps. */
export class RateMeter {
  private samples: { at: number; bytes: number }[] = [];

  constructor(private readonly windowMs = 5000) {}

  add(at: number, bytes: number): void {
    this.samples.push({ at, bytes });
    // Keep one sample older than the window, so the window is always spanned.
    while (this.samples.length > 2 && (this.samples[1]?.at ?? at) <= at - this.windowMs) this.samples.shift();
  }

  /** Bytes per second, or undefined until the samples span a quarter of a second. */
  bytesPerSecond(): number | undefined {
    const first = this.samples[0];
    const last = this.samples.at(-1);
    if (!first || !last || last.at - first.at < 250) return undefined;
    return ((last.bytes - first.bytes) * 1000) / (last.at - first.at);
  }
}

/** Where a TransferLine writes: a terminal gets a redrawn line, anything else occasional plain lines. */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  /** A terminal's width: a redrawn line is cut to it, as a wrapped one could not be redrawn. */
  columns?: number;
}

/** How often a TransferLine writes: TTY redraws, and the plain lines of logs (each step of the total or time). */
export interface TransferLineOptions {
  now?: () => number;
  redrawMs?: number;
  plainEveryMs?: number;
  plainEveryFraction?: number;
}

/**
 * The progress of a download as one line: on a terminal redrawn in place at most ten times a second; elsewhere
 * (logs, pipes) a plain line at each tenth of the total and at least every 30 s while bytes arrive.
 */
export class TransferLine {
  private readonly meter = new RateMeter();
  private readonly now: () => number;
  private readonly tty: boolean;
  private lastWrite = Number.NEGATIVE_INFINITY;
  private lastStep = 0;
  private lastText = "";
  private drawn = false;

  constructor(
    private readonly stream: ProgressStream,
    private readonly options: TransferLineOptions = {},
  ) {
    this.now = options.now ?? (() => performance.now());
    this.tty = Boolean(stream.isTTY);
  }

  /** `received` of `total` so far, of which `downloaded` came over the network (what the rate counts). */
  update(label: string, received: number, total: number | undefined, downloaded: number): void {
    const at = this.now();
    this.meter.add(at, downloaded);
    const rate = this.meter.bytesPerSecond();
    const text = formatTransfer({
      label,
      received,
      ...(total === undefined ? {} : { total }),
      ...(rate ? { bytesPerSecond: rate } : {}),
    });
    if (this.tty) {
      if (at - this.lastWrite < (this.options.redrawMs ?? 100) && received !== total) return;
      const width = this.stream.columns;
      this.stream.write(`\r${width ? text.slice(0, width - 1) : text}\x1b[K`);
      this.drawn = true;
    } else {
      const steps = Math.round(1 / (this.options.plainEveryFraction ?? 0.1));
      const step = total ? Math.floor((received * steps) / total) : 0;
      const due = at - this.lastWrite >= (this.options.plainEveryMs ?? 30_000);
      if (step <= this.lastStep && !(due && text !== this.lastText)) return;
      this.lastStep = Math.max(step, this.lastStep);
      this.stream.write(`${text}\n`);
    }
    this.lastWrite = at;
    this.lastText = text;
  }

  /** Ends a redrawn line so that later output starts on a fresh one. */
  finish(): void {
    if (this.drawn) this.stream.write("\n");
    this.drawn = false;
  }
}
