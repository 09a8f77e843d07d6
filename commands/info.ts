import { actorIsAdmin } from "../src/core/imagine.ts";
import { COMMAND_TEXT } from "../src/core/messages.ts";
import { BACKEND_NAMES } from "../src/core/prompt-flags.ts";
import { defineCommand } from "./types.ts";

/** `/info`: version, models, device, queue length, recent time per image; admins also see OpenAI spend. */
export const infoCommand = defineCommand({
  name: "info",
  description: "What this bot runs: version, models, device, queue and speed",
  options: {},
  handle(_args, { services, actor }) {
    const info = services.info();
    const active = services.engine.activeJobs();
    const say = COMMAND_TEXT.info;
    const lines = [say.heading(info.version, info.device)];
    for (const backend of BACKEND_NAMES) {
      const models = info.models[backend];
      if (!models?.length) continue;
      lines.push(say.backend(backend, models, services.engine.recentMsPerImage(backend)));
    }
    const waiting = active.filter((a) => a.state === "queued").length;
    const rendering = active.length - waiting;
    lines.push(say.queue(waiting, rendering));
    if (services.spendReport && actorIsAdmin(services, actor)) {
      lines.push(...services.spendReport(actor.requester));
    }
    return { kind: "text", text: lines.join("\n"), ephemeral: true };
  },
});
