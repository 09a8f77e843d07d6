/**
 * Admins' banned patterns, run on re2js (a JavaScript port of RE2): matching takes time linear in the text
 * whatever the pattern, where V8's backtracking engine needs seconds or forever for `(a+)+$` on a hostile
 * prompt. Admins write JavaScript syntax, checked with RegExp first so that they get the error messages they
 * know; it is then translated to RE2's, keeping easel's meaning where the two differ:
 * - `\w \d \s \b` know Unicode (letters, marks, numbers and `_`; any decimal digit; any space), where RE2's
 *   know ASCII only, so that `\bcafé\b` or `\bкот\b` match at all;
 * - lookarounds and backreferences are refused with a reason naming them (RE2 has no lookahead and no
 *   backreference; its lookbehinds are kept for easel's own use below);
 * - JavaScript's own spellings (`\u{…}`, `\cJ`, `[]`, `[^]`, `(?<name>…)`, `\p{Script=…}`) become RE2's.
 *
 * RE2 has no lookahead and only ASCII word boundaries, so a pattern with `^ $ \b \B` runs on a marked copy of
 * the text instead: a marker character before, between and after the characters says whether its position
 * is the start, the end, a word boundary. Each atom of the pattern then consumes a character and the marker
 * after it, and each assertion becomes a one-character lookbehind at the marker just consumed.
 */

import { RE2JS, RE2JSSyntaxException } from "re2js";
import type { Parsed } from "./aspect.ts";

/** Word characters (for `\w`, `\b` and banned words), in syntax that both RegExp and RE2 read inside [ ]. */
export const WORD_CHARS = "\\p{L}\\p{M}\\p{N}_";
const WORD_CHAR = new RegExp(`[${WORD_CHARS}]`, "u");
// JavaScript's \s: line terminators, tab, vertical tab, form feed, BOM and the space separators.
const SPACE_CHARS = "\\t\\n\\v\\f\\r\\x{2028}\\x{2029}\\x{feff}\\p{Zs}";

const hex = (cp: number): string => `\\x{${cp.toString(16)}}`;
// Letters, digits and spaces are never special in RE2; anything else is written as \x{…}.
const literal = (cp: number): string =>
  /[\p{L}\p{N} ]/u.test(String.fromCodePoint(cp)) ? String.fromCodePoint(cp) : hex(cp);
const ANY = "[\\x{0}-\\x{10ffff}]";
const NEVER = "[^\\x{0}-\\x{10ffff}]";

// Markers are noncharacters, which no prompt needs: bit 1 marks the start, 2 the end, 4 a word boundary.
const MARK = 0xfdd0;
const markers = (pick: (bits: number) => boolean): string =>
  `[${[0, 1, 2, 3, 4, 5, 6, 7]
    .filter(pick)
    .map((bits) => hex(MARK + bits))
    .join("")}]`;
const ANY_MARKER = markers(() => true);
const ASSERTIONS: Readonly<Record<string, string>> = {
  "^": markers((bits) => (bits & 1) !== 0),
  $: markers((bits) => (bits & 2) !== 0),
  b: markers((bits) => (bits & 4) !== 0),
  B: markers((bits) => (bits & 4) === 0),
};

// Class escapes: the form that goes inside [ ] (none for \W and \S: RE2 cannot put a complement there) and
// the form on its own, marked case-sensitive as it is closed under case already: folding RE2's big Unicode
// tables for nothing would make compiling several times slower.
const CLASS_ESCAPES: Readonly<Record<string, { inside?: string; alone: string }>> = {
  d: { inside: "\\p{Nd}", alone: "(?-i:\\p{Nd})" },
  D: { inside: "\\P{Nd}", alone: "(?-i:\\P{Nd})" },
  w: { inside: WORD_CHARS, alone: `(?-i:[${WORD_CHARS}])` },
  W: { alone: `(?-i:[^${WORD_CHARS}])` },
  s: { inside: SPACE_CHARS, alone: `(?-i:[${SPACE_CHARS}])` },
  S: { alone: `(?-i:[^${SPACE_CHARS}])` },
};
const LOOKAROUNDS: Readonly<Record<string, string>> = {
  "=": "(?=…) is a lookahead",
  "!": "(?!…) is a negative lookahead",
  "<=": "(?<=…) is a lookbehind",
  "<!": "(?<!…) is a negative lookbehind",
};
const CONTROL_ESCAPES: Readonly<Record<string, number>> = { n: 10, r: 13, t: 9, f: 12, v: 11, "0": 0 };

