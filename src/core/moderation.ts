/**
 * Banned words and patterns per guild. Words match case-insensitively on Unicode word boundaries. Patterns
 * are regular expressions written by admins; they run on easel's own matcher (a Thompson NFA simulation), not
 * on V8's backtracking engine, so no pattern can take more than (text length × pattern size) steps: `(a+)+$`
 * or `.*.*.*x` would otherwise let one prompt stall the bot's event loop for seconds or forever. The matcher
 * supports what ban lists use (literals, `.`, classes, `\d \w \s \b`, `\p{…}`, groups, `|`, `* + ? {n,m}`,
 * `^ $`) and refuses lookarounds and backreferences when the settings are saved, with a reason.
 *
 * Text is normalised before matching (NFKC, format characters such as zero-width spaces removed, lower case),
 * so fullwidth letters, ligatures and invisible separators do not slip past a rule. Only the prompt is
 * checked: a banned word in the negative prompt keeps it out of the image.
 */

import type { Parsed } from "./aspect.ts";

/** Limits on rule sets, so that checking one prompt stays a few milliseconds whatever admins configure. */
export const MODERATION_LIMITS = {
  maxWords: 500,
  maxWordChars: 100,
  maxPatterns: 50,
  maxPatternChars: 200,
  /** Matcher states for all patterns of a guild together; the cost per character is at most this. */
  maxStates: 5000,
  /** Patterns see at most this many characters (prompts are limited to 1000 before moderation anyway). */
  maxTextChars: 2000,
} as const;

/** Compiled rules for one guild; build once per settings change with compileModerationRules. */
export interface ModerationRules {
  readonly words: readonly { readonly word: string; readonly regex: RegExp }[];
  readonly patterns: readonly { readonly source: string; readonly program: Program }[];
}

/** What a prompt was refused for. */
export interface BannedMatch {
  kind: "word" | "pattern";
  /** The banned word as the admin wrote it, or the text a pattern matched. */
  text: string;
  /** The pattern's source, for logs (not shown to the user). */
  pattern?: string;
}

/** Lower case, NFKC, no format characters: the form both rules and prompts are compared in. */
export function normalizeForModeration(text: string): string {
  return text
    .normalize("NFKC")
    .replace(/\p{Cf}/gu, "")
    .toLowerCase();
}

const WORD_CHAR = /[\p{L}\p{M}\p{N}_]/u;
// Scripts written without spaces between words: a banned word there matches inside longer text.
const UNSPACED_SCRIPT =
  /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Thai}\p{Script=Lao}\p{Script=Khmer}\p{Script=Myanmar}]/u;

const escapeRegex = (text: string): string => text.replace(/[\\^$.*+?()[\]{}|/]/g, "\\$&");

function compileWord(word: string): RegExp {
  const normal = normalizeForModeration(word).trim();
  const body = normal.split(/\s+/).map(escapeRegex).join("\\s+");
  const chars = Array.from(normal);
  const bounded = !UNSPACED_SCRIPT.test(normal);
  const before = bounded && WORD_CHAR.test(chars[0] ?? "") ? "(?<![\\p{L}\\p{M}\\p{N}_])" : "";
  const after = bounded && WORD_CHAR.test(chars.at(-1) ?? "") ? "(?![\\p{L}\\p{M}\\p{N}_])" : "";
  return new RegExp(`${before}${body}${after}`, "iu");
}

/**
 * Compiles a guild's banned words and patterns, or gives the reason the settings cannot be saved (a pattern
 * that does not compile, uses an unsupported feature, matches empty text, or the lists are too big).
 */
