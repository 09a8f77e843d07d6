import type { Actor, BotServices } from "./bot-services.ts";
import { parseButtonId } from "./buttons.ts";
import type { StoredImage } from "./engine.ts";
import { actorIsAdmin, type ImagineOutcome, imagine, limitsFor } from "./imagine.ts";
import type { Job } from "./job.ts";
import { BOT_MESSAGES } from "./messages.ts";
import { mayPressButtons } from "./permissions.ts";
import { HARD_LIMITS, type RequestOptions } from "./prompt-flags.ts";
import type { GenerationRequest } from "./request.ts";

/**
 * What a press on one of easel's buttons does, decided once for both platforms: reroll (same settings, new
 * seed), V1–V4 (a variation of that image: img2img at the variation strength on LDM, the provider's variation
 * path on OpenAI), U1–U4 (that image alone at full size, plus a 2× upscale: a resize and a low-strength
 * img2img pass on the LDM backend), cancel, delete, and "how it was made". Permissions are checked here.
 */

/** img2img strengths of the buttons (EASEL_VARIATION_STRENGTH, EASEL_UPSCALE_STRENGTH). */
export interface ButtonStrengths {
  variation: number;
  upscale: number;
}

export const DEFAULT_BUTTON_STRENGTHS: Readonly<ButtonStrengths> = Object.freeze({
  variation: 0.6,
  upscale: 0.3,
});

/** What the platform should do after a press. */
export type PressOutcome =
  /** Tell the presser why not (ephemeral). */
  | { kind: "refused"; message: string }
  /** A new job was queued (or refused by the queue): show its status like an /imagine. */
  | { kind: "job"; outcome: ImagineOutcome }
  /** U: post this image alone; `upscale` is the 2× job, when one could be queued, or why not. */
  | { kind: "upscale"; job: Job; image: StoredImage; upscale: ImagineOutcome }
  /** The job was cancelled (or was already finished): tell the presser. */
  | { kind: "cancel"; message: string }
  /** Delete the message the button is on. */
  | { kind: "delete"; job: Job }
  /** Show how the image was made (the platform lays out the stages and the animation). */
  | { kind: "explain"; job: Job };

/** The new job a press queued (or the queue's refusal of it): a reroll's, a variation's, or an upscale's. */
export function queuedBy(outcome: PressOutcome): ImagineOutcome | undefined {
  if (outcome.kind === "job") return outcome.outcome;
  if (outcome.kind === "upscale") return outcome.upscale;
  return undefined;
}

/** The parent's settings as command options, so that buildRequest checks them again where the press happens. */
function optionsOf(r: GenerationRequest): RequestOptions {
  return {
    ...(r.negativePrompt ? { negativePrompt: r.negativePrompt } : {}),
    steps: r.steps,
    guidance: r.guidance,
    sampler: r.sampler,
    model: r.model,
    backend: r.backend,
    count: r.count,
    size: { width: r.width, height: r.height },
  };
}

/** Twice the size, or as near as the pixel limit allows, with sides multiples of 8. */
export function upscaleSize(
  width: number,
  height: number,
  maxPixels: number,
): { width: number; height: number } {
  const scale = Math.min(2, Math.sqrt(maxPixels / (width * height)));
  const side = (v: number) =>
    Math.min(HARD_LIMITS.maxSide, Math.max(HARD_LIMITS.minSide, Math.floor((v * scale) / 8) * 8));
  return { width: side(width), height: side(height) };
}

/** Handles a press of the button `customId` by `actor`; `eventId` is the platform's id of the press. */
export async function pressButton(
  services: BotServices,
  actor: Actor,
  eventId: string,
  customId: string,
): Promise<PressOutcome> {
  const strengths = services.strengths;
  const parsed = parseButtonId(customId);
  if (!parsed.ok) return { kind: "refused", message: parsed.reason };
  if (actor.isBot) return { kind: "refused", message: BOT_MESSAGES.botsMayNot };
  const { action, jobId, variant } = parsed.value;
  const job = services.jobs.get(jobId);
  if (!job) return { kind: "refused", message: BOT_MESSAGES.jobGone };
  const owner = job.request.requester;
  const admin = actorIsAdmin(services, actor);
  const own = owner.platform === actor.requester.platform && owner.userId === actor.requester.userId;

  if (action === "cancel" || action === "delete") {
    const sameServer =
      owner.platform === actor.requester.platform && owner.workspaceId === actor.requester.workspaceId;
    if (!own && !(admin && sameServer))
      return { kind: "refused", message: BOT_MESSAGES.onlyOwnerOrAdmin(action) };
    if (action === "delete") return { kind: "delete", job };
    return {
      kind: "cancel",
      message: services.engine.cancel(jobId) ? BOT_MESSAGES.cancelRequested : BOT_MESSAGES.alreadyFinished,
    };
  }
  if (action === "howItWasMade") return { kind: "explain", job };

  const { platform, workspaceId, channelId } = actor.requester;
  const allowed = mayPressButtons(actor.requester, owner, {
    guild: services.settings.guild(platform, workspaceId),
    channel: services.settings.channel(platform, workspaceId, channelId),
    presserIsAdmin: admin,
  });
  if (!allowed) return { kind: "refused", message: BOT_MESSAGES.notYourButtons };

  const r = job.request;
  if (action === "reroll") {
    return {
      kind: "job",
      outcome: imagine(services, actor, eventId, {
        prompt: r.prompt,
        options: optionsOf(r),
        ...(r.init ? { init: { imageId: r.init.imageId } } : {}),
        parent: { jobId, variant: 0, kind: "reroll" },
      }),
    };
  }

  const images = await services.jobs.images(jobId);
  const image = images.find((i) => i.variant === variant);
  if (!image || variant === undefined) return { kind: "refused", message: BOT_MESSAGES.imageGone };
  if (image.flagged) return { kind: "refused", message: BOT_MESSAGES.imageWithheld(variant) };

  if (action === "variation") {
    return {
      kind: "job",
      outcome: imagine(services, actor, eventId, {
        prompt: r.prompt,
        options: {
          ...optionsOf(r),
          size: { width: image.width, height: image.height },
          strength: strengths.variation,
        },
        init: { imageId: image.id },
        parent: { jobId, variant, kind: "variation" },
      }),
    };
  }

  // Upscale: a resize plus a low-strength img2img pass, which needs the local (LDM) backend.
  let upscale: ImagineOutcome;
  if (!services.requestContext.catalog.ldm?.length) {
    upscale = { ok: false, message: BOT_MESSAGES.upscaleNeedsLdm };
  } else {
    const size = upscaleSize(image.width, image.height, limitsFor(services, actor).maxPixels);
    const fromLdm = r.backend === "ldm";
    upscale = imagine(services, actor, eventId, {
      prompt: r.prompt,
      options: {
        ...(r.negativePrompt ? { negativePrompt: r.negativePrompt } : {}),
        backend: "ldm",
        // At least one denoising step must run at this strength (img2img runs steps × strength of them).
        ...(fromLdm
          ? {
              model: r.model,
              steps: Math.max(r.steps, Math.ceil(1 / strengths.upscale)),
              guidance: r.guidance,
              sampler: r.sampler,
            }
          : {}),
        count: 1,
        size,
        strength: strengths.upscale,
        ...(image.seed === null ? {} : { seed: image.seed }),
      },
      init: { imageId: image.id },
      parent: { jobId, variant, kind: "upscale" },
    });
  }
  return { kind: "upscale", job, image, upscale };
}