/** A banned pattern compiled for re2js. */
export interface CompiledPattern {
  /** The pattern as the admin wrote it. */
  readonly source: string;
  readonly re: RE2JS;
  /** Runs on the marked text (the pattern has `^ $ \b \B`). */
  readonly marked: boolean;
  /** RE2 program instructions: what matching costs per character of text. */
  readonly size: number;
  /** Some match is the empty string (so the pattern would refuse nearly every prompt). */
  readonly nullable: boolean;
}

class Refusal extends Error {}

/** A pattern in RE2 syntax: for the plain text, for the marked text, and as a probe for empty matches. */
interface Translation {
  plain: string;
  marked: string;
  /** Atoms never match and assertions always do: it matches "" iff the pattern can match an empty string. */
  probe: string;
  /** The pattern has `^ $ \b \B`, so it must run on the marked text. */
  assertions: boolean;
}

/** Translates a pattern that RegExp accepted with the u flag, so the syntax is known to be well formed. */
function translate(source: string): Translation {
  const cps = Array.from(source, (ch) => ch.codePointAt(0) ?? 0);
  let i = 0;
  const out: Translation = { plain: "", marked: "", probe: "", assertions: false };
  const peek = (offset = 0): string | undefined => {
    const cp = cps[i + offset];
    return cp === undefined ? undefined : String.fromCodePoint(cp);
  };
  const next = (): number => {
    const cp = cps[i++];
    if (cp === undefined) throw new Refusal("the pattern ends too early");
    return cp;
  };
  const syntax = (re: string): void => {
    out.plain += re;
    out.marked += re;
    out.probe += re;
  };
  const atom = (re: string): void => {
    out.plain += re;
    out.marked += `(?:${re}${ANY_MARKER})`;
    out.probe += NEVER;
  };
  const assertion = (kind: string): void => {
    out.assertions = true;
    out.marked += `(?<=${ASSERTIONS[kind]})`;
    out.probe += "(?:)";
  };
  const hexDigits = (count: number): number => {
    const digits = String.fromCodePoint(...cps.slice(i, i + count));
    i += count;
    return Number.parseInt(digits, 16);
  };
  const braced = (): string => {
    const close = cps.indexOf(0x7d, i);
    const body = String.fromCodePoint(...cps.slice(i + 1, close));
    i = close + 1;
    return body;
  };

  /** The character an escape stands for: `\n`, `\x41`, `\u{1F600}`, `\uD83D\uDE00`, `\cJ`, `\.`. */
  const escapedCodePoint = (c: string): number => {
    const control = CONTROL_ESCAPES[c];
    if (control !== undefined) return control;
    if (c === "c") return next() % 32;
    if (c === "x") return hexDigits(2);
    if (c === "u") {
      if (peek() === "{") return Number.parseInt(braced(), 16);
      const unit = hexDigits(4);
      // With the u flag, an escaped surrogate pair is one character.
      if (unit >= 0xd800 && unit <= 0xdbff && peek() === "\\" && peek(1) === "u" && peek(2) !== "{") {
        const low = Number.parseInt(String.fromCodePoint(...cps.slice(i + 2, i + 6)), 16);
        if (low >= 0xdc00 && low <= 0xdfff) {
          i += 6;
          return 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00);
        }
      }
      return unit;
    }
    if (c === "k") throw new Refusal("backreferences (\\k<name>) are not supported in banned patterns");
    if (/[1-9]/.test(c)) throw new Refusal(`backreferences (\\${c}) are not supported in banned patterns`);
    if (/[\\^$.*+?()[\]{}|/-]/.test(c)) return c.codePointAt(0) ?? 0;
    throw new Refusal(`"\\${c}" is not supported in banned patterns`);
  };

  /** `\p{…}` or `\P{…}` as RE2 writes it: general categories by short name, scripts by name. */
  const property = (c: string): string => {
    const body = braced();
    const [key, value] = body.includes("=") ? body.split("=") : [undefined, body];
    const re = `\\${c}{${value}}`;
    const known = key === undefined || ["General_Category", "gc", "Script", "sc"].includes(key);
    if (!known || !isRe2Property(re))
      throw new Refusal(
        `\\${c}{${body}} is not supported in banned patterns: name a general category by its short name ` +
          "(\\p{L}, \\p{Lu}, \\p{Nd}) or a script by its name (\\p{Greek}, \\p{Han})",
      );
    return re;
  };

  const classEscape = (c: string): { inside?: string; alone: string } | undefined => {
    if (c === "p" || c === "P") {
      const re = property(c);
      return { inside: re, alone: re };
    }
    return CLASS_ESCAPES[c];
  };

  /** One member of a [ ] class: a character, or a class escape. */
  const classAtom = (): number | { inside?: string; alone: string } => {
    const cp = next();
    if (cp !== 0x5c) return cp;
    const c = String.fromCodePoint(next());
    if (c === "b") return 8; // backspace inside [ ], as in RegExp
    return classEscape(c) ?? escapedCodePoint(c);
  };

  const charClass = (): string => {
    const negate = peek() === "^";
    if (negate) i++;
    let members = "";
    const alone: string[] = [];
    while (peek() !== "]") {
      const start = classAtom();
      if (typeof start !== "number") {
        if (start.inside !== undefined) members += start.inside;
        else alone.push(start.alone);
      } else if (peek() === "-" && peek(1) !== "]") {
        i++;
        // RegExp has checked that both ends are characters, in order.
        members += `${hex(start)}-${hex(classAtom() as number)}`;
      } else {
        // Written as \x{…}, so that "[" (RE2's [:alpha:]), "^" or "-" stays a plain character.
        members += hex(start);
      }
    }
    i++; // the closing ]
    if (members === "" && alone.length === 0) return negate ? ANY : NEVER; // RegExp's [^] and []
    if (alone.length === 0) return `[${negate ? "^" : ""}${members}]`;
    if (negate)
      throw new Refusal(
        "\\W and \\S cannot be used inside [^…] in banned patterns ([^\\W] is \\w, [^\\S] is \\s)",
      );
    return `(?:${[...(members === "" ? [] : [`[${members}]`]), ...alone].join("|")})`;
  };

  const group = (): void => {
    // Every group becomes (?:…): captures are never read, and a plain group is cheaper.
    syntax("(?:");
    if (peek() !== "?") return;
    const kind = `${peek(1) ?? ""}${peek(2) ?? ""}`;
    const lookaround = LOOKAROUNDS[/^<?[=!]/.exec(kind)?.[0] ?? ""];
    if (lookaround !== undefined)
      throw new Refusal(`lookarounds are not supported in banned patterns: ${lookaround}`);
    if (kind.startsWith(":")) i += 2;
    else if (kind.startsWith("<"))
      i = cps.indexOf(0x3e, i) + 1; // a named group: the name is not needed
    else throw new Refusal(`the group "(?${peek(1) ?? ""}" is not supported in banned patterns`);
  };

  while (i < cps.length) {
    const cp = next();
    const c = String.fromCodePoint(cp);
    if (c === "(") group();
    else if (c === ")" || c === "|" || c === "*" || c === "+" || c === "?") syntax(c);
    else if (c === "{") {
      i--; // a repeat {n,m}: RegExp has refused a "{" that is not one
      syntax(`{${braced()}}`);
    } else if (c === "^" || c === "$") assertion(c);
    else if (c === ".") atom(".");
    else if (c === "[") atom(charClass());
    else if (c === "\\") {
      const e = String.fromCodePoint(next());
      if (e === "b" || e === "B") assertion(e);
      else atom(classEscape(e)?.alone ?? literal(escapedCodePoint(e)));
    } else atom(literal(cp));
  }
  return out;
}

