/**
 * The model families easel runs and what follows from the family alone. Kept apart from ldm-model.ts so that the
 * bot process and the CLI can ask without loading onnxruntime.
 */

import type { ModelFolder } from "./model-folder.ts";

/** The model families easel runs (known-models.json's `family` is one of them). */
export const MODEL_FAMILIES = ["sd1", "sd2", "sd2-v", "turbo", "lcm", "sdxl", "sdxl-turbo"] as const;
export type ModelFamily = (typeof MODEL_FAMILIES)[number];

/** Whether a family is SDXL's: two text encoders and the UNet's added conditions (text_embeds, time_ids). */
export function isSdxl(family: ModelFamily | string | undefined): boolean {
  return family === "sdxl" || family === "sdxl-turbo";
}

/**
 * Native square side of a family, the size it was trained at and renders by default: SDXL base 1024, SD 2.x
 * v-prediction 768, SDXL-Turbo (distilled at 512) and the SD 1.x / 2.x base families 512.
 */
export function nativeSideOf(family: ModelFamily | string | undefined): number {
  return family === "sdxl" ? 1024 : family === "sd2-v" ? 768 : 512;
}

/**
 * A family's cost per pixel and step against SD 1.x's, for ETAs. SDXL's UNet (2.6 B parameters against 0.86 B)
 * drops attention at the highest resolution, so per pixel it costs about a quarter more: published A100 figures
 * put an SDXL step at 1024² near 5× an SD 1.5 step at 512², for 4× the pixels. The engine learns the absolute
 * rate from finished jobs; this keeps two families on one lane in proportion.
 */
export function familyCostWeight(family: ModelFamily | string | undefined): number {
  return isSdxl(family) ? 1.25 : 1;
}

/**
 * The family a folder's files say, before any session is loaded (the bot sizes a model's first job before its
 * worker has loaded it): a second text encoder is SDXL's, with trailing timesteps SDXL-Turbo's; a v-prediction
 * scheduler is SD 2.x-v's. Undefined when only the loaded graphs can tell (the worker's report then decides).
 */
export function familyOfFolder(folder: ModelFolder): ModelFamily | undefined {
  const trailing = folder.schedulerConfig.timestep_spacing === "trailing";
  if (folder.textEncoder2 !== undefined) return trailing ? "sdxl-turbo" : "sdxl";
  if (folder.schedulerConfig.prediction_type === "v_prediction") return "sd2-v";
  return undefined;
}