export function compileModerationRules(rules: {
  bannedWords: readonly string[];
  bannedPatterns: readonly string[];
}): Parsed<ModerationRules> {
  const L = MODERATION_LIMITS;
  if (rules.bannedWords.length > L.maxWords)
    return { ok: false, reason: `at most ${L.maxWords} banned words (got ${rules.bannedWords.length})` };
  if (rules.bannedPatterns.length > L.maxPatterns)
    return {
      ok: false,
      reason: `at most ${L.maxPatterns} banned patterns (got ${rules.bannedPatterns.length})`,
    };
  const words: { word: string; regex: RegExp }[] = [];
  for (const raw of rules.bannedWords) {
    const word = typeof raw === "string" ? raw.trim() : "";
    // Checked after normalising too: a word of only invisible characters would otherwise match every prompt.
    if (word === "" || normalizeForModeration(word).trim() === "")
      return { ok: false, reason: "a banned word is empty" };
    if (Array.from(word).length > L.maxWordChars)
      return {
        ok: false,
        reason: `banned words are at most ${L.maxWordChars} characters ("${word.slice(0, 20)}…")`,
      };
    words.push({ word, regex: compileWord(word) });
  }
  const patterns: { source: string; program: Program }[] = [];
  let states = 0;
  for (const source of rules.bannedPatterns) {
    const compiled = compileBannedPattern(source);
    if (!compiled.ok) return compiled;
    states += compiled.value.length;
    if (states > L.maxStates)
      return {
        ok: false,
        reason: `the banned patterns are too complex together (limit ${L.maxStates} matcher states); remove some or shorten their {n,m} repeats`,
      };
    patterns.push({ source, program: compiled.value });
  }
  return { ok: true, value: { words, patterns } };
}

/** The first banned word or pattern in `text`, or undefined when it is clean. */
export function findBanned(text: string, rules: ModerationRules): BannedMatch | undefined {
  const normal = normalizeForModeration(text);
  for (const { word, regex } of rules.words) if (regex.test(normal)) return { kind: "word", text: word };
  if (rules.patterns.length === 0) return undefined;
  const points: number[] = [];
  let cut = false;
  for (const ch of normal) {
    if (points.length === MODERATION_LIMITS.maxTextChars) {
      cut = true;
      break;
    }
    points.push(ch.codePointAt(0) ?? 0);
  }
  for (const { source, program } of rules.patterns) {
    const hit = runProgram(program, points, !cut);
    if (hit)
      return {
        kind: "pattern",
        text: String.fromCodePoint(...points.slice(hit.start, hit.end)),
        pattern: source,
      };
  }
  return undefined;
}

/** Checks a prompt against a guild's rules; the reason names the banned word or the text a pattern matched. */
export function moderatePrompt(text: string, rules: ModerationRules): Parsed<string> {
  const hit = findBanned(text, rules);
  if (!hit) return { ok: true, value: text };
  const shown = Array.from(hit.text).slice(0, 40).join("").replace(/\s+/g, " ");
  return {
    ok: false,
    reason:
      hit.kind === "word"
        ? `your prompt contains a banned word: ‘${shown}’`
        : `your prompt contains banned text: ‘${shown}’ (it matches a pattern this server bans)`,
  };
}

// ---------------------------------------------------------------------------------------------------------
// The pattern matcher: parse the supported regex syntax into a tree, compile it to an NFA program, and run
// the program over code points with every live state at once (Pike VM without captures).

type CharTest = (cp: number) => boolean;

type Node =
  | { t: "char"; test: CharTest }
  | { t: "seq"; items: Node[] }
  | { t: "alt"; options: Node[] }
  | { t: "repeat"; node: Node; min: number; max: number }
  | { t: "assert"; kind: "start" | "end" | "boundary" | "notBoundary" };

/** One NFA instruction; `x`/`y` are the indices of the next instructions. */
type Inst =
  | { op: "char"; test: CharTest; x: number }
  | { op: "split"; x: number; y: number }
  | { op: "jmp"; x: number }
  | { op: "assert"; kind: "start" | "end" | "boundary" | "notBoundary"; x: number }
  | { op: "match" };

/** A compiled pattern. */
export type Program = readonly Inst[];

class PatternError extends Error {}

const fromCp = (cp: number): string => String.fromCodePoint(cp);
// Case mappings that turn one character into several ("ß" → "SS") are left alone, as JavaScript's /i does.
const lowerCp = (cp: number): number => {
  const lower = Array.from(fromCp(cp).toLowerCase());
  return lower.length === 1 ? (lower[0]?.codePointAt(0) ?? cp) : cp;
};
const upperCp = (cp: number): number => {
  const upper = Array.from(fromCp(cp).toUpperCase());
  return upper.length === 1 ? (upper[0]?.codePointAt(0) ?? cp) : cp;
};