// RE2 knows fewer property names than RegExp (no \p{Letter}, \p{Emoji}, \p{Script=Grek}).
function isRe2Property(re: string): boolean {
  try {
    RE2JS.compile(re);
    return true;
  } catch {
    return false;
  }
}

/**
 * Compiles one pattern in JavaScript syntax for re2js, or says why it cannot be used (the reason completes
 * "banned pattern /…/ …"). Matching is case-insensitive, and `.` matches line breaks too.
 */
export function compilePattern(source: string): Parsed<CompiledPattern> {
  try {
    new RegExp(source, "u");
  } catch (err) {
    return { ok: false, reason: `is not a valid regular expression: ${(err as Error).message}` };
  }
  let translation: Translation;
  try {
    translation = translate(source);
  } catch (err) {
    if (err instanceof Refusal) return { ok: false, reason: `cannot be used: ${err.message}` };
    throw err;
  }
  const { assertions: marked } = translation;
  const flags = RE2JS.CASE_INSENSITIVE | RE2JS.DOTALL | (marked ? RE2JS.LOOKBEHINDS : 0);
  try {
    const re = marked
      ? RE2JS.compile(`${ANY_MARKER}(?:${translation.marked})`, flags)
      : RE2JS.compile(translation.plain, flags);
    const nullable = RE2JS.compile(translation.probe).test("");
    return { ok: true, value: { source, re, marked, size: re.programSize(), nullable } };
  } catch (err) {
    if (!(err instanceof RE2JSSyntaxException)) throw err;
    // RE2 caps each repeat at 1000, and nested repeats multiplied together.
    if (err.getDescription().includes("repeat count"))
      return { ok: false, reason: "cannot be used: a repeat is over 1000 (nested repeats count multiplied)" };
    return { ok: false, reason: `cannot be used: ${err.getDescription()}` };
  }
}

