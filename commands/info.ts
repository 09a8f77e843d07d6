import { actorIsAdmin } from "../src/core/imagine.ts";
import { formatDuration } from "../src/core/messages.ts";
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
    const lines = [`easel ${info.version} · device: ${info.device}`];
    for (const backend of BACKEND_NAMES) {
      const models = info.models[backend];
      if (!models?.length) continue;
      const ms = services.engine.recentMsPerImage(backend);
      const speed = ms === undefined ? "" : ` · ${formatDuration(ms)} per image lately`;
      lines.push(`${backend}: ${models.join(", ")}${speed}`);
    }
    const waiting = active.filter((a) => a.state === "queued").length;
    const rendering = active.length - waiting;
    lines.push(`queue: ${waiting} waiting, ${rendering} rendering`);
    if (services.spendReport && actorIsAdmin(services, actor)) {
      lines.push(...services.spendReport(actor.requester));
    }
    return { kind: "text", text: lines.join("\n"), ephemeral: true };
  },
});
