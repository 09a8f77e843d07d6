import { z } from "zod";
import { actorIsAdmin } from "../src/core/imagine.ts";
import { BOT_MESSAGES, COMMAND_TEXT } from "../src/core/messages.ts";
import { cut, memberText } from "../src/core/presenter.ts";
import { defineCommand } from "./types.ts";

/** `/queue`: your jobs and their places in line; admins may list everyone's. */
export const queueCommand = defineCommand({
  name: "queue",
  description: "Your jobs waiting or rendering, and their places in line",
  options: { all: z.boolean().optional().describe("Everyone's jobs (admins)") },
  handle(args, { services, actor }) {
    const admin = actorIsAdmin(services, actor);
    const me = actor.requester;
    const all = args.all === true && admin;
    const jobs = services.engine.activeJobs().filter(({ job }) => {
      const r = job.request.requester;
      if (r.platform !== me.platform) return false;
      return all ? r.workspaceId === me.workspaceId : r.userId === me.userId;
    });
    if (jobs.length === 0) {
      return {
        kind: "text",
        text: all ? BOT_MESSAGES.noJobsAtAll : BOT_MESSAGES.nothingQueued,
        ephemeral: true,
      };
    }
    const lines = jobs.map(({ job, state, position, etaMs }) =>
      COMMAND_TEXT.queue.job({
        jobId: job.id,
        running: state === "running",
        position,
        etaMs,
        userId: all ? job.request.requester.userId : undefined,
        prompt: cut(memberText(job.request.prompt), 60),
      }),
    );
    return { kind: "text", text: lines.join("\n"), ephemeral: true };
  },
});
