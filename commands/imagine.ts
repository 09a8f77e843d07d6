import { z } from "zod";
import { imagine } from "../src/core/imagine.ts";
import { COMMAND_TEXT } from "../src/core/messages.ts";
import { BACKEND_NAMES, HARD_LIMITS, SAMPLER_NAMES } from "../src/core/prompt-flags.ts";
import type { RequestOptions } from "../src/core/request.ts";
import { contestFromRequest } from "./contest-flag.ts";
import { defineCommand } from "./types.ts";

/**
 * `/imagine prompt [options]`: the options are the prompt flags as Discord options (with the hard limits as
 * bounds); flags typed inside the prompt work too, and an option beats the same flag. Lower limits set by the
 * operator, the guild or the channel are enforced by buildRequest with a message that names them.
 */

/** Room for the prompt, its negative and its flags (Discord allows up to 6000). */
export const PROMPT_OPTION_MAX = 2000;

export const imagineOptions = {
  prompt: z
    .string()
    .min(1, COMMAND_TEXT.givePrompt)
    .max(PROMPT_OPTION_MAX)
    .describe("What to draw; flags like --ar 3:2 --seed 42 work here too"),
  negative: z
    .string()
    .max(HARD_LIMITS.negativePromptChars)
    .optional()
    .describe("What to keep out of the image"),
  seed: z.number().int().min(0).max(HARD_LIMITS.maxSeed).optional().describe("Seed, to reproduce an image"),
  steps: z
    .number()
    .int()
    .min(HARD_LIMITS.minSteps)
    .max(HARD_LIMITS.maxSteps)
    .optional()
    .describe("Denoising steps"),
  cfg: z.number().min(0).max(HARD_LIMITS.maxGuidance).optional().describe("Guidance scale (CFG)"),
  sampler: z.enum(SAMPLER_NAMES).optional().describe("Sampler"),
  aspect: z.string().max(11).optional().describe("Aspect ratio, e.g. 3:2 or 16:9"),
  size: z.string().max(11).optional().describe("Exact size in pixels, e.g. 768x512"),
  n: z.number().int().min(HARD_LIMITS.minCount).max(HARD_LIMITS.maxCount).optional().describe("Images (1-4)"),
  backend: z
    .enum(BACKEND_NAMES as [string, ...string[]])
    .optional()
    .describe("Renderer: ldm (local) or openai"),
  model: z.string().max(64).optional().describe("Model name (see /info)"),
  vote: z.string().max(8).optional().describe("Let the channel vote on the images for this long, e.g. 10m"),
};

/** The command's options as the engine's request options. */
export function requestOptions(args: {
  negative?: string | undefined;
  seed?: number | undefined;
  steps?: number | undefined;
  cfg?: number | undefined;
  sampler?: string | undefined;
  aspect?: string | undefined;
  size?: string | undefined;
  n?: number | undefined;
  backend?: string | undefined;
  model?: string | undefined;
}): RequestOptions {
  const o: RequestOptions = {};
  if (args.negative !== undefined) o.negativePrompt = args.negative;
  if (args.seed !== undefined) o.seed = args.seed;
  if (args.steps !== undefined) o.steps = args.steps;
  if (args.cfg !== undefined) o.guidance = args.cfg;
  if (args.sampler !== undefined) o.sampler = args.sampler;
  if (args.aspect !== undefined) o.aspect = args.aspect;
  if (args.size !== undefined) o.size = args.size;
  if (args.n !== undefined) o.count = args.n;
  if (args.backend !== undefined) o.backend = args.backend;
  if (args.model !== undefined) o.model = args.model;
  return o;
}

export const imagineCommand = defineCommand({
  name: "imagine",
  description: "Draw an image from a prompt",
  options: imagineOptions,
  positional: ["prompt"],
  handle(args, context) {
    const { services, actor, eventId } = context;
    const contest = contestFromRequest(args.prompt, args.vote, args.n, context);
    if (!contest.ok) return { kind: "job", outcome: { ok: false, message: contest.reason } };
    const options = requestOptions(args);
    if (contest.count !== undefined) options.count = contest.count;
    return {
      kind: "job",
      outcome: imagine(services, actor, eventId, {
        prompt: contest.prompt,
        options,
        ...(contest.contestMs === undefined ? {} : { contestMs: contest.contestMs }),
      }),
    };
  },
});
