import type { BotServices } from "./bot-services.ts";
import { denoisingFileName } from "./image-files.ts";
import type { Job } from "./job.ts";
import { EXPLAIN_TEXT } from "./messages.ts";

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
  /** Text encoders the model has: SDXL's two, or one. */
  encoders?: number;
}

/** "How it was made" for a job: the stages with the job's own numbers, as shown to the member. */
export function explainJob(job: Job, tokens: TokenCount | undefined, frames: number): string {
  const r = job.request;
  const say = EXPLAIN_TEXT;
  if (r.backend !== "ldm") return [say.heading(job.id), say.remoteSent(r.model), say.remoteDrawn].join("\n");
  const latent = `${Math.floor(r.width / 8)}×${Math.floor(r.height / 8)}×4`;
  const strength = r.init ? r.init.strength : 1;
  // The steps the pipeline really runs: it takes floor(steps × strength), as diffusers' img2img does.
  const steps = Math.max(1, Math.floor(r.steps * strength));
  const lines = [
    say.heading(job.id),
    say.prompt(r.prompt.length > 200 ? `${r.prompt.slice(0, 199)}…` : r.prompt),
    tokens ? say.tokens(tokens.tokens, tokens.cut) : say.tokensUnknown,
    say.encoder(Boolean(r.negativePrompt), tokens?.encoders),
    r.init
      ? say.img2img(latent, Math.round(strength * 100), steps, r.steps, r.sampler, r.guidance)
      : say.txt2img(r.seed, latent, steps, r.sampler, r.guidance),
    say.decoder(latent, r.width, r.height),
  ];
  if (frames > 0) lines.push(say.animation(frames));
  return lines.join("\n");
}

/** "How it was made" as a platform shows it: the stages, and the denoising animation when one was kept. */
export interface Explanation {
  text: string;
  animation?: { filename: string; bytes: Uint8Array };
}

/** Tells how `job` was made, with its prompt's token count and its kept previews when there are. */
export async function howItWasMade(
  services: Pick<BotServices, "imaging" | "tokenCount" | "jobs">,
  job: Job,
): Promise<Explanation> {
  // The previews of an image the safety checker withheld would show it: no animation for such a job.
  const withheld = services.jobs.withheld(job.id).length > 0;
  const animation = withheld ? undefined : await services.imaging.animation?.(job.id);
  const tokens = await services.tokenCount?.(job);
  const text = explainJob(job, tokens, animation?.frames ?? 0);
  return animation
    ? { text, animation: { filename: denoisingFileName(job.id), bytes: animation.gif } }
    : { text };
}
