/**
 * GenerationRequest: everything needed to render one job and to render it again. Validation and the limits live
 * here, on the server side, whatever a platform's UI allows.
 */

/** The rendering backends. */
export type BackendName = "ldm" | "openai";

/** Who asked, and where the result goes. */
export interface Requester {
  platform: "discord" | "slack" | "cli";
  /** Discord guild id or Slack team id ("dm" for direct messages). */
  workspaceId: string;
  channelId: string;
  userId: string;
  /** Display name, for messages only. */
  userName?: string;
}

/** What a job was derived from (the buttons under a result). */
export interface Lineage {
  jobId: string;
  /** 1-based image index in the parent's result (0 for the whole result, e.g. a reroll). */
  variant: number;
  kind: "reroll" | "variation" | "upscale";
}

/** A validated request: every field filled (defaults applied), every limit checked. */
export interface GenerationRequest {
  prompt: string;
  /** "" when none. */
  negativePrompt: string;
  /** 0..2^32-1; drawn at random when the user gave none, and shown with the result. */
  seed: number;
  steps: number;
  guidance: number;
  sampler: string;
  width: number;
  height: number;
  /** The aspect ratio the user asked for ("16:9"), when the size came from one. */
  aspect?: string;
  /** Images in the job, 1..4. */
  count: number;
  backend: BackendName;
  model: string;
  /** img2img start image (stored image sha256) and strength 0..1. */
  init?: { imageId: string; strength: number };
  parent?: Lineage;
  requester: Requester;
}
