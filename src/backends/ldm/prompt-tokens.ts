import type { TokenCount } from "../../core/explain.ts";
import type { Job } from "../../core/job.ts";
import { readModelFolder, resolveModelDir } from "./model-folder.ts";
import { ClipTokenizer } from "./tokenizer/clip-tokenizer.ts";

/**
 * How many CLIP tokens a job's prompt made, and how many were cut, for "how it was made". Each model's
 * tokenizer is read from its folder once, in the bot process (no worker is needed to count).
 */
export class PromptTokenCounter {
  private readonly tokenizers = new Map<string, { tokenizer: ClipTokenizer; encoders: number }>();

  constructor(private readonly modelsDir: string) {}

  /** The count for a job of a local model; undefined for other backends, which have no CLIP tokenizer. */
  count(job: Pick<Job, "request">): TokenCount | undefined {
    const { backend, model, prompt } = job.request;
    if (backend !== "ldm") return undefined;
    const { tokenizer, encoders } = this.tokenizer(model);
    const t = tokenizer.tokenize(prompt);
    // The start and end markers are tokens the text encoder sees too.
    return { tokens: t.textTokenCount + 2, cut: t.truncatedCount, encoders };
  }

  private tokenizer(model: string): { tokenizer: ClipTokenizer; encoders: number } {
    let entry = this.tokenizers.get(model);
    if (!entry) {
      const folder = readModelFolder(resolveModelDir(this.modelsDir, model), model);
      // SDXL's two tokenizers cut at the same 77 tokens: the first one's count stands for both.
      entry = {
        tokenizer: ClipTokenizer.fromFolder(folder.tokenizerDir),
        encoders: folder.textEncoder2 ? 2 : 1,
      };
      this.tokenizers.set(model, entry);
    }
    return entry;
  }
}
