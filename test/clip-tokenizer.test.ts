import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import {
  CLIP_BOS_ID,
  CLIP_BPE_DIR,
  CLIP_EOS_ID,
  ClipTokenizer,
} from "../src/backends/ldm/tokenizer/clip-tokenizer.ts";
import { htmlUnescape } from "../src/backends/ldm/tokenizer/html-unescape.ts";
import { isEaselError } from "../src/core/errors.ts";

const FIXTURE = CLIP_BPE_DIR;
const tokenizer = ClipTokenizer.fromFolder(FIXTURE);
const scratch: string[] = [];
afterAll(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

/** A copy of the fixture tokenizer folder with some files replaced (string) or removed (null). */
function tokenizerFolder(changes: Record<string, string | null>): string {
  const dir = mkdtempSync(join(tmpdir(), "easel-tokenizer-"));
  scratch.push(dir);
  cpSync(FIXTURE, dir, { recursive: true });
  for (const [file, content] of Object.entries(changes)) {
    if (content === null) rmSync(join(dir, file));
    else writeFileSync(join(dir, file), content);
  }
  return dir;
}

function loadError(dir: string): unknown {
  try {
    ClipTokenizer.fromFolder(dir);
  } catch (err) {
    return err;
  }
  return undefined;
}

describe("tokenizer folder errors name the file", () => {
  it.each([
    ["vocab.json", { "vocab.json": null }],
    ["merges.txt", { "merges.txt": null }],
    ["vocab.json", { "vocab.json": "{not json" }],
    ["vocab.json", { "vocab.json": "[1,2,3]" }],
    ["vocab.json", { "vocab.json": JSON.stringify({ a: 0 }) }],
    ["merges.txt", { "merges.txt": "#version: 0.2\nonly-one-part\n" }],
    ["merges.txt", { "merges.txt": "#version: 0.2\n" }],
    ["tokenizer_config.json", { "tokenizer_config.json": "{oops" }],
    [
      "special_tokens_map.json",
      { "special_tokens_map.json": JSON.stringify({ pad_token: "<no-such-token>" }) },
    ],
  ] as const)("a broken %s", (file, changes) => {
    const err = loadError(tokenizerFolder(changes));
    expect(isEaselError(err, "tokenizer_file")).toBe(true);
    expect((err as Error).message).toContain(file);
  });

  it("takes the pad id from tokenizer_config.json when there is no special_tokens_map.json", () => {
    const dir = tokenizerFolder({ "tokenizer_config.json": JSON.stringify({ pad_token: { content: "!" } }) });
    const ids = ClipTokenizer.fromFolder(dir).tokenize("a cat").inputIds;
    expect(Array.from(ids.slice(0, 5))).toEqual([CLIP_BOS_ID, 320, 2368, CLIP_EOS_ID, 0]);
    expect(ids[76]).toBe(0);
  });

  it("splits a `!` pad token out of the text before BPE, as transformers' CLIPTokenizer does (diffusers #4153)", () => {
    const bang = ClipTokenizer.fromFolder(
      tokenizerFolder({ "special_tokens_map.json": JSON.stringify({ pad_token: "!" }) }),
    );
    // SD 1.x's tokenizer (pad <|endoftext|>) gives BPE's own tokens for the punctuation.
    expect(tokenizer.encode("wow!!!")).not.toContain(0);
    expect(bang.encode("wow!!!")).toEqual([...tokenizer.encode("wow"), 0, 0, 0]);
    expect(bang.encode("hello!!!world")).toEqual([
      ...tokenizer.encode("hello"),
      0,
      0,
      0,
      ...tokenizer.encode("world"),
    ]);
    expect(bang.encode("! a cat !")).toEqual([0, ...tokenizer.encode("a cat"), 0]);
    // Split before HTML unescaping, as the trie runs on the raw text: an escaped `!` is BPE's.
    expect(bang.encode("&#33;")).toEqual(tokenizer.encode("&#33;"));
    expect(bang.tokenize("a cat!").inputIds.slice(0, 5)).toEqual(
      Int32Array.from([CLIP_BOS_ID, 320, 2368, 0, CLIP_EOS_ID]),
    );
  });

  it("pads with <|endoftext|> when no config names a pad token (SD 1.x)", () => {
    expect(tokenizer.config.padId).toBe(CLIP_EOS_ID);
    expect(tokenizer.tokenize("a cat").inputIds[76]).toBe(CLIP_EOS_ID);
  });
});

describe("tokenizing any input", () => {
  function checkShape(text: string): void {
    const { inputIds, textTokenCount, truncatedCount } = tokenizer.tokenize(text);
    expect(inputIds.length).toBe(77);
    expect(inputIds[0]).toBe(CLIP_BOS_ID);
    const kept = Math.min(textTokenCount, 75);
    expect(inputIds[kept + 1]).toBe(CLIP_EOS_ID);
    expect(truncatedCount).toBe(textTokenCount - kept);
    for (const id of inputIds) expect(id >= 0 && id < 49408).toBe(true);
  }

  it("never throws on random strings, emoji and control characters", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 200 }), (text) => {
        checkShape(text);
      }),
      { numRuns: 300 },
    );
  });

  it("handles lone surrogates, NUL and control characters", () => {
    checkShape("\ud800 lone \udc00 surrogates \u0000\u0001\u001f\u007f\u0085\ufeff 👩‍👩‍👧 ﷽");
  });

  it("reports how many tokens a 100 kB prompt lost", () => {
    const words = "lighthouse storm ";
    const text = words.repeat(Math.ceil(100_000 / words.length));
    const result = tokenizer.tokenize(text);
    expect(result.textTokenCount).toBeGreaterThan(10_000);
    expect(result.truncatedCount).toBe(result.textTokenCount - 75);
  });

  it("keeps whole prompts that fit", () => {
    expect(tokenizer.tokenize("a lighthouse in a storm").truncatedCount).toBe(0);
  });

  it("decodes back to the cleaned text", () => {
    expect(tokenizer.decode(tokenizer.encode("A Lighthouse,  in a STORM!"))).toBe(
      "a lighthouse , in a storm ! ",
    );
  });
});

