import type { JobsPort } from "./bot-services.ts";
import type { StoredImage } from "./engine.ts";
import type { Job } from "./job.ts";
import type { OutgoingFile } from "./relay.ts";

/**
 * The files easel attaches, for every platform: their names as members download them, and their bytes, which
 * the engine keeps in memory right after a render and the store has otherwise.
 */

/** A result's image: `easel-JOB-N.png`, or `easel-JOB-grid.png` for the grid of several (variant 0). */
export function resultFileName(jobId: string, variant: number): string {
  return variant === 0 ? `easel-${jobId}-grid.png` : `easel-${jobId}-${variant}.png`;
}

/** A contest's winning image, attached to its announcement. */
export function winnerFileName(jobId: string, variant: number): string {
  return `easel-${jobId}-${variant}-winner.png`;
}

/** The animation of a job's denoising, for "how it was made". */
export function denoisingFileName(jobId: string): string {
  return `easel-${jobId}-denoising.gif`;
}

/** The PNG bytes of a stored image: the ones in memory when there are, else the store's. */
export async function imageBytes(
  jobs: Pick<JobsPort, "imageBytes">,
  image: StoredImage,
): Promise<Uint8Array> {
  return image.png.length > 0 ? image.png : jobs.imageBytes(image.id);
}

/** One image of a job as a file to attach, named `filename`. */
export async function imageFile(
  jobs: Pick<JobsPort, "imageBytes">,
  image: StoredImage,
  filename: string,
): Promise<OutgoingFile> {
  return {
    imageId: image.id,
    filename,
    bytes: await imageBytes(jobs, image),
    width: image.width,
    height: image.height,
  };
}

/** U: one image of `job` alone, at full size, named as it is in the result. */
export function fullSizeFile(
  jobs: Pick<JobsPort, "imageBytes">,
  job: Job,
  image: StoredImage,
): Promise<OutgoingFile> {
  return imageFile(jobs, image, resultFileName(job.id, image.variant));
}
