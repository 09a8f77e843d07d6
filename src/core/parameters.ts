/**
 * The AUTOMATIC1111 "parameters" text that easel writes into every PNG, so other tools (A1111's PNG Info,
 * ComfyUI, Civitai) read the settings back.
 */

/** Scheduler names as A1111 shows them; easel's names are the keys. */
const A1111_SAMPLER_NAMES: Record<string, string> = {
  ddim: "DDIM",
  pndm: "PLMS",
  euler: "Euler",
  euler_ancestral: "Euler a",
  dpmpp_2m: "DPM++ 2M",
  dpmpp_2m_karras: "DPM++ 2M Karras",
  lcm: "LCM",
  euler_trailing: "Euler",
};

/** The settings of one rendered image. */
export interface ImageParameters {
  prompt: string;
  negativePrompt?: string;
  steps: number;
  sampler: string;
  cfgScale: number;
  seed: number | string;
  width: number;
  height: number;
  model: string;
  /** img2img strength, when the image started from another. */
  denoisingStrength?: number;
}

/** Formats `ImageParameters` as A1111 does: prompt, "Negative prompt: …", then "Key: value" pairs. */
export function formatA1111Parameters(p: ImageParameters): string {
  // A1111 splits the settings line on ", " and reads the prompt up to "\nNegative prompt:", so newlines in
  // the prompt stay but the settings line must not contain any.
  const oneLine = (s: string) => s.replace(/[\r\n]+/g, " ");
  const settings = [
    `Steps: ${p.steps}`,
    `Sampler: ${A1111_SAMPLER_NAMES[p.sampler] ?? p.sampler}`,
    ...(p.sampler === "euler_trailing" ? ["Schedule type: Trailing"] : []),
    `CFG scale: ${p.cfgScale}`,
    `Seed: ${p.seed}`,
    `Size: ${p.width}x${p.height}`,
    `Model: ${oneLine(p.model)}`,
    ...(p.denoisingStrength === undefined ? [] : [`Denoising strength: ${p.denoisingStrength}`]),
  ];
  const lines = [p.prompt];
  if (p.negativePrompt) lines.push(`Negative prompt: ${p.negativePrompt}`);
  lines.push(settings.join(", "));
  return lines.join("\n");
}
