import type { GenerateProgress } from "./pipeline.ts";

/**
 * How the worker reports progress: step counts go out at once; a preview never waits and never queues up behind
 * another. While one preview is still being written to the IPC channel (the bot may be busy), a newer one takes
 * the place of any that waits, which is dropped as stale, and the step count goes out without it. So the UNet's
 * next step never waits for the bot, and a slow bot gets the newest preview, not a backlog.
 */
export class PreviewSender {
  private inFlight = false;
  private waiting: GenerateProgress | undefined;
  private lastStep = 0;
  private done = false;

  /**
   * @param post sends a progress without a preview.
   * @param postPreview sends one with its preview and calls `sent` once it has left this process.
   */
  constructor(
    private readonly post: (progress: GenerateProgress) => void,
    private readonly postPreview: (progress: GenerateProgress, sent: () => void) => void,
  ) {}

  progress(progress: GenerateProgress): void {
    this.lastStep = Math.max(this.lastStep, progress.step);
    if (progress.previews === undefined) {
      this.post(progress);
      return;
    }
    if (this.inFlight) {
      const { previews: _later, ...step } = progress;
      this.post(step);
      this.waiting = progress;
      return;
    }
    this.send(progress);
  }

  /** The job is over: a preview still waiting would only arrive after the result. */
  finish(): void {
    this.done = true;
    this.waiting = undefined;
  }

  private send(progress: GenerateProgress): void {
    this.inFlight = true;
    this.postPreview(progress, () => {
      this.inFlight = false;
      const next = this.waiting;
      this.waiting = undefined;
      // Its step count already went out; it is shown as the newest state, never as a step back.
      if (next && !this.done) this.send({ ...next, step: Math.max(next.step, this.lastStep) });
    });
  }
}
