import type { ImagingPort, JobsPort } from "./bot-services.ts";
import type { StoredImage } from "./engine.ts";
import type { Job } from "./job.ts";
import { BOT_MESSAGES, CARD_TEXT } from "./messages.ts";
import type { MessageModel } from "./presenter.ts";
import type { OutgoingFile } from "./relay.ts";

/**
 * The files easel attaches, for every platform: their names as members download them, their bytes, which
 * the engine keeps in memory right after a render and the store has otherwise, and their fit to an upload limit.
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

/** Files within an upload limit: each one over it re-encoded smaller; `shrunk` says whether any was. */
export async function fitToLimit(
  imaging: Pick<ImagingPort, "fit">,
  files: readonly OutgoingFile[],
  limit: number,
): Promise<{ files: OutgoingFile[]; shrunk: boolean }> {
  let shrunk = false;
  const fitted: OutgoingFile[] = [];
  for (const file of files) {
    if (file.bytes.length <= limit) {
      fitted.push(file);
      continue;
    }
    fitted.push({ ...file, bytes: await imaging.fit(file.bytes, limit) });
    shrunk = true;
  }
  return { files: fitted, shrunk };
}

/** A result's card and files within an upload limit; the card says so when an image was made smaller. */
export async function fitResult(
  imaging: Pick<ImagingPort, "fit">,
  model: MessageModel,
  files: readonly OutgoingFile[],
  limit: number,
): Promise<{ model: MessageModel; files: OutgoingFile[] }> {
  const fitted = await fitToLimit(imaging, files, limit);
  if (!fitted.shrunk) return { model, files: fitted.files };
  const note = { name: CARD_TEXT.fields.note, value: BOT_MESSAGES.attachmentScaled(limit), inline: false };
  return { model: { ...model, fields: [...model.fields, note] }, files: fitted.files };
}
