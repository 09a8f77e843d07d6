import type { BackendImage } from "./backend.ts";
import type { ButtonStrengths } from "./button-press.ts";
import type { DeliveryLog } from "./delivery.ts";
import type { Engine, StoredImage } from "./engine.ts";
import type { TokenCount } from "./explain.ts";
import type { Job } from "./job.ts";
import type { GenerationRequest, RequestContext, Requester } from "./request.ts";
import type { ChannelSettings, GuildSettings } from "./settings.ts";
import type { EloSettings, VotesPort } from "./voting.ts";

/**
 * What the platform-neutral bot (commands, buttons, the job relay) needs from the rest of easel, as ports:
 * main wires them to the store, the backends and the configuration, so that core and commands stay free of
 * SDKs and platforms never import the store or a backend.
 */

/** Who is acting, where, and what the platform says about them. */
export interface Actor {
  requester: Requester;
  /** The platform says the member administers the guild (Discord Administrator / Manage Server). */
  platformAdmin: boolean;
  /** The member's roles in the guild (empty on Slack). */
  memberRoleIds: readonly string[];
  /** The channel is age-restricted (Discord's NSFW flag); always false on Slack. */
  channelNsfw: boolean;
  /** The member is a bot or an app (they may not vote or press buttons). */
  isBot: boolean;
}

/** Guild and channel settings, read and written through the store. */
export interface SettingsPort {
  guild(platform: string, workspaceId: string): GuildSettings;
  channel(platform: string, workspaceId: string, channelId: string): ChannelSettings;
  /** Validates and saves; returns the reason when the settings are refused. */
  saveGuild(platform: string, workspaceId: string, settings: GuildSettings, by: string): string | undefined;
  saveChannel(
    platform: string,
    workspaceId: string,
    channelId: string,
    settings: ChannelSettings,
    by: string,
  ): string | undefined;
}

/** Jobs and their images, read from the store. */
export interface JobsPort {
  get(jobId: string): Job | undefined;
  images(jobId: string): Promise<StoredImage[]>;
  /** The variants of a job the safety checker withheld (none for most jobs). */
  withheld(jobId: string): number[];
  /** The PNG bytes of a stored image. */
  imageBytes(imageId: string): Promise<Uint8Array>;
  /** Recent jobs of a member, newest first (for `/queue` history). */
  recentFor?(requester: Pick<Requester, "platform" | "userId">, limit: number): Job[];
}

/** What `/info` shows. */
export interface BotInfo {
  version: string;
  /** "cuda", "cpu", "auto" (LDM) — what the operator configured and what was found. */
  device: string;
  /** Model names per backend. */
  models: Partial<Record<string, readonly string[]>>;
}

/** A backend's own per-request refusal (OpenAI daily image caps), asked before a job is queued. */
export type QuotaCheck = (request: GenerationRequest, guild: GuildSettings) => string | undefined;

/** Image work platforms need done (src/render, wired by main): they may not import sharp themselves. */
export interface ImagingPort {
  /** A PNG of a raw image (previews while rendering). */
  png(image: BackendImage): Promise<Uint8Array>;
  /** The PNG re-encoded, then scaled down, until it is at most `maxBytes` (upload limits). */
  fit(png: Uint8Array, maxBytes: number): Promise<Uint8Array>;
  /** An animated image (GIF) of a job's kept previews and its frame count, for "how it was made". */
  animation?(jobId: string): Promise<{ gif: Uint8Array; frames: number } | undefined>;
}

/** Everything the neutral bot needs. */
export interface BotServices {
  engine: Engine;
  settings: SettingsPort;
  jobs: JobsPort;
  /** The messages posted per job (status, result), for edits, presses and restarts. */
  deliveries: DeliveryLog;
  /** What buildRequest merges against, without the guild and channel (added per request). */
  requestContext: Omit<RequestContext, "guild" | "channel">;
  imaging: ImagingPort;
  /** img2img strengths of the V and U buttons. */
  strengths: ButtonStrengths;
  /** Ballots, votes, arena matches and ratings. */
  votes: VotesPort;
  /** Arena ratings (EASEL_ELO_K, EASEL_ELO_START). */
  elo: EloSettings;
  /** EASEL_ADMIN_IDS. */
  adminIds: readonly string[];
  quota?: QuotaCheck;
  /** The prompt's CLIP token count, by the job's model's own tokenizer (LDM jobs). */
  tokenCount?(job: Job): Promise<TokenCount | undefined>;
  info(): BotInfo;
  /** Admin-readable spend totals (OpenAI), one line each; absent when no backend has a price. */
  spendReport?(workspace: Pick<Requester, "platform" | "workspaceId">): string[];
}
