import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { EaselError } from "../../../core/errors.ts";
import { htmlUnescape } from "./html-unescape.ts";

/**
 * OpenAI CLIP's byte-level BPE tokenizer (clip/simple_tokenizer.py), loaded from a model folder's
 * `tokenizer/` in the Hugging Face layout. It reproduces test/golden/vectors/clip_tokens.json exactly.
 * Written here rather than taken from a library: transformers.js and HF's fast tokenizer skip the HTML
 * unescaping and use other whitespace rules, so they do not reproduce CLIP's ids for every prompt.
 */

/**
 * OpenAI CLIP's own vocabulary and merges (MIT, see LICENSE there), in the Hugging Face layout: what tiny test
 * models and the tests tokenize with, carried in the repository so that nothing outside it is needed.
 */
export const CLIP_BPE_DIR = fileURLToPath(new URL("./clip-bpe", import.meta.url));

/** CLIP's context length: BOS + 75 text tokens + EOS. */
export const CLIP_CONTEXT_LENGTH = 77;
export const CLIP_BOS_ID = 49406;
export const CLIP_EOS_ID = 49407;
const BOS = "<|startoftext|>";
const EOS = "<|endoftext|>";
const END_OF_WORD = "</w>";

/** The result of tokenizing one prompt for the text encoder. */
export interface TokenizedPrompt {
  /** BOS, up to 75 text tokens, EOS, then padding: always `contextLength` ids. */
  readonly inputIds: Int32Array;
  /** Text tokens before truncation (without BOS/EOS). */
  readonly textTokenCount: number;
  /** Text tokens cut to fit the context (0 when the prompt fitted), so the bot can tell the user. */
  readonly truncatedCount: number;
}

/**
 * Python's `str.isspace()` set, used by `str.strip()`. It differs from JavaScript's `\s`: it has U+001C–U+001F
 * and U+0085, and lacks U+FEFF.
 */
const PY_STRIP_SPACE =
  "\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
/** The `regex` module's `\s` (Unicode White_Space): U+0085 but neither U+001C–U+001F nor U+FEFF. */
const PY_REGEX_SPACE = "\\t\\n\\v\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";

const STRIP = new RegExp(`^[${PY_STRIP_SPACE}]+|[${PY_STRIP_SPACE}]+$`, "gu");
const WHITESPACE_RUN = new RegExp(`[${PY_REGEX_SPACE}]+`, "gu");
/** CLIP's pre-tokenizer pattern; `i` as in the original (it only matters for the contractions). */
const WORD_PATTERN = new RegExp(
  `<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^${PY_REGEX_SPACE}\\p{L}\\p{N}]+`,
  "giu",
);

/** GPT-2's reversible map from bytes to printable characters, so BPE never sees spaces or control bytes. */
function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const table = new Array<string>(256);
  for (const b of printable) table[b] = String.fromCodePoint(b);
  let next = 0;
  for (let b = 0; b < 256; b++) {
    if (table[b] === undefined) table[b] = String.fromCodePoint(256 + next++);
  }
  return table;
}

const BYTE_ENCODER = bytesToUnicode();

/** What a tokenizer folder's optional config files contribute. */
export interface ClipTokenizerConfig {
  padId: number;
  contextLength: number;
  /**
   * Special tokens split out of the text before BPE, as transformers' CLIPTokenizer (which diffusers uses)
   * splits its added tokens: a pad token other than BOS/EOS, such as SD 2.x's and SDXL's second `!`, so that
   * `!!!` is fed as three pad ids (diffusers issue 4153), not BPE's `!!!`. BOS and EOS need no entry: CLIP's
   * own pattern matches them.
   */
  splitTokens: readonly { content: string; id: number }[];
}

/** CLIP's tokenizer: normalisation, pre-tokenisation and BPE, with a per-word cache. */
export class ClipTokenizer {
  private readonly cache = new Map<string, readonly number[]>();

  constructor(
    private readonly vocab: ReadonlyMap<string, number>,
    private readonly mergeRanks: ReadonlyMap<string, number>,
    readonly config: ClipTokenizerConfig,
  ) {
    this.clearCache();
  }

  /** Loads `vocab.json`, `merges.txt` and, when present, `tokenizer_config.json` / `special_tokens_map.json`. */
  static fromFolder(folder: string): ClipTokenizer {
    const vocab = loadVocab(join(folder, "vocab.json"));
    const mergeRanks = loadMerges(join(folder, "merges.txt"));
    const config = loadSpecialTokens(folder, vocab);
    return new ClipTokenizer(vocab, mergeRanks, config);
  }

  /** Entries in vocab.json (CLIP's 49408): a text encoder's token table must have as many rows. */
  get vocabSize(): number {
    return this.vocab.size;
  }