const isWordCp = (cp: number | undefined): boolean => cp !== undefined && WORD_CHAR.test(fromCp(cp));
const SPACE: CharTest = (cp) => /\s/u.test(fromCp(cp));
const DIGIT: CharTest = (cp) => /\p{Nd}/u.test(fromCp(cp));
const WORD: CharTest = (cp) => isWordCp(cp);
const ANY: CharTest = () => true;

/** Case-insensitive class test: prompts are lower-cased, so also try the upper case of each character. */
const foldTest =
  (test: CharTest): CharTest =>
  (cp) =>
    test(cp) || test(upperCp(cp)) || test(lowerCp(cp));

class PatternParser {
  private i = 0;
  private readonly cps: number[];

  constructor(source: string) {
    this.cps = Array.from(source, (ch) => ch.codePointAt(0) ?? 0);
  }

  parse(): Node {
    const node = this.alternation();
    if (this.i < this.cps.length) throw new PatternError(`unexpected "${fromCp(this.cps[this.i] ?? 0)}"`);
    return node;
  }

  private peek(offset = 0): string | undefined {
    const cp = this.cps[this.i + offset];
    return cp === undefined ? undefined : fromCp(cp);
  }

  private next(): number {
    const cp = this.cps[this.i++];
    if (cp === undefined) throw new PatternError("the pattern ends too early");
    return cp;
  }

  private alternation(): Node {
    const options = [this.sequence()];
    while (this.peek() === "|") {
      this.i++;
      options.push(this.sequence());
    }
    return options.length === 1 ? (options[0] as Node) : { t: "alt", options };
  }

  private sequence(): Node {
    const items: Node[] = [];
    while (this.i < this.cps.length && this.peek() !== "|" && this.peek() !== ")")
      items.push(this.quantified());
    return { t: "seq", items };
  }

  private quantified(): Node {
    const atom = this.atom();
    const q = this.quantifier();
    if (!q) return atom;
    if (atom.t === "assert") throw new PatternError("an anchor or \\b cannot be repeated");
    if (this.peek() === "?") this.i++; // lazy: the same matches for a yes/no question
    return { t: "repeat", node: atom, min: q.min, max: q.max };
  }

  private quantifier(): { min: number; max: number } | undefined {
    const c = this.peek();
    const simple: Record<string, { min: number; max: number }> = {
      "*": { min: 0, max: Number.POSITIVE_INFINITY },
      "+": { min: 1, max: Number.POSITIVE_INFINITY },
      "?": { min: 0, max: 1 },
    };
    if (c !== undefined && Object.hasOwn(simple, c)) {
      this.i++;
      return simple[c];
    }
    if (c !== "{") return undefined;
    const rest = String.fromCodePoint(...this.cps.slice(this.i, this.i + 24));
    const m = /^\{(\d{1,6})(,(\d{0,6}))?\}/.exec(rest);
    if (!m) throw new PatternError('"{" must start a repeat like {2,5} (write \\{ for the character)');
    this.i += Array.from(m[0]).length;
    const min = Number(m[1]);
    const max = m[2] === undefined ? min : m[3] === "" ? Number.POSITIVE_INFINITY : Number(m[3]);
    if (max < min) throw new PatternError(`the repeat ${m[0]} has its numbers the wrong way round`);
    return { min, max };
  }

