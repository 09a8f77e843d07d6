/**
 * Banned words and patterns per guild. Words match case-insensitively on Unicode word boundaries. Patterns
 * are regular expressions written by admins in JavaScript syntax; they run on re2js (banned-pattern.ts), not
 * on V8's backtracking engine, so matching stays linear in the text: `(a+)+$` or `.*.*.*x` would otherwise let
 * one prompt stall the bot's event loop for seconds or forever. Lookarounds and backreferences, which RE2
 * does not offer, are refused with a reason when the settings are saved.
 *
 * Text is normalised before matching (NFKC, format characters such as zero-width spaces removed, lower case),
 * so fullwidth letters, ligatures and invisible separators do not slip past a rule. Only the prompt is
 * checked: a banned word in the negative prompt keeps it out of the image.
 */

import type { Parsed } from "./aspect.ts";
import {
  type CompiledPattern,
  compilePattern,
  matchPattern,
  PatternText,
  WORD_CHARS,
} from "./banned-pattern.ts";

/** Limits on rule sets, so that checking one prompt stays a few milliseconds whatever admins configure. */
export const MODERATION_LIMITS = {
  maxWords: 500,
  maxWordChars: 100,
  maxPatterns: 50,
  maxPatternChars: 200,
  /** RE2 program instructions for all patterns of a guild together: matching costs about this per character. */
  maxProgramSize: 5000,
  /** Patterns see at most this many characters (prompts are limited to 1000 before moderation anyway). */
  maxTextChars: 2000,
} as const;

/** Compiled rules for one guild; build once per settings change with compileModerationRules. */
export interface ModerationRules {
  readonly words: readonly { readonly word: string; readonly regex: RegExp }[];
  readonly patterns: readonly CompiledPattern[];
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

const WORD_CHAR = new RegExp(`[${WORD_CHARS}]`, "u");
// Scripts written without spaces between words: a banned word there matches inside longer text.
const UNSPACED_SCRIPT =
  /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Thai}\p{Script=Lao}\p{Script=Khmer}\p{Script=Myanmar}]/u;

const escapeRegex = (text: string): string => text.replace(/[\\^$.*+?()[\]{}|/]/g, "\\$&");

function compileWord(word: string): RegExp {
  const normal = normalizeForModeration(word).trim();
  const body = normal.split(/\s+/).map(escapeRegex).join("\\s+");
  const chars = Array.from(normal);
  const bounded = !UNSPACED_SCRIPT.test(normal);
  // Lookarounds are safe here: the word is a literal, so V8 cannot backtrack into trouble.
  const before = bounded && WORD_CHAR.test(chars[0] ?? "") ? `(?<![${WORD_CHARS}])` : "";
  const after = bounded && WORD_CHAR.test(chars.at(-1) ?? "") ? `(?![${WORD_CHARS}])` : "";
  return new RegExp(`${before}${body}${after}`, "iu");
}

/** The lists compileModerationRules reads from guild settings. */
export interface ModerationLists {
  bannedWords: readonly string[];
  bannedPatterns: readonly string[];
}

// Compiled rule sets by their text, least recently used first. Settings come fresh from the store for every
// prompt, so a cache keyed by the settings object would never hit; keyed by the lists, a guild's rules
// compile once per change (the check when the admin saves them included), and identical lists share one.
const compiledRules = new Map<string, Parsed<ModerationRules>>();
const MAX_CACHED_RULE_SETS = 256;
let compilations = 0;

/** How many rule sets compileModerationRules has compiled rather than found in its cache, since start. */
export const moderationCompilations = (): number => compilations;

/**
 * Compiles a guild's banned words and patterns, or gives the reason the settings cannot be saved (a pattern
 * that does not compile, uses an unsupported feature, matches empty text, or the lists are too big). The
 * result is cached by the lists' contents, so calling this for every prompt costs one compilation per change.
 */
export function compileModerationRules(rules: ModerationLists): Parsed<ModerationRules> {
  const key = JSON.stringify([rules.bannedWords, rules.bannedPatterns]);
  let compiled = compiledRules.get(key);
  if (compiled) {
    compiledRules.delete(key); // re-inserted below as the most recently used
  } else {
    compiled = compileLists(rules);
    compilations++;
  }
  compiledRules.set(key, compiled);
  if (compiledRules.size > MAX_CACHED_RULE_SETS)
    compiledRules.delete(compiledRules.keys().next().value as string);
  return compiled;
}

function compileLists(rules: ModerationLists): Parsed<ModerationRules> {
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
  const patterns: CompiledPattern[] = [];
  let size = 0;
  for (const source of rules.bannedPatterns) {
    const compiled = compileBannedPattern(source);
    if (!compiled.ok) return compiled;
    size += compiled.value.size;
    if (size > L.maxProgramSize)
      return {
        ok: false,
        reason: `the banned patterns are too complex together (limit ${L.maxProgramSize} matcher instructions); remove some or shorten their {n,m} repeats`,
      };
    patterns.push(compiled.value);
  }
  return { ok: true, value: { words, patterns } };
}

/** The first banned word or pattern in `text`, or undefined when it is clean. */
export function findBanned(text: string, rules: ModerationRules): BannedMatch | undefined {
  const normal = normalizeForModeration(text);
  for (const { word, regex } of rules.words) if (regex.test(normal)) return { kind: "word", text: word };
  if (rules.patterns.length === 0) return undefined;
  const prepared = new PatternText(normal, MODERATION_LIMITS.maxTextChars);
  for (const pattern of rules.patterns) {
    const hit = matchPattern(pattern, prepared);
    if (hit !== undefined) return { kind: "pattern", text: hit, pattern: pattern.source };
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

/**
 * Compiles one admin pattern, or says why it cannot be used: too long, not a valid JavaScript regular
 * expression, an unsupported feature, too big, or matching empty text (which would refuse every prompt).
 */
export function compileBannedPattern(source: string): Parsed<CompiledPattern> {
  const L = MODERATION_LIMITS;
  const chars = typeof source === "string" ? Array.from(source) : [];
  const shown = `/${chars.slice(0, 40).join("")}${chars.length > 40 ? "…" : ""}/`;
  const fail = (why: string): Parsed<CompiledPattern> => ({
    ok: false,
    reason: `banned pattern ${shown} ${why}`,
  });
  if (typeof source !== "string" || source === "") return fail("is empty");
  if (chars.length > L.maxPatternChars) return fail(`is longer than ${L.maxPatternChars} characters`);
  const compiled = compilePattern(source);
  if (!compiled.ok) return fail(compiled.reason);
  if (compiled.value.size > L.maxProgramSize)
    return fail(`is too big once its repeats are expanded (limit ${L.maxProgramSize} matcher instructions)`);
  if (compiled.value.nullable)
    return fail("can match without any characters, so it would refuse nearly every prompt");
  return compiled;
}
