import { z } from "zod";
import { startArena } from "../src/core/ballots.ts";
import { BOT_MESSAGES, COMMAND_TEXT } from "../src/core/messages.ts";
import { parseVoteDuration } from "../src/core/voting.ts";
import { defineCommand } from "./types.ts";

/**
 * `/compare prompt [a] [b] [vote]`: the arena. The same prompt and seed on two models, posted blind as A and B;
 * members vote; when the vote closes the models are revealed and their Elo ratings move.
 */
export const compareCommand = defineCommand({
  name: "compare",
  description: "The arena: one prompt on two models, shown blind as A and B; vote for the better",
  options: {
    prompt: z.string().min(1, COMMAND_TEXT.givePrompt).max(1000).describe("What both models draw"),
    a: z
      .string()
      .max(80)
      .optional()
      .describe("First model (backend:model, a model, or a backend); default: picked"),
    b: z.string().max(80).optional().describe("Second model; default: another one"),
    vote: z.string().max(8).optional().describe("How long the vote stays open once both are in, e.g. 10m"),
  },
  positional: ["prompt"],
  handle(args, { services, actor, eventId }) {
    let durationMs: number | undefined;
    if (args.vote !== undefined) {
      const parsed = parseVoteDuration(args.vote);
      if (!parsed.ok) return { kind: "text", text: parsed.reason, ephemeral: true };
      durationMs = parsed.ms;
    }
    const arena = startArena(services, actor, eventId, {
      prompt: args.prompt,
      ...(args.a ? { a: args.a } : {}),
      ...(args.b ? { b: args.b } : {}),
      ...(durationMs === undefined ? {} : { durationMs }),
    });
    if (!arena.ok) return { kind: "text", text: arena.message, ephemeral: true };
    const minutes = Math.round((arena.sides[0].job.request.contestMs ?? 0) / 60_000);
    return { kind: "arena", sides: arena.sides, text: BOT_MESSAGES.arenaStarted(minutes) };
  },
});
