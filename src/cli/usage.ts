/**
 * What the CLI's commands share: the error for a refused command line, how counts are worded, and how the
 * prompt is read from the command line, a file or standard input.
 */

import { readFile, stat } from "node:fs/promises";
import type { Parsed } from "../core/aspect.ts";

/**
 * A command line refused before any work started (nothing loaded, nothing written): the CLI exits with 2, as
 * for commander's own usage errors, so that scripts can tell a mistake in the call from a failed render (1).
 */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** The value of a Parsed, or a UsageError carrying its reason. */
export function orRefuse<T>(parsed: Parsed<T>): T {
  if (!parsed.ok) throw new UsageError(parsed.reason);
  return parsed.value;
}

/** "1 step", "4 steps": a count with its noun in the right number. */
export function count(n: number, singular: string, plural = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : plural}`;
}

/**
 * The most a prompt file or standard input may hold. A prompt is at most 1000 characters and its flags add
 * little, so anything near this is not a prompt; the bound keeps a wrong file (an image, a log) from being
 * read whole, while a 100 kB one is still read and gets the prompt's own length message.
 */
export const MAX_PROMPT_INPUT_BYTES = 1024 * 1024;

/** Where a command's text comes from: its words, `--prompt-file FILE`, or `-` (standard input). */
export interface PromptSource {
  words: readonly string[];
  promptFile?: string | undefined;
  /** Read when the words are exactly "-" or the file is "-". */
  stdin: AsyncIterable<Buffer | string>;
}

async function readStdin(stdin: AsyncIterable<Buffer | string>): Promise<Parsed<string>> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const part of stdin) {
    const bytes = typeof part === "string" ? Buffer.from(part) : part;
    size += bytes.length;
    if (size > MAX_PROMPT_INPUT_BYTES)
      return {
        ok: false,
        reason: `standard input holds more than ${MAX_PROMPT_INPUT_BYTES} bytes; a prompt is far shorter`,
      };
    parts.push(bytes);
  }
  return { ok: true, value: Buffer.concat(parts).toString("utf8") };
}

async function readPromptFile(file: string): Promise<Parsed<string>> {
  try {
    const info = await stat(file);
    if (!info.isFile()) return { ok: false, reason: `--prompt-file ${file} is not a file` };
    if (info.size > MAX_PROMPT_INPUT_BYTES)
      return {
        ok: false,
        reason: `--prompt-file ${file} is ${info.size} bytes; easel reads at most ${MAX_PROMPT_INPUT_BYTES} (a prompt is far shorter)`,
      };
    return { ok: true, value: await readFile(file, "utf8") };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    return { ok: false, reason: `--prompt-file ${file} cannot be read (${code})` };
  }
}

/**
 * The text a command works on; `undefined` when none was given at all, so that the command can say how to
 * give one. A file's byte-order mark and final line break are dropped: editors add them, nobody means them.
 */
export async function readPromptText(source: PromptSource): Promise<Parsed<string | undefined>> {
  const { words, promptFile } = source;
  const fromStdin = promptFile === "-" || (words.length === 1 && words[0] === "-");
  if (promptFile !== undefined && words.length > 0)
    return {
      ok: false,
      reason: "give the prompt as words, with --prompt-file FILE or as - (standard input), not two of them",
    };
  let read: Parsed<string>;
  if (fromStdin) read = await readStdin(source.stdin);
  else if (promptFile !== undefined) read = await readPromptFile(promptFile);
  else return { ok: true, value: words.length === 0 ? undefined : words.join(" ") };
  if (!read.ok) return read;
  return { ok: true, value: read.value.replace(/^\uFEFF/, "").replace(/\r?\n$/, "") };
}
