/**
 * The job engine in a child process, for the crash test: a real SQLite store, a fake renderer, and a fake
 * platform that "posts" results and failures into a log file. Posts are idempotent per job (as a Discord
 * interaction edit or a nonce'd message is): the log records every attempt, the test counts what is visible.
 *
 * argv: dataDir, sinkFile, jobsToSubmit (comma-separated event ids), mode ("run" | "drain")
 */
import { appendFileSync } from "node:fs";
import type { BackendResult, ImageBackend } from "../../src/core/backend.ts";
import { Engine } from "../../src/core/engine.ts";
import { EaselError } from "../../src/core/errors.ts";
import type { GenerationRequest } from "../../src/core/request.ts";
import { encodeJobImages } from "../../src/render/encode-job.ts";
import { prepareImage } from "../../src/render/prepare-image.ts";
import { SqliteEngineStore } from "../../src/store/engine-store.ts";
import { Store } from "../../src/store/index.ts";

const [dataDir = "", sinkFile = "", eventList = "", mode = "run"] = process.argv.slice(2);
const store = Store.open(dataDir);

/** Renders in 5–30 ms; some prompts fail for good, some once (retried). */
const backend: ImageBackend = {
  name: "ldm",
  async generate(request: GenerationRequest, context): Promise<BackendResult> {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, 5 + (request.seed % 26));
      context.signal.addEventListener("abort", () => {
        clearTimeout(timer);
        reject(context.signal.reason);
      });
    });
    if (request.prompt.endsWith("-policy"))
      throw new EaselError("content_policy", "Rejected by the provider's safety system.");
    if (request.prompt.endsWith("-flaky") && Math.random() < 0.5)
      throw new EaselError("worker_crashed", "boom");
    const data = new Uint8Array(8 * 8 * 3).fill(request.seed % 256);
    return {
      images: [{ format: "rgb", data, width: 8, height: 8, seed: request.seed }],
      notes: [],
      used: {},
      renderMs: 1,
    };
  },
};

const engine = new Engine({
  store: new SqliteEngineStore(store),
  backends: { ldm: backend },
  encoder: encodeJobImages,
  loadImage: async (id, as) => prepareImage(await store.images.readImage(id), id, as),
  limits: { maxQueued: 1000, maxQueuedPerUser: 1000, maxQueuedPerWorkspace: 1000, maxAttempts: 3 },
});

const post = (line: string) => appendFileSync(sinkFile, `${line}\n`);
const deliver = (jobId: string) => {
  post(`result ${jobId}`);
  // A little time between posting and recording it: the "delivering" moment a kill can hit.
  setTimeout(() => engine.delivered(jobId), 3);
};
engine.on("done", ({ job }) => deliver(job.id));
// A result an earlier run rendered but did not record as posted is handed over again at start.
engine.on("resumed", ({ job }) => {
  if (job.state === "rendered" || job.state === "delivering") deliver(job.id);
});
engine.on("failed", ({ job, code }) => {
  post(`failed ${job.id} ${code}`);
  setTimeout(() => engine.failureShown(job.id), 3);
});

await engine.start();
for (const [i, eventId] of eventList.split(",").filter(Boolean).entries()) {
  const suffix = i % 7 === 3 ? "-policy" : i % 5 === 1 ? "-flaky" : "";
  const request: GenerationRequest = {
    prompt: `job ${eventId}${suffix}`,
    negativePrompt: "",
    seed: 1000 + i,
    steps: 4,
    guidance: 7.5,
    sampler: "euler",
    width: 64,
    height: 64,
    count: 1,
    backend: "ldm",
    model: "fake",
    requester: { platform: "discord", workspaceId: `g${i % 2}`, channelId: "c", userId: `u${i % 3}` },
  };
  const result = engine.submit(eventId, request);
  // The acknowledgement the user sees: only after the job row is durable.
  if (result.ok) process.stdout.write(`ack ${eventId} ${result.job.id}\n`);
}
process.stdout.write("submitted\n");

if (mode === "drain") {
  const timer = setInterval(() => {
    const open = store.jobs.listJobs({ states: ["queued", "running", "rendered"] }).length;
    if (open === 0 && store.jobs.listUnnotifiedFailures().length === 0) {
      clearInterval(timer);
      store.close();
      process.stdout.write("drained\n");
      process.exit(0);
    }
  }, 20);
}
