import type { EncodedImage } from "../core/backend.ts";
import type { EngineStore, JobPatch, StoredImage } from "../core/engine.ts";
import { isEaselError } from "../core/errors.ts";
import type { Job, JobState } from "../core/job.ts";
import type { GenerationRequest } from "../core/request.ts";
import { durableWriteTransaction } from "./database.ts";
import type { Store } from "./index.ts";

/** The job engine's view of the store: the same tables, in the shape src/core/engine.ts asks for. */
export class SqliteEngineStore implements EngineStore {
  constructor(private readonly store: Store) {}

  createJob(eventId: string, request: GenerationRequest, now: number): { job: Job; created: boolean } {
    return this.store.jobs.createJob({ eventId, request, now });
  }

  getJob(jobId: string): Job | undefined {
    return this.store.jobs.getJob(jobId);
  }

  findJobByEvent(eventId: string): Job | undefined {
    return this.store.jobs.getJobByEventId(eventId);
  }

  transition(
    jobId: string,
    to: JobState,
    from: readonly JobState[],
    patch: JobPatch = {},
    options: { durable?: boolean } = {},
  ): Job | undefined {
    try {
      const move = () => this.store.jobs.transition(jobId, to, { from: [...from], ...patch });
      // The inner write transaction joins the durable one, whose commit is the fsync.
      return options.durable
        ? durableWriteTransaction(this.store.db, `moving job ${jobId} to ${to}`, move)
        : move();
    } catch (err) {
      // Lost a race (e.g. cancel against completion): the engine treats "not moved" as a normal outcome.
      if (isEaselError(err, "conflict")) return undefined;
      throw err;
    }
  }

  jobsInStates(states: readonly JobState[]): Job[] {
    return this.store.jobs.listJobs({ states: [...states] });
  }

  async saveImages(jobId: string, images: readonly EncodedImage[]): Promise<StoredImage[]> {
    const stored: StoredImage[] = [];
    for (const image of images) {
      const record = await this.store.images.saveImage(image.png, {
        jobId,
        variant: image.variant,
        ...(image.seed === null ? {} : { seed: image.seed }),
        ...(image.flagged ? { flagged: true } : {}),
        width: image.width,
        height: image.height,
        mime: "image/png",
      });
      stored.push({ ...image, id: record.sha256 });
    }
    return stored;
  }

  async loadImages(jobId: string): Promise<StoredImage[]> {
    const out: StoredImage[] = [];
    for (const record of this.store.images.imagesForJob(jobId)) {
      out.push({
        id: record.sha256,
        variant: record.variant ?? 0,
        png: await this.store.images.readImage(record.sha256),
        width: record.width,
        height: record.height,
        seed: record.seed ?? null,
        ...(record.flagged ? { flagged: true } : {}),
      });
    }
    return out;
  }

  unnotifiedFailures(): Job[] {
    return this.store.jobs.listUnnotifiedFailures();
  }

  markFailureNotified(jobId: string, now: number): void {
    this.store.jobs.markFailureNotified(jobId, now);
  }
}