  private atom(): Node {
    const cp = this.next();
    const c = fromCp(cp);
    switch (c) {
      case "(": {
        if (this.peek() === "?") {
          const kind = `${this.peek(1) ?? ""}${this.peek(2) ?? ""}`;
          if (kind.startsWith(":")) this.i += 2;
          else if (kind === "<=" || kind === "<!" || kind.startsWith("=") || kind.startsWith("!"))
            throw new PatternError("lookarounds ((?=, (?!, (?<=, (?<!) are not supported in banned patterns");
          else if (kind.startsWith("<")) {
            const close = this.cps.indexOf(0x3e, this.i);
            if (close < 0) throw new PatternError("a group name is not closed with >");
            this.i = close + 1;
          } else throw new PatternError(`the group "(?${kind}" is not supported`);
        }
        const inner = this.alternation();
        if (this.peek() !== ")") throw new PatternError("a group is not closed with )");
        this.i++;
        return inner;
      }
      case ")":
        throw new PatternError('unmatched ")"');
      case "[":
        return { t: "char", test: this.charClass() };
      case ".":
        return { t: "char", test: ANY };
      case "^":
        return { t: "assert", kind: "start" };
      case "$":
        return { t: "assert", kind: "end" };
      case "*":
      case "+":
      case "?":
      case "{":
        throw new PatternError(`"${c}" has nothing to repeat`);
      case "\\":
        return this.escape();
      default: {
        const lower = lowerCp(cp);
        return { t: "char", test: (x) => x === lower };
      }
    }
  }

  /** An escape after "\\" outside [ ]: a character test or an assertion. */
  private escape(): Node {
    const c = fromCp(this.next());
    if (c === "b") return { t: "assert", kind: "boundary" };
    if (c === "B") return { t: "assert", kind: "notBoundary" };
    return { t: "char", test: this.escapeTest(c) };
  }

  /** The test for the escape whose letter `c` was just read (`\b` means backspace here, as inside [ ]). */
  private escapeTest(c: string): CharTest {
    switch (c) {
      case "d":
        return DIGIT;
      case "D":
        return (x) => !DIGIT(x);
      case "w":
        return WORD;
      case "W":
        return (x) => !WORD(x);
      case "s":
        return SPACE;
      case "S":
        return (x) => !SPACE(x);
      case "p":
      case "P": {
        const rest = String.fromCodePoint(...this.cps.slice(this.i, this.i + 64));
        const m = /^\{[A-Za-z_=]{1,60}\}/.exec(rest);
        if (!m) throw new PatternError(`\\${c} must be followed by a property like {L}`);
        this.i += m[0].length;
        let property: RegExp;
        try {
          property = new RegExp(`^\\${c}${m[0]}$`, "u");
        } catch {
          throw new PatternError(`\\${c}${m[0]} is not a Unicode property`);
        }
        return foldTest((x) => property.test(fromCp(x)));
      }
      default: {
        const lower = lowerCp(this.escapedCodePoint(c));
        return (x) => x === lower;
      }
    }
  }

  /** The character a one-character escape stands for (`\n`, `\x41`, `\u{1F600}`, `\.`). */
  private escapedCodePoint(c: string): number {
    const simple: Record<string, number> = { b: 8, n: 10, r: 13, t: 9, f: 12, v: 11, "0": 0 };
    if (Object.hasOwn(simple, c)) return simple[c] as number;
    if (c === "x" || c === "u") {
      const rest = String.fromCodePoint(...this.cps.slice(this.i, this.i + 10));
      const m =
        c === "x" ? /^[0-9a-fA-F]{2}/.exec(rest) : /^(?:\{[0-9a-fA-F]{1,6}\}|[0-9a-fA-F]{4})/.exec(rest);
      if (!m) throw new PatternError(`\\${c} must be followed by hex digits`);
      this.i += m[0].length;
      const value = Number.parseInt(m[0].replace(/[{}]/g, ""), 16);
      if (value > 0x10ffff) throw new PatternError(`\\${c}${m[0]} is not a character`);
      return value;
    }
    if (c === "k") throw new PatternError("backreferences (\\k<name>) are not supported in banned patterns");
    if (/[1-9]/.test(c))
      throw new PatternError(`backreferences (\\${c}) are not supported in banned patterns`);
    if (/[\\^$.*+?()[\]{}|/-]/.test(c)) return c.codePointAt(0) ?? 0;
    throw new PatternError(`"\\${c}" is not supported in banned patterns`);
  }