describe("HTML unescaping follows Python's html.unescape", () => {
  it.each([
    ["&amp;", "&"],
    ["&ampx", "&x"],
    ["&notit;", "¬it;"],
    ["&notin;", "∉"],
    ["&#39;", "'"],
    ["&#x27;", "'"],
    ["&#0;", "\ufffd"],
    ["&#128;", "€"],
    ["&#1;", ""],
    ["&#xD800;", "\ufffd"],
    ["&#99999999;", "\ufffd"],
    ["&unknown;", "&unknown;"],
    ["&#;", "&#;"],
    ["no entities", "no entities"],
  ])("%j → %j", (input, expected) => {
    expect(htmlUnescape(input)).toBe(expected);
  });
});

describe("a `!` pad tokenizer feeds what transformers' CLIPTokenizer feeds", () => {
  // Made by reference/make_pipeline_references.py with transformers' own CLIPTokenizer (pad_token "!", as SD 2.x,
  // SD-Turbo and SDXL's tokenizer_2): every "!" is split out as id 0 before BPE, so "!!!" is three ids, not 995.
  const reference = JSON.parse(
    readFileSync(new URL("./golden/pipelines/tokenizer-bang-pad/cases.json", import.meta.url), "utf8"),
  ) as { cases: { id: string; text: string; with_ftfy: { input_ids: number[] } }[] };
  const bangPad = ClipTokenizer.fromFolder(
    fileURLToPath(new URL("./golden/pipelines/sdxl/tokenizer_2", import.meta.url)),
  );

  it("reads the pad token from tokenizer_2's config", () => {
    expect(bangPad.config.padId).toBe(0);
  });

  it.each(reference.cases.map((c) => [c.id, c] as const))("%s", (_id, c) => {
    expect(Array.from(bangPad.tokenize(c.text).inputIds)).toEqual(c.with_ftfy.input_ids);
  });
});