  /** `simple_tokenizer.encode(text)`: the text token ids, without BOS/EOS, never truncated. */
  encode(text: string): number[] {
    const ids: number[] = [];
    for (const piece of this.splitSpecial(text)) {
      if (typeof piece === "number") {
        ids.push(piece);
        continue;
      }
      for (const word of preTokenize(piece)) {
        for (const id of this.encodeWord(word)) ids.push(id);
      }
    }
    return ids;
  }

  /** The text cut at each split token (exact and case-sensitive, as transformers' trie): text pieces and ids. */
  private splitSpecial(text: string): (string | number)[] {
    const pieces: (string | number)[] = [text];
    for (const { content, id } of this.config.splitTokens) {
      for (let i = 0; i < pieces.length; i++) {
        const piece = pieces[i];
        if (typeof piece !== "string" || !piece.includes(content)) continue;
        const parts = piece.split(content).flatMap((part, k) => (k === 0 ? [part] : [id, part]));
        pieces.splice(i, 1, ...parts);
        i += parts.length - 1;
      }
    }
    return pieces.filter((piece) => piece !== "");
  }

  /** The text encoder's input: BOS + the first 75 text tokens + EOS, padded to the context length. */
  tokenize(text: string): TokenizedPrompt {
    const ids = this.encode(text);
    const room = this.config.contextLength - 2;
    const kept = Math.min(ids.length, room);
    const inputIds = new Int32Array(this.config.contextLength).fill(this.config.padId);
    inputIds[0] = CLIP_BOS_ID;
    for (let i = 0; i < kept; i++) inputIds[i + 1] = ids[i] as number;
    inputIds[kept + 1] = CLIP_EOS_ID;
    return { inputIds, textTokenCount: ids.length, truncatedCount: ids.length - kept };
  }

  /** Forgets the per-word BPE cache (benchmarks measure the uncached path with it). */
  clearCache(): void {
    this.cache.clear();
    for (const special of [BOS, EOS]) {
      const id = this.vocab.get(special);
      if (id !== undefined) this.cache.set(special, [id]);
    }
  }

  /** Turns ids back into text (`simple_tokenizer.decode`), for logs and the "how it was made" view. */
  decode(ids: readonly number[]): string {
    const byId = this.reverseVocab();
    const byteDecoder = new Map(BYTE_ENCODER.map((ch, b) => [ch, b]));
    const text = ids.map((id) => byId[id] ?? "").join("");
    const bytes: number[] = [];
    for (const ch of text) {
      const b = byteDecoder.get(ch);
      if (b !== undefined) bytes.push(b);
    }
    return new TextDecoder("utf-8", { fatal: false })
      .decode(Uint8Array.from(bytes))
      .replaceAll(END_OF_WORD, " ");
  }

  private reverseVocabCache: string[] | undefined;
  private reverseVocab(): string[] {
    if (this.reverseVocabCache === undefined) {
      const byId: string[] = [];
      for (const [token, id] of this.vocab) byId[id] = token;
      this.reverseVocabCache = byId;
    }
    return this.reverseVocabCache;
  }

  private encodeWord(word: string): readonly number[] {
    const cached = this.cache.get(word);
    if (cached !== undefined) return cached;
    let mapped = "";
    for (const byte of Buffer.from(word, "utf8")) mapped += BYTE_ENCODER[byte];
    const ids = this.bpe(mapped).map((symbol) => {
      const id = this.vocab.get(symbol);
      // Every single byte symbol is in the vocabulary, so BPE output always maps; this guards a corrupt vocab.
      if (id === undefined) throw new EaselError("tokenizer_file", `vocab.json has no entry for "${symbol}"`);
      return id;
    });
    // Bound the cache: a 100 kB prompt of unique words must not grow memory without limit.
    if (this.cache.size > 50_000) this.clearCache();
    this.cache.set(word, ids);
    return ids;
  }

  /** Byte-pair merging by rank, the last symbol carrying `</w>`, as CLIP's `bpe()`. */
  private bpe(token: string): string[] {
    const symbols = Array.from(token);
    const last = symbols.length - 1;
    symbols[last] = `${symbols[last]}${END_OF_WORD}`;
    let word = symbols;
    while (word.length > 1) {
      let bestRank = Number.POSITIVE_INFINITY;
      let bestPair: [string, string] | undefined;
      for (let i = 0; i < word.length - 1; i++) {
        const rank = this.mergeRanks.get(`${word[i]} ${word[i + 1]}`);
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          bestPair = [word[i] as string, word[i + 1] as string];
        }
      }
      if (bestPair === undefined) break;
      const [first, second] = bestPair;
      const merged: string[] = [];
      for (let i = 0; i < word.length; ) {
        if (word[i] === first && word[i + 1] === second && i < word.length - 1) {
          merged.push(first + second);
          i += 2;
        } else {
          merged.push(word[i] as string);
          i += 1;
        }
      }
      word = merged;
    }
    return word;
  }
}