  private charClass(): CharTest {
    const negate = this.peek() === "^";
    if (negate) this.i++;
    const tests: CharTest[] = [];
    const ranges: [number, number][] = [];
    while (this.peek() !== "]") {
      if (this.i >= this.cps.length) throw new PatternError("a [ ] class is not closed with ]");
      const start = this.classAtom();
      if (
        typeof start === "number" &&
        this.peek() === "-" &&
        this.peek(1) !== "]" &&
        this.peek(1) !== undefined
      ) {
        this.i++;
        const end = this.classAtom();
        if (typeof end !== "number") throw new PatternError("a range in [ ] must go between two characters");
        if (end < start) throw new PatternError(`the range ${fromCp(start)}-${fromCp(end)} is out of order`);
        ranges.push([start, end]);
      } else if (typeof start === "number") {
        ranges.push([start, start]);
      } else {
        tests.push(start);
      }
    }
    this.i++; // the closing ]
    const any = foldTest((x) => ranges.some(([lo, hi]) => x >= lo && x <= hi) || tests.some((t) => t(x)));
    return negate ? (x) => !any(x) : any;
  }

  /** A character (its code point) or a class escape (a test) inside [ ]. */
  private classAtom(): number | CharTest {
    const cp = this.next();
    if (cp !== 0x5c) return cp;
    const c = fromCp(this.next());
    if (/[dDwWsSpP]/.test(c)) return this.escapeTest(c);
    return this.escapedCodePoint(c);
  }
}

/** True when `node` can match zero characters (anchors and \b match nothing themselves). */
function nullable(node: Node): boolean {
  switch (node.t) {
    case "char":
      return false;
    case "assert":
      return true;
    case "seq":
      return node.items.every(nullable);
    case "alt":
      return node.options.some(nullable);
    case "repeat":
      return node.min === 0 || nullable(node.node);
  }
}

/** Number of instructions `node` compiles to (saturating, so a huge {n,m} is caught before it is built). */
function programSize(node: Node): number {
  switch (node.t) {
    case "char":
    case "assert":
      return 1;
    case "seq":
      return node.items.reduce((sum, item) => sum + programSize(item), 0);
    case "alt":
      return node.options.reduce((sum, option) => sum + programSize(option) + 2, 0);
    case "repeat": {
      const copies = node.max === Number.POSITIVE_INFINITY ? node.min + 1 : node.max;
      return Math.min(Number.MAX_SAFE_INTEGER, copies * (programSize(node.node) + 2));
    }
  }
}

function emit(node: Node, prog: Inst[]): void {
  switch (node.t) {
    case "char":
      prog.push({ op: "char", test: node.test, x: prog.length + 1 });
      return;
    case "assert":
      prog.push({ op: "assert", kind: node.kind, x: prog.length + 1 });
      return;
    case "seq":
      for (const item of node.items) emit(item, prog);
      return;
    case "alt": {
      const jumps: { op: "jmp"; x: number }[] = [];
      node.options.forEach((option, k) => {
        const last = k === node.options.length - 1;
        const split: { op: "split"; x: number; y: number } = { op: "split", x: prog.length + 1, y: -1 };
        if (!last) prog.push(split);
        emit(option, prog);
        if (!last) {
          const jump = { op: "jmp" as const, x: -1 };
          prog.push(jump);
          jumps.push(jump);
          split.y = prog.length;
        }
      });
      for (const jump of jumps) jump.x = prog.length;
      return;
    }
    case "repeat": {
      for (let k = 0; k < node.min; k++) emit(node.node, prog);
      if (node.max === Number.POSITIVE_INFINITY) {
        const split: { op: "split"; x: number; y: number } = { op: "split", x: prog.length + 1, y: -1 };
        const loop = prog.length;
        prog.push(split);
        emit(node.node, prog);
        prog.push({ op: "jmp", x: loop });
        split.y = prog.length;
        return;
      }
      const splits: { op: "split"; x: number; y: number }[] = [];
      for (let k = node.min; k < node.max; k++) {
        const split: { op: "split"; x: number; y: number } = { op: "split", x: prog.length + 1, y: -1 };
        prog.push(split);
        splits.push(split);
        emit(node.node, prog);
      }
      for (const split of splits) split.y = prog.length;
      return;
    }
  }
}

