import { z } from "zod";
import { messageLink } from "../src/core/links.ts";
import { COMMAND_TEXT } from "../src/core/messages.ts";
import { cut, memberText } from "../src/core/presenter.ts";
import { defineCommand } from "./types.ts";

const PERIODS = {
  day: 86_400_000,
  week: 7 * 86_400_000,
  month: 30 * 86_400_000,
  all: Number.POSITIVE_INFINITY,
};

/** `/top [day|week|month|all]`: the results with the most votes in this server, with links, and top creators. */
export const topCommand = defineCommand({
  name: "top",
  description: "The most-voted images in this server, and their creators",
  options: {
    period: z.enum(["day", "week", "month", "all"]).optional().describe("How far back (default: week)"),
  },
  positional: ["period"],
  handle(args, { services, actor }) {
    const period = args.period ?? "week";
    const since = period === "all" ? 0 : Date.now() - PERIODS[period];
    const { platform, workspaceId } = actor.requester;
    const say = COMMAND_TEXT.top;
    const results = services.votes.topResults(platform, workspaceId, since, 10);
    if (results.length === 0) return { kind: "text", text: say.empty(period), ephemeral: true };
    const lines = [say.heading(period)];
    results.forEach((r, i) => {
      const job = services.jobs.get(r.ballotId);
      const posted = services.deliveries.deliveriesForJob(r.ballotId, "result").find((d) => d.messageId);
      const link = posted?.messageId
        ? messageLink(platform, workspaceId, posted.channelId, posted.messageId)
        : undefined;
      const prompt = cut(memberText(job?.request.prompt ?? say.unknownPrompt), 60);
      lines.push(say.result(i + 1, r.votes, r.ownerId, prompt, link));
    });
    const creators = services.votes.topCreators(platform, workspaceId, since, 5);
    lines.push(say.creatorsHeading, ...creators.map((c, i) => say.creator(i + 1, c.ownerId, c.votes)));
    // Private: a leaderboard in the channel would mention (on Slack, notify) everyone on it.
    return { kind: "text", text: lines.join("\n"), ephemeral: true };
  },
});
