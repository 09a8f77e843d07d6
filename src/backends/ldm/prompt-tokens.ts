import type { TokenCount } from "../../core/explain.ts";
import type { Job } from "../../core/job.ts";
import { readModelFolder, resolveModelDir } from "./model-folder.ts";
import { ClipTokenizer } from "./tokenizer/clip-tokenizer.ts";

/**
 * How many CLIP tokens a job's prompt made, and how many were cut, for "how it was made". Each model's
 * tokenizer is read from its folder once, in the bot process (no worker is needed to count).
 */
export class PromptTokenCounter {
  private readonly tokenizers = new Map<string, ClipTokenizer>();

  constructor(private readonly modelsDir: string) {}

  /** The count for a job of a local model; undefined for other backends, which have no CLIP tokenizer. */
  count(job: Pick<Job, "request">): TokenCount | undefined {
    const { backend, model, prompt } = job.request;
    if (backend !== "ldm") return undefined;
    const t = this.tokenizer(model).tokenize(prompt);
    // The start and end markers are tokens the text encoder sees too.
    return { tokens: t.textTokenCount + 2, cut: t.truncatedCount };
  }

  private tokenizer(model: string): ClipTokenizer {
    let tokenizer = this.tokenizers.get(model);
    if (!tokenizer) {
      const folder = readModelFolder(resolveModelDir(this.modelsDir, model), model);
      tokenizer = ClipTokenizer.fromFolder(folder.tokenizerDir);
      this.tokenizers.set(model, tokenizer);
    }
    return tokenizer;
  }
}
