import type { Job } from "./job.ts";
import { plural } from "./messages.ts";

/**
 * "How it was made": the stages a latent diffusion image goes through, told with the job's own numbers, the
 * picture that latent diffusion explanations draw: prompt → tokens → text encoder → denoising steps in the
 * latent space (1/8 of the image's size, 4 channels) → VAE decode. OpenAI jobs say what is known of them.
 */

/** What the tokenizer made of the prompt (counted again by the LDM backend's tokenizer). */
export interface TokenCount {
  /** Tokens of the prompt, start and end markers included. */
  tokens: number;
  /** Tokens beyond CLIP's 77 that the text encoder never saw. */
  cut: number;
}

/** "How it was made" for a job: the stages with the job's own numbers, as shown to the member. */
export function explainJob(job: Job, tokens: TokenCount | undefined, frames: number): string {
  const r = job.request;
  if (r.backend !== "ldm") {
    return [
      `**How it was made** (job ${job.id})`,
      `1. Prompt → sent to ${r.model} through the OpenAI images API.`,
      "2. The provider's model drew it; it does not say how (no seed, no steps).",
    ].join("\n");
  }
  const lw = Math.floor(r.width / 8);
  const lh = Math.floor(r.height / 8);
  const strength = r.init ? r.init.strength : 1;
  // The steps the pipeline really runs: it takes floor(steps × strength), as diffusers' img2img does.
  const steps = Math.max(1, Math.floor(r.steps * strength));
  const lines = [
    `**How it was made** (job ${job.id})`,
    `1. Prompt: "${r.prompt.length > 200 ? `${r.prompt.slice(0, 199)}…` : r.prompt}"`,
    tokens
      ? `2. → ${plural(tokens.tokens, "CLIP token")}${tokens.cut > 0 ? ` (${tokens.cut} over the limit of 77 ${tokens.cut === 1 ? "was" : "were"} cut)` : ""}`
      : "2. → CLIP tokens (at most 77)",
    `3. → the text encoder turns them into one embedding vector per token${r.negativePrompt ? ", and the negative prompt into another" : ""}.`,
    r.init
      ? `4. → the start image is encoded to a ${lw}×${lh}×4 latent and noised to ${Math.round(strength * 100)} %, then ${steps} of ${plural(r.steps, `${r.sampler} step`)} remove${steps === 1 ? "s" : ""} the noise, guided by the prompt (CFG ${r.guidance}).`
      : `4. → seed ${r.seed} gives ${lw}×${lh}×4 latent noise; ${plural(steps, `${r.sampler} step`)} remove${steps === 1 ? "s" : ""} it, ${steps === 1 ? "" : "each one "}guided by the prompt (CFG ${r.guidance}).`,
    `5. → the VAE decoder turns the ${lw}×${lh}×4 latent into ${r.width}×${r.height} pixels (8× each side).`,
  ];
  if (frames > 0) lines.push(`The animation shows the latent at ${plural(frames, "point")} along the way.`);
  return lines.join("\n");
}
