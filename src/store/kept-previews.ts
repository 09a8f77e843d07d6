import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { BackendImage } from "../core/backend.ts";
import type { Job } from "../core/job.ts";
import type { PreviewKeeper } from "../core/relay.ts";

/**
 * The denoising previews kept with a finished job, for "how it was made": `<dir>/<job>.gif` (the animation)
 * and `<dir>/<job>.gif.frames` (its frame count). store/retention.ts removes both with the job, and sweeps
 * the temp files a crash left here.
 */
export class KeptPreviews implements PreviewKeeper {
  /** `encode`: the frames as an animated GIF (render/animation.ts's encodeAnimation). */
  constructor(
    private readonly dir: string,
    private readonly encode: (frames: BackendImage[]) => Promise<Uint8Array>,
  ) {}

  async keep(job: Job, frames: { step: number; total: number; image: BackendImage }[]): Promise<void> {
    const gif = await this.encode(frames.map((f) => f.image));
    await mkdir(this.dir, { recursive: true });
    const file = this.file(job.id);
    // Written beside and renamed, so a crash never leaves half a file under the job's name.
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, gif);
    await rename(tmp, file);
    await writeFile(`${file}.frames`, String(frames.length));
  }

  /** The kept animation of `jobId` and its frame count; undefined when none was kept (or it was pruned). */
  async animation(jobId: string): Promise<{ gif: Uint8Array; frames: number } | undefined> {
    const file = this.file(jobId);
    try {
      const gif = await readFile(file);
      const frames = Number(await readFile(`${file}.frames`, "utf8"));
      return { gif, frames };
    } catch {
      return undefined;
    }
  }

  private file(jobId: string): string {
    return join(this.dir, `${jobId}.gif`);
  }
}
