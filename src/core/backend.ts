import type { BackendName, GenerationRequest } from "./request.ts";

/**
 * The seam between the job engine and the renderers (the LDM worker, the OpenAI images API). Backends return
 * pixels or PNG bytes; the engine hands them to an ImageEncoder (src/render, wired in by main) for the final
 * PNGs with their settings, so no backend needs an image library of its own.
 */

/** One image as a backend produced it. */
export interface BackendImage {
  /** "rgb": raw interleaved RGB bytes; "png": an encoded PNG (e.g. from an API). */
  format: "rgb" | "png";
  data: Uint8Array;
  width: number;
  height: number;
  /** The seed that reproduces this image alone; null where the backend has none (OpenAI). */
  seed: number | null;
  /** The model's safety checker flagged it: its pixels are black, and it is never posted (withheld). */
  flagged?: boolean;
}

/** A small progress image (latent preview) and where the job stands. */
export interface BackendProgress {
  step: number;
  total: number;
  preview?: BackendImage;
}

/** What a backend reports besides the images: shown with the result and kept with the job. */
export interface BackendResult {
  images: BackendImage[];
  /** What the backend changed or cut (size rounded, tokens over CLIP's limit, provider's revised prompt). */
  notes: string[];
  /** Settings as really used (e.g. the provider's size or the sampler a model needs). */
  used: Partial<Pick<GenerationRequest, "width" | "height" | "steps" | "sampler" | "guidance" | "model">>;
  /** Provider's revised prompt (DALL·E 3 / GPT-image). */
  revisedPrompt?: string;
  /** Estimated cost in US dollars, where the backend has a price. */
  costUsd?: number;
  /** Milliseconds spent rendering (inside the backend). */
  renderMs: number;
}

/** How a backend wants a stored image: raw RGB at a size (img2img), or a PNG (upload to an API). */
export type ImageRequest =
  | { format: "rgb"; width: number; height: number }
  | {
      format: "png" /** scale and crop to this square side */;
      square?: number /** re-encode below this size */;
      maxBytes?: number;
    };

/** How a backend's call is cancelled and how it reports progress. */
export interface BackendCallContext {
  signal: AbortSignal;
  onProgress(progress: BackendProgress): void;
  /** Loads a stored image (img2img start images, variations) by id, converted as asked. */
  loadImage(imageId: string, as: ImageRequest): Promise<BackendImage>;
}

/** A renderer the engine can queue jobs for. */
export interface ImageBackend {
  readonly name: BackendName;
  generate(request: GenerationRequest, context: BackendCallContext): Promise<BackendResult>;
}

/** A finished image, encoded and ready to store and post. */
export interface EncodedImage {
  /** 1-based index in the job; 0 for the grid of a multi-image job. */
  variant: number;
  png: Uint8Array;
  width: number;
  height: number;
  seed: number | null;
  /** Withheld: the model's safety checker flagged it (see BackendImage.flagged). */
  flagged?: boolean;
}

/** Turns a backend's result into the final PNGs (each with its settings) plus a grid when there are several. */
export type ImageEncoder = (request: GenerationRequest, result: BackendResult) => Promise<EncodedImage[]>;