/**
 * Compiles one admin pattern for the linear-time matcher, or says why it cannot be used: too long, not a
 * valid JavaScript regular expression, an unsupported feature, too big, or matching empty text (which would
 * refuse every prompt).
 */
export function compileBannedPattern(source: string): Parsed<Program> {
  const L = MODERATION_LIMITS;
  const shown = `/${Array.from(source).slice(0, 40).join("")}${Array.from(source).length > 40 ? "…" : ""}/`;
  const fail = (why: string): Parsed<Program> => ({ ok: false, reason: `banned pattern ${shown} ${why}` });
  if (typeof source !== "string" || source === "") return fail("is empty");
  if (Array.from(source).length > L.maxPatternChars)
    return fail(`is longer than ${L.maxPatternChars} characters`);
  try {
    // The standard syntax check first, so admins get the error message they know from other tools.
    new RegExp(source, "u");
  } catch (err) {
    return fail(`is not a valid regular expression: ${err instanceof Error ? err.message : String(err)}`);
  }
  let tree: Node;
  try {
    tree = new PatternParser(source).parse();
  } catch (err) {
    if (err instanceof PatternError) return fail(`cannot be used: ${err.message}`);
    return fail(`cannot be used: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (programSize(tree) + 1 > L.maxStates)
    return fail(`is too big once its repeats are expanded (limit ${L.maxStates} matcher states)`);
  const program: Inst[] = [];
  emit(tree, program);
  program.push({ op: "match" });
  if (nullable(tree)) return fail("can match without any characters, so it would refuse nearly every prompt");
  return { ok: true, value: program };
}

/**
 * Runs `program` over code points; the first match found (earliest end) as code point offsets. `whole` is
 * false when `text` was cut to the length limit: then `$` cannot match at its end.
 */
function runProgram(
  program: Program,
  text: readonly number[],
  whole = true,
): { start: number; end: number } | undefined {
  const size = program.length;
  // Threads as parallel arrays (pc, start); `seen[pc] === step` marks a state already added for this step.
  const seen = new Int32Array(size).fill(-1);
  let current = { pcs: new Int32Array(size), starts: new Int32Array(size), length: 0 };
  let next = { pcs: new Int32Array(size), starts: new Int32Array(size), length: 0 };
  const stack: number[] = [];
  let found: { start: number; end: number } | undefined;

  const add = (list: typeof current, pc0: number, start: number, pos: number, step: number): void => {
    stack.length = 0;
    stack.push(pc0);
    while (stack.length > 0) {
      const pc = stack.pop() as number;
      if (seen[pc] === step) continue;
      seen[pc] = step;
      const inst = program[pc];
      if (!inst) continue;
      switch (inst.op) {
        case "jmp":
          stack.push(inst.x);
          break;
        case "split":
          // Pushed in reverse so x is explored first, like a backtracking engine's preference.
          stack.push(inst.y, inst.x);
          break;
        case "assert": {
          const before = text[pos - 1];
          const after = text[pos];
          const ok =
            inst.kind === "start"
              ? pos === 0
              : inst.kind === "end"
                ? whole && pos === text.length
                : (isWordCp(before) !== isWordCp(after)) === (inst.kind === "boundary");
          if (ok) stack.push(inst.x);
          break;
        }
        case "match":
          if (!found) found = { start, end: pos };
          break;
        case "char":
          list.pcs[list.length] = pc;
          list.starts[list.length] = start;
          list.length++;
          break;
      }
    }
  };

  for (let pos = 0; pos <= text.length; pos++) {
    // Threads already running started earlier, so they come first; then a new thread starts here.
    add(current, 0, pos, pos, pos);
    if (found) return found;
    if (pos === text.length) break;
    const cp = text[pos] as number;
    next.length = 0;
    for (let k = 0; k < current.length; k++) {
      const inst = program[current.pcs[k] as number];
      if (inst?.op === "char" && inst.test(cp))
        add(next, inst.x, current.starts[k] as number, pos + 1, pos + 1);
      if (found) return found;
    }
    [current, next] = [next, current];
  }
  return found;
}
