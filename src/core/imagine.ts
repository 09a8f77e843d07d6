import type { Actor, BotServices } from "./bot-services.ts";
import type { Job } from "./job.ts";
import { BOT_MESSAGES } from "./messages.ts";
import { isAdmin } from "./permissions.ts";
import { buildRequest, type GenerationRequest, type Lineage, type RequestOptions } from "./request.ts";
import { effectiveLimits, type RequestLimits } from "./settings.ts";

/**
 * One imagine request from any platform, end to end up to the queue: settings looked up, the request built
 * and validated, the backend's own caps asked, the NSFW rule applied, the job written and queued. Platforms
 * call this before they acknowledge (it is synchronous: SQLite and the checks take milliseconds).
 */

/** What the member asked for. */
export interface ImagineInput {
  /** The prompt as typed, flags included. */
  prompt: string;
  /** Command options (they beat prompt flags). */
  options?: RequestOptions;
  init?: { imageId: string };
  parent?: Lineage;
  /** Open a vote on the variants for this long after the result is posted. */
  contestMs?: number;
  arena?: GenerationRequest["arena"];
}

/** Queued (with place and ETA, and what was adjusted), or refused with the reason to show. */
export type ImagineOutcome =
  | { ok: true; job: Job; position: number; etaMs: number; notes: string[]; duplicate: boolean }
  | { ok: false; message: string };

/** A queued job as imagine() reports it. */
export type ImagineQueued = Extract<ImagineOutcome, { ok: true }>;

/** True when the member is an easel admin in this guild. */
export function actorIsAdmin(services: BotServices, actor: Actor): boolean {
  const { platform, workspaceId } = actor.requester;
  return isAdmin(actor.requester, {
    adminIds: services.adminIds,
    platformAdmin: actor.platformAdmin,
    adminRoleIds: services.settings.guild(platform, workspaceId).adminRoleIds,
    memberRoleIds: actor.memberRoleIds,
  });
}

/** The limits in force in the actor's channel. */
export function limitsFor(services: BotServices, actor: Actor): RequestLimits {
  const { platform, workspaceId, channelId } = actor.requester;
  return effectiveLimits(
    services.requestContext.limits,
    services.settings.guild(platform, workspaceId).limits,
    services.settings.channel(platform, workspaceId, channelId).limits,
  );
}

/** Builds, checks and queues one request; `eventId` makes a redelivered platform event harmless. */
export function imagine(
  services: BotServices,
  actor: Actor,
  eventId: string,
  input: ImagineInput,
): ImagineOutcome {
  if (actor.isBot) return { ok: false, message: BOT_MESSAGES.botsMayNot };
  // A redelivered platform event gets the job it made before anything can refuse it: that job may itself have
  // used up the daily quota, or an admin may have changed a setting since; "limit reached" would be a lie.
  const again = services.engine.resubmitted(eventId);
  if (again) {
    return {
      ok: true,
      job: again.job,
      position: again.position,
      etaMs: again.etaMs,
      notes: [],
      duplicate: true,
    };
  }
  const { platform, workspaceId, channelId } = actor.requester;
  const guild = services.settings.guild(platform, workspaceId);
  const channel = services.settings.channel(platform, workspaceId, channelId);
  const built = buildRequest(
    {
      prompt: input.prompt,
      ...(input.options ? { options: input.options } : {}),
      requester: actor.requester,
      ...(input.init ? { init: input.init } : {}),
      ...(input.parent ? { parent: input.parent } : {}),
    },
    { ...services.requestContext, guild, channel },
  );
  if (!built.ok) return { ok: false, message: built.reason };
  // NSFW output needs both the channel setting and a channel the platform marks as age-restricted.
  const request: GenerationRequest = {
    ...built.value,
    nsfwAllowed: built.value.nsfwAllowed === true && actor.channelNsfw,
    ...(input.contestMs === undefined ? {} : { contestMs: input.contestMs }),
    ...(input.arena === undefined ? {} : { arena: input.arena }),
  };
  const refusal = services.quota?.(request, guild);
  if (refusal) return { ok: false, message: refusal };
  const limits = effectiveLimits(services.requestContext.limits, guild.limits, channel.limits);
  const submitted = services.engine.submit(eventId, request, { maxQueuedPerUser: limits.maxQueuedPerUser });
  if (!submitted.ok) return { ok: false, message: submitted.message };
  return {
    ok: true,
    job: submitted.job,
    position: submitted.position,
    etaMs: submitted.etaMs,
    notes: built.notes,
    duplicate: submitted.duplicate,
  };
}
