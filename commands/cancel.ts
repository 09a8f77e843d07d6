import { z } from "zod";
import { actorIsAdmin } from "../src/core/imagine.ts";
import { BOT_MESSAGES } from "../src/core/messages.ts";
import { defineCommand } from "./types.ts";

/** `/cancel [job]`: cancels one of your jobs (admins: anyone's); without an id, your latest waiting one. */
export const cancelCommand = defineCommand({
  name: "cancel",
  description: "Cancel a job of yours that is waiting or rendering",
  options: {
    job: z.string().max(32).optional().describe("Job id (shown under its message); default: your latest"),
  },
  positional: ["job"],
  handle(args, { services, actor }) {
    const me = actor.requester;
    const mine = services.engine
      .activeJobs()
      .filter(
        ({ job }) =>
          job.request.requester.platform === me.platform && job.request.requester.userId === me.userId,
      );
    const jobId = args.job?.trim() || mine.at(-1)?.job.id;
    if (!jobId) return { kind: "text", text: BOT_MESSAGES.nothingQueued, ephemeral: true };
    const job = services.jobs.get(jobId);
    // A server's admins rule their own server only: another server's job is as good as unknown here.
    const r = job?.request.requester;
    if (!job || r?.platform !== me.platform || (r.workspaceId !== me.workspaceId && r.userId !== me.userId)) {
      return { kind: "text", text: BOT_MESSAGES.jobGone, ephemeral: true };
    }
    const own = job.request.requester.userId === me.userId;
    if (!own && !actorIsAdmin(services, actor)) {
      return { kind: "text", text: BOT_MESSAGES.onlyOwnerOrAdmin("cancel"), ephemeral: true };
    }
    const text = services.engine.cancel(jobId) ? BOT_MESSAGES.cancelRequested : BOT_MESSAGES.alreadyFinished;
    return { kind: "text", text, ephemeral: true };
  },
});
