import { createRequire } from "node:module";

/**
 * HTML character-reference decoding with the exact rules of Python's `html.unescape`, which CLIP's tokenizer
 * applies (twice) to every prompt. Libraries such as `entities` differ on numeric references to control
 * characters (Python drops them, they keep them), so the rules are written out here over the standard's table.
 */

interface EntityTables {
  named: Record<string, string>;
  invalidCharrefs: Record<string, string>;
  invalidCodepoints: number[];
}

const tables = createRequire(import.meta.url)("./html-entities.json") as EntityTables;
const NAMED = new Map(Object.entries(tables.named));
const INVALID_CHARREFS = new Map(Object.entries(tables.invalidCharrefs).map(([k, v]) => [Number(k), v]));
const INVALID_CODEPOINTS = new Set(tables.invalidCodepoints);

/** Python's `_charref`: decimal, hexadecimal or a named reference of 1–32 characters, `;` optional. */
const CHARREF = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/gu;

/** Decodes HTML character references in `text` exactly as Python's `html.unescape`. */
export function htmlUnescape(text: string): string {
  if (!text.includes("&")) return text;
  return text.replace(CHARREF, (_match, ref: string) => replaceCharref(ref));
}

function replaceCharref(ref: string): string {
  if (ref.startsWith("#")) {
    const hex = ref[1] === "x" || ref[1] === "X";
    const digits = ref.slice(hex ? 2 : 1).replace(/;$/, "");
    const num = Number.parseInt(digits, hex ? 16 : 10);
    const mapped = INVALID_CHARREFS.get(num);
    if (mapped !== undefined) return mapped;
    // Huge numbers parse to large doubles or Infinity; both land here as in Python.
    if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff) return "\ufffd";
    if (INVALID_CODEPOINTS.has(num)) return "";
    return String.fromCodePoint(num);
  }
  const exact = NAMED.get(ref);
  if (exact !== undefined) return exact;
  // The longest prefix that is a reference the standard allows without ';' (e.g. "&ampx" → "&x").
  const chars = Array.from(ref);
  for (let length = chars.length - 1; length > 1; length--) {
    const prefix = chars.slice(0, length).join("");
    const value = NAMED.get(prefix);
    if (value !== undefined) return value + chars.slice(length).join("");
  }
  return `&${ref}`;
}
