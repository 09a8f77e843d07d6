import { DEFAULT_CONTEST_MINUTES } from "../src/core/ballots.ts";
import { limitsFor } from "../src/core/imagine.ts";
import { COMMAND_TEXT } from "../src/core/messages.ts";
import { parseVoteDuration } from "../src/core/voting.ts";
import type { CommandContext } from "./types.ts";

/**
 * A contest from `/imagine`: the `vote` option or a `--vote 10m` flag in the prompt (taken out of the prompt,
 * it is not a rendering setting), or a channel an admin made a contest channel (`/settings set contest on`),
 * whose votes last the server's `contest-minutes`. A vote needs at least two images: when the member gave no
 * count, the job gets four (or the most the limits allow).
 */
export function contestFromRequest(
  prompt: string,
  voteOption: string | undefined,
  count: number | undefined,
  { services, actor }: CommandContext,
): { ok: true; prompt: string; contestMs?: number; count?: number } | { ok: false; reason: string } {
  const flag = /(^|\s)--vote\s+(\S+)/.exec(prompt);
  const text = flag
    ? `${prompt.slice(0, flag.index)}${prompt.slice(flag.index + flag[0].length)}`.trim()
    : prompt;
  const asked = voteOption ?? flag?.[2];
  const { platform, workspaceId, channelId } = actor.requester;
  let contestMs: number | undefined;
  if (asked !== undefined) {
    const parsed = parseVoteDuration(asked);
    if (!parsed.ok) return { ok: false, reason: parsed.reason };
    contestMs = parsed.ms;
  } else if (services.settings.channel(platform, workspaceId, channelId).contest) {
    contestMs =
      (services.settings.guild(platform, workspaceId).contestMinutes ?? DEFAULT_CONTEST_MINUTES) * 60_000;
  }
  if (contestMs === undefined) return { ok: true, prompt: text };
  const explicit = count ?? Number(/(^|\s)--n\s+(\d+)/.exec(text)?.[2] ?? Number.NaN);
  const max = limitsFor(services, actor).maxCount;
  if ((Number.isFinite(explicit) && explicit < 2) || max < 2) {
    return { ok: false, reason: COMMAND_TEXT.voteNeedsTwo(max) };
  }
  return {
    ok: true,
    prompt: text,
    contestMs,
    ...(Number.isFinite(explicit) ? {} : { count: Math.min(4, max) }),
  };
}
