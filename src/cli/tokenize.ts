import { join } from "node:path";
import { resolveModelDir } from "../backends/ldm/model-folder.ts";
import { ClipTokenizer } from "../backends/ldm/tokenizer/clip-tokenizer.ts";
import type { Config } from "../config.ts";
import { isEaselError } from "../core/errors.ts";
import { defaultModelName } from "./models.ts";
import { count, orRefuse, type PromptSource, readPromptText, UsageError } from "./usage.ts";

/** `easel tokenize`: a prompt's CLIP token ids, and how many tokens past the model's limit are lost. */

/** Options of `easel tokenize`, as commander parsed them. */
export interface TokenizeOptions {
  model?: string;
  tokenizer?: string;
  promptFile?: string;
}

/** The tokenizer folder: --tokenizer DIR, else the named (or default) model's `tokenizer/`. */
function tokenizerFolder(options: TokenizeOptions, config: Config): string {
  if (options.tokenizer !== undefined && options.model !== undefined)
    throw new UsageError("give --model NAME or --tokenizer DIR, not both");
  if (options.tokenizer !== undefined) return options.tokenizer;
  const name = options.model ?? orRefuse(defaultModelName(config));
  try {
    return join(resolveModelDir(config.modelsDir, name), "tokenizer");
  } catch (err) {
    // An unknown or malformed --model is a mistake in the call, said in resolveModelDir's words.
    if (isEaselError(err, "invalid_argument")) throw new UsageError(`--model: ${err.message}`);
    throw err;
  }
}

/** Prints the token count against the limit, what is cut, and the ids the text encoder receives. */
export async function tokenizeCommand(
  words: string[],
  options: TokenizeOptions,
  config: Config,
  stdin: PromptSource["stdin"],
): Promise<void> {
  const text = orRefuse(await readPromptText({ words, promptFile: options.promptFile, stdin }));
  if (text === undefined)
    throw new UsageError(
      'text is needed: easel tokenize "a lighthouse", --prompt-file FILE, or - to read standard input',
    );
  const tokenizer = ClipTokenizer.fromFolder(tokenizerFolder(options, config));
  const result = tokenizer.tokenize(text);
  console.log(`tokens: ${result.textTokenCount} (limit ${tokenizer.config.contextLength - 2})`);
  if (result.truncatedCount > 0)
    console.log(
      `cut: ${count(result.truncatedCount, "token")} past the limit ${result.truncatedCount === 1 ? "is" : "are"} ignored`,
    );
  console.log(`input_ids: ${Array.from(result.inputIds).join(" ")}`);
}