/** A prompt's text prepared once for all patterns: cut to a length, and marked when a pattern needs it. */
export class PatternText {
  /** The text itself. */
  readonly plain: string;
  private readonly chars: readonly string[];
  private readonly cut: boolean;
  private markedText: string | undefined;

  /** `text` is already normalised; patterns see its first `maxChars` characters, where `$` is not the end. */
  constructor(text: string, maxChars: number) {
    const chars: string[] = [];
    for (const ch of text) {
      chars.push(ch);
      if (chars.length > maxChars) break;
    }
    // One character past the limit is kept to say whether the cut is a word boundary.
    this.cut = chars.length > maxChars;
    this.chars = chars;
    this.plain = (this.cut ? chars.slice(0, maxChars) : chars).join("");
  }

  /** The text with a marker before, between and after its characters (see the file's comment). */
  get marked(): string {
    if (this.markedText === undefined) {
      const words = this.chars.map((ch) => WORD_CHAR.test(ch));
      const length = this.cut ? this.chars.length - 1 : this.chars.length;
      let text = "";
      for (let k = 0; k <= length; k++) {
        const bits =
          (k === 0 ? 1 : 0) |
          (k === length && !this.cut ? 2 : 0) |
          ((words[k - 1] ?? false) !== (words[k] ?? false) ? 4 : 0);
        text += String.fromCharCode(MARK + bits);
        const ch = this.chars[k] as string;
        // A marker typed into the prompt would pose as a position: it stands for an unknown character.
        if (k < length) text += ch >= "\ufdd0" && ch <= "\ufdd7" ? "\ufffd" : ch;
      }
      this.markedText = text;
    }
    return this.markedText;
  }
}

/** The text the pattern matches first (leftmost, as RegExp would), or undefined. */
export function matchPattern(pattern: CompiledPattern, text: PatternText): string | undefined {
  const input = pattern.marked ? text.marked : text.plain;
  // test() can take RE2's DFA; exec() finds the match's bounds, and only runs on a prompt about to be refused.
  if (!pattern.re.test(input)) return undefined;
  const hit: string = pattern.re.exec(input)?.[0] ?? "";
  return pattern.marked
    ? Array.from(hit)
        .filter((_, k) => k % 2 === 1)
        .join("")
    : hit;
}