/** CLIP's text clean-up and split into words: NFC, HTML unescape ×2, whitespace, lower case, regex. */
export function preTokenize(text: string): string[] {
  let clean = text.normalize("NFC");
  clean = htmlUnescape(htmlUnescape(clean)).replace(STRIP, "");
  clean = clean.replace(WHITESPACE_RUN, " ").replace(STRIP, "");
  clean = clean.toLowerCase();
  return clean.match(WORD_PATTERN) ?? [];
}

function readTokenizerFile(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (cause) {
    throw new EaselError("tokenizer_file", `tokenizer file ${path} cannot be read`, { cause });
  }
}

function parseJsonFile(path: string): unknown {
  const text = readTokenizerFile(path);
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new EaselError("tokenizer_file", `tokenizer file ${path} is not valid JSON`, { cause });
  }
}

function loadVocab(path: string): Map<string, number> {
  const raw = parseJsonFile(path);
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new EaselError("tokenizer_file", `tokenizer file ${path} must be a JSON object of token → id`);
  }
  const vocab = new Map<string, number>();
  for (const [token, id] of Object.entries(raw)) {
    if (!Number.isInteger(id) || (id as number) < 0) {
      throw new EaselError(
        "tokenizer_file",
        `tokenizer file ${path}: the id of "${token.slice(0, 40)}" is not a whole number`,
      );
    }
    vocab.set(token, id as number);
  }
  for (const byte of BYTE_ENCODER) {
    if (!vocab.has(byte) || !vocab.has(`${byte}${END_OF_WORD}`)) {
      throw new EaselError(
        "tokenizer_file",
        `tokenizer file ${path} lacks the byte token "${byte}": not a CLIP vocabulary`,
      );
    }
  }
  for (const [special, id] of [
    [BOS, CLIP_BOS_ID],
    [EOS, CLIP_EOS_ID],
  ] as const) {
    if (vocab.get(special) !== id) {
      throw new EaselError("tokenizer_file", `tokenizer file ${path} must map ${special} to ${id}`);
    }
  }
  return vocab;
}

function loadMerges(path: string): Map<string, number> {
  const lines = readTokenizerFile(path).split("\n");
  const ranks = new Map<string, number>();
  for (const [lineIndex, line] of lines.entries()) {
    if (line === "" || (lineIndex === 0 && line.startsWith("#version"))) continue;
    const parts = line.split(" ");
    if (parts.length !== 2 || parts[0] === "" || parts[1] === "") {
      throw new EaselError(
        "tokenizer_file",
        `tokenizer file ${path}, line ${lineIndex + 1}: expected "left right"`,
      );
    }
    const key = `${parts[0]} ${parts[1]}`;
    if (!ranks.has(key)) ranks.set(key, ranks.size);
  }
  if (ranks.size === 0) throw new EaselError("tokenizer_file", `tokenizer file ${path} holds no merges`);
  return ranks;
}

/** A token in HF config files is a string or `{ content: string, … }`. */
function tokenContent(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (
    typeof value === "object" &&
    value !== null &&
    "content" in value &&
    typeof value.content === "string"
  ) {
    return value.content;
  }
  return undefined;
}

function loadOptionalJson(path: string): Record<string, unknown> | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new EaselError("tokenizer_file", `tokenizer file ${path} cannot be read`, { cause });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new EaselError("tokenizer_file", `tokenizer file ${path} is not valid JSON`, { cause });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new EaselError("tokenizer_file", `tokenizer file ${path} must hold a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

/**
 * The pad id and context length. SD 1.x pads with `<|endoftext|>` (49407), SD 2.x and SD-Turbo with `!` (0);
 * `special_tokens_map.json` wins over `tokenizer_config.json`, as in Hugging Face's loader.
 */
function loadSpecialTokens(folder: string, vocab: ReadonlyMap<string, number>): ClipTokenizerConfig {
  const configPath = join(folder, "tokenizer_config.json");
  const mapPath = join(folder, "special_tokens_map.json");
  const config = loadOptionalJson(configPath);
  const specialMap = loadOptionalJson(mapPath);
  const padToken = tokenContent(specialMap?.pad_token) ?? tokenContent(config?.pad_token) ?? EOS;
  const padId = vocab.get(padToken);
  if (padId === undefined) {
    const source = specialMap?.pad_token !== undefined ? mapPath : configPath;
    throw new EaselError(
      "tokenizer_file",
      `tokenizer file ${source}: pad token "${padToken}" is not in vocab.json`,
    );
  }
  const maxLength = config?.model_max_length;
  // HF writes a huge sentinel when no limit was set; CLIP's text encoder always takes 77.
  const contextLength =
    typeof maxLength === "number" && Number.isInteger(maxLength) && maxLength >= 3 && maxLength <= 1024
      ? maxLength
      : CLIP_CONTEXT_LENGTH;
  const splitTokens = padToken === BOS || padToken === EOS ? [] : [{ content: padToken, id: padId }];
  return { padId, contextLength, splitTokens };
}
