import type { BackendCallContext, BackendResult, ImageBackend } from "../../core/backend.ts";
import type { GenerationRequest } from "../../core/request.ts";
import type { GenerateParams } from "./pipeline.ts";
import type { LdmWorkerSupervisor } from "./worker-supervisor.ts";

/**
 * The LDM pipeline as an engine backend: a GenerationRequest becomes one generate call in the worker process;
 * previews come back as small RGB images with the progress.
 */

/** Every how many steps the worker sends a preview (a cheap latent → RGB map). */
export const DEFAULT_PREVIEW_EVERY = 4;

/** The pipeline call for a validated request (the bot's backend and the CLI make it the same way). */
export function generateParamsFor(
  request: GenerationRequest,
  extra: Pick<GenerateParams, "init" | "previewEvery"> = {},
): GenerateParams {
  return {
    prompt: request.prompt,
    ...(request.negativePrompt ? { negativePrompt: request.negativePrompt } : {}),
    seed: request.seed,
    steps: request.steps,
    guidance: request.guidance,
    scheduler: request.sampler,
    width: request.width,
    height: request.height,
    count: request.count,
    // The model's safety checker runs unless the channel allows NSFW output.
    safetyChecker: request.nsfwAllowed !== true,
    ...extra,
  };
}

export class LdmBackend implements ImageBackend {
  readonly name = "ldm" as const;

  constructor(
    private readonly workers: (model: string) => LdmWorkerSupervisor,
    private readonly previewEvery = DEFAULT_PREVIEW_EVERY,
  ) {}

  async generate(request: GenerationRequest, context: BackendCallContext): Promise<BackendResult> {
    const params = generateParamsFor(request, { previewEvery: this.previewEvery });
    if (request.init) {
      const image = await context.loadImage(request.init.imageId, {
        format: "rgb",
        width: Math.floor(request.width / 8) * 8,
        height: Math.floor(request.height / 8) * 8,
      });
      params.init = {
        image: { width: image.width, height: image.height, data: image.data },
        strength: request.init.strength,
      };
    }
    const result = await this.workers(request.model).generate(params, {
      signal: context.signal,
      onProgress: (p) => {
        const preview = p.previews?.[0];
        context.onProgress({
          step: p.step,
          total: p.total,
          ...(preview ? { preview: { format: "rgb", ...preview, seed: null } } : {}),
        });
      },
    });
    return {
      images: result.images.map((i) => ({
        format: "rgb" as const,
        data: i.pixels.data,
        width: i.pixels.width,
        height: i.pixels.height,
        seed: i.seed,
        ...(i.flagged ? { flagged: true } : {}),
      })),
      notes: result.notes,
      used: {
        width: result.width,
        height: result.height,
        steps: result.steps,
        sampler: result.scheduler,
        guidance: result.guidance,
      },
      renderMs: result.timings.totalMs,
    };
  }
}
