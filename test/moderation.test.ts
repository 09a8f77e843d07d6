import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  compileBannedPattern,
  compileModerationRules,
  findBanned,
  MODERATION_LIMITS,
  type ModerationRules,
  moderatePrompt,
  normalizeForModeration,
} from "../src/core/moderation.ts";
import { isAdmin, mayPressButtons } from "../src/core/permissions.ts";
import type { Requester } from "../src/core/request.ts";

function rules(bannedWords: string[], bannedPatterns: string[] = []): ModerationRules {
  const compiled = compileModerationRules({ bannedWords, bannedPatterns });
  if (!compiled.ok) throw new Error(compiled.reason);
  return compiled.value;
}

function patternReason(pattern: string): string {
  const compiled = compileBannedPattern(pattern);
  if (compiled.ok) throw new Error(`expected /${pattern}/ to be refused`);
  return compiled.reason;
}

/** What a single pattern matches in `text`, or undefined. */
const patternHit = (pattern: string, text: string): string | undefined =>
  findBanned(text, rules([], [pattern]))?.text;

describe("banned words", () => {
  const words = rules(["ass", "café", "bär", "猫", "bad  word", "@everyone"]);

  it("refuses a banned word naming it", () => {
    expect(moderatePrompt("kiss my ass", words)).toEqual({
      ok: false,
      reason: "your prompt contains a banned word: ‘ass’",
    });
  });

  it.each([
    ["my ASS", "ass"],
    ["Ass!", "ass"],
    ["(ass)", "ass"],
    ["Café au lait", "café"],
    ["CAFÉ", "café"],
    ["ein Bär", "bär"],
    ["黒い猫です", "猫"],
    ["a bad word", "bad  word"],
    ["a BAD\n\tWORD", "bad  word"],
    ["ｂａｄ ｗｏｒｄ", "bad  word"],
    ["a\u200bss", "ass"],
    ["hi @everyone", "@everyone"],
  ])("finds it case-insensitively and through disguises: %j", (text, word) => {
    expect(findBanned(text, words)).toEqual({ kind: "word", text: word });
  });

  it.each(["a class act", "assassin", "bass", "cafés", "Bären", "sass_", "ass1", "no@everyones"])(
    "does not match inside a longer word: %j",
    (text) => {
      expect(findBanned(text, words)).toBeUndefined();
    },
  );

  it("refuses empty, too long or too many words when the settings are saved", () => {
    for (const empty of ["  ", "\u200b", "\u00ad\u200d"])
      expect(compileModerationRules({ bannedWords: [empty], bannedPatterns: [] })).toEqual({
        ok: false,
        reason: "a banned word is empty",
      });
    const long = compileModerationRules({ bannedWords: ["x".repeat(101)], bannedPatterns: [] });
    expect(long.ok ? "" : long.reason).toContain("at most 100 characters");
    const many = compileModerationRules({
      bannedWords: Array.from({ length: 501 }, (_, i) => `w${i}`),
      bannedPatterns: [],
    });
    expect(many.ok ? "" : many.reason).toBe("at most 500 banned words (got 501)");
  });

  it("treats regex characters in words literally", () => {
    const r = rules(["a.b", "c++"]);
    expect(findBanned("axb", r)).toBeUndefined();
    expect(findBanned("say a.b now", r)?.text).toBe("a.b");
    expect(findBanned("i like c++", r)?.text).toBe("c++");
  });
});

describe("banned patterns", () => {
  it.each([
    ["n\\s*s\\s*f\\s*w", "totally n s f w", "n s f w"],
    ["lo+li", "LOOOLI", "loooli"],
    ["\\bgore\\b", "gory gore", "gore"],
    ["[0-9]{3}-[0-9]{4}", "call 555-1234", "555-1234"],
    ["(?:red|blue) (?:car|boat)", "a blue boat", "blue boat"],
    ["^draw", "Draw a cat", "draw"],
    ["cat$", "a black cat", "cat"],
    ["\\p{Lu}{3}", "abc", "abc"],
    ["[A-Z]+x", "abcx", "abcx"],
    ["a.b", "a\nb", "a\nb"],
    ["\\x41\\u0042\\u{43}", "abc", "abc"],
    ["(?<name>ab)+c", "ababc", "ababc"],
    ["[\\d.]+ ?kg", "12.5 kg", "12.5 kg"],
    ["a\\cJb", "a\nb", "a\nb"],
    // RE2 (re2js) knows ASCII only for these; easel keeps Unicode meanings, as ban lists are not all English.
    ["\\bcafé\\b", "Café au lait", "café"],
    ["\\bкот\\b", "чёрный КОТ", "кот"],
    ["\\w+ы", "ты", "ты"],
    ["\\d+", "room ٣٣", "٣٣"],
    ["a\\sb", "a\u2028b", "a\u2028b"],
    ["\\p{Script=Greek}+", "a Ωμέγα", "ωμέγα"],
    // JavaScript's own spellings, which RE2 writes differently or reads another way.
    ["\\u{1F600}|\\uD83D\\uDE03", "hi 😃", "😃"],
    ["x[^]y", "x\ny", "x\ny"],
    ["[[:]+x", "a [:x", "[:x"],
    ["[\\W\\d]x", "3x", "3x"],
    ["(?:a|ab)(?:c|bcd)", "abcd", "abcd"],
  ])("/%s/ finds %j", (pattern, text, hit) => {
    expect(patternHit(pattern, text)).toBe(hit);
  });

  it.each([
    ["^draw", "I draw"],
    ["\\bgore\\b", "gory"],
    ["cat$", "cat food"],
    ["[^a-z]x", "ax"],
    ["\\bкот\\b", "котик"],
    ["x[]", "x"],
    // A marker character typed into the prompt must not pose as the start of the text.
    ["^[^a]", "a\ufdd1\ufdd1"],
  ])("/%s/ does not match %j", (pattern, text) => {
    expect(patternHit(pattern, text)).toBeUndefined();
  });

  it("names the matched text in the refusal, not the pattern", () => {
    expect(moderatePrompt("a looooli", rules([], ["lo+li"]))).toEqual({
      ok: false,
      reason: "your prompt contains banned text: ‘looooli’ (it matches a pattern this server bans)",
    });
  });

  it.each([
    ["(unclosed", "is not a valid regular expression: Invalid regular expression"],
    ["a{2,1}", "is not a valid regular expression"],
    ["x".repeat(201), "is longer than 200 characters"],
    ["", "is empty"],
    ["(?=a)b", "lookarounds are not supported in banned patterns: (?=…) is a lookahead"],
    ["(?<!a)b", "lookarounds are not supported in banned patterns: (?<!…) is a negative lookbehind"],
    ["(a)\\1", "backreferences (\\1) are not supported"],
    ["(?<n>a)\\k<n>", "backreferences (\\k<name>) are not supported"],
    ["a*", "can match without any characters"],
    ["^", "can match without any characters"],
    ["x|", "can match without any characters"],
    ["\\b", "can match without any characters"],
    ["a{1000}b{1000}c{1000}d{1000}e{1000}f{1000}", "is too big once its repeats are expanded"],
    ["a{1001}", "a repeat is over 1000"],
    ["(?:a{100}){20}", "a repeat is over 1000 (nested repeats count multiplied)"],
    [
      "\\p{Letter}",
      "\\p{Letter} is not supported in banned patterns: name a general category by its short name",
    ],
    ["[^\\Wx]", "\\W and \\S cannot be used inside [^…]"],
  ])("refuses /%s/ when the settings are saved, with a reason", (pattern, expected) => {
    expect(patternReason(pattern)).toContain(expected);
  });

  it("limits the number of patterns and their total size", () => {
    const many = compileModerationRules({
      bannedWords: [],
      bannedPatterns: Array.from({ length: 51 }, () => "x"),
    });
    expect(many.ok ? "" : many.reason).toBe("at most 50 banned patterns (got 51)");
    const big = compileModerationRules({
      bannedWords: [],
      bannedPatterns: Array.from({ length: 10 }, () => "a{600}"),
    });
    expect(big.ok ? "" : big.reason).toContain(
      `too complex together (limit ${MODERATION_LIMITS.maxProgramSize} matcher instructions)`,
    );
  });

  // A backtracking engine needs years for some of these; RE2 guarantees time linear in the text, so these
  // only pin the answers (bench/moderation.ts measures the time).
  it.each([
    ["(a+)+$", `${"a".repeat(1000)}!`, undefined],
    ["(a+)+$", `${"a".repeat(5000)}!`, undefined],
    ["(a+)+$", "a".repeat(2000), "a".repeat(2000)],
    ["(a|aa)*b", "a".repeat(2000), undefined],
    ["(x+x+)+y", "x".repeat(2000), undefined],
    ["(x+x+)+y", `${"x".repeat(1999)}y`, `${"x".repeat(1999)}y`],
    [".*.*.*.*.*z", "y".repeat(2000), undefined],
    ["(\\w+\\s?)+$", `${"word ".repeat(400)}!`, undefined],
    ["\\b(\\w+\\s?)+\\b!", `${"word ".repeat(399)}word!`, `${"word ".repeat(399)}word!`],
    ["a{0,30}a{0,30}a{0,30}b", "a".repeat(2000), undefined],
  ])("answers the catastrophic pattern /%s/ on hostile text", (pattern, text, hit) => {
    expect(patternHit(pattern, text)).toBe(hit);
  });

  it("only runs patterns on the first 2000 characters, where $ is not the end", () => {
    const max = MODERATION_LIMITS.maxTextChars;
    expect(patternHit("zz", `${"a".repeat(max)}zz`)).toBeUndefined();
    expect(patternHit("zz", `${"a".repeat(max - 2)}zz`)).toBe("zz");
    expect(patternHit("a$", "a".repeat(max + 1))).toBeUndefined();
    expect(patternHit("a$", "a".repeat(max))).toBe("a");
    // The cut is a word boundary only where the text really has one.
    expect(patternHit("a\\b", "a".repeat(max + 1))).toBeUndefined();
    expect(patternHit("a\\b", `${"a".repeat(max)} `)).toBe("a");
  });

  it("agrees with JavaScript's RegExp on the syntax both support", () => {
    const atom = fc.constantFrom("a", "b", "B", ".", "[ab]", "[^a]", "[A-B]", "\\s", "\\w", "\\W", " ");
    const pattern: fc.Arbitrary<string> = fc.letrec<{ re: string; piece: string }>((tie) => ({
      piece: fc.oneof(
        { depthSize: "small", withCrossShrink: true },
        atom,
        fc
          .tuple(tie("re"), fc.constantFrom("", "*", "+", "?", "{1,2}", "{2}"))
          .map(([r, q]) => `(?:${r})${q}`),
        fc.tuple(atom, fc.constantFrom("*", "+", "?", "{0,3}")).map(([a, q]) => `${a}${q}`),
        fc.constantFrom("^", "$", "\\b"),
      ),
      re: fc
        .array(
          fc.array(tie("piece"), { minLength: 1, maxLength: 4 }).map((p) => p.join("")),
          { minLength: 1, maxLength: 3 },
        )
        .map((alts) => alts.join("|")),
    })).re;
    const text = fc.string({ unit: fc.constantFrom("a", "b", "A", "B", " ", "\n"), maxLength: 12 });
    let compared = 0;
    fc.assert(
      fc.property(pattern, text, (p, t) => {
        const compiled = compileModerationRules({ bannedWords: [], bannedPatterns: [p] });
        if (!compiled.ok) {
          if (compiled.reason.includes("longer than")) return;
          expect(compiled.reason).toContain("can match without any characters");
          return;
        }
        compared++;
        // easel's matcher is case-insensitive and lets . match newlines.
        const native = new RegExp(p, "isu").test(t);
        expect(findBanned(t, compiled.value) !== undefined).toBe(native);
      }),
      { numRuns: 3000 },
    );
    expect(compared).toBeGreaterThan(1000);
  });

  it("agrees with RegExp on Unicode text, where \\w \\d \\b know Unicode", () => {
    // RegExp's \w \d \b are ASCII only, so the oracle spells easel's out over the letters the texts use
    // (\p{…} classes would do too, but V8 takes milliseconds to compile each, and it compiles every pattern).
    const W = "[aéк1٣_]";
    const notW = "[^aéк1٣_]";
    // [easel's syntax, the same pattern for RegExp]
    const atom = fc.constantFrom(
      ...(["a", "é", "к", "1", "٣", " ", ".", "[aé]", "[^к1]", "\\s", "\\S"].map((a) => [a, a]) as [
        string,
        string,
      ][]),
      ["\\w", W],
      ["\\W", notW],
      ["\\d", "[1٣]"],
      ["\\D", "[^1٣]"],
      ["\\p{L}", "[aéк]"],
      ["\\P{L}", "[^aéк]"],
      ["[\\w-]", "[aéк1٣_-]"],
      ["[\\s\\d]", "[\\s1٣]"],
    );
    const assertion = fc.constantFrom<[string, string]>(
      ["^", "^"],
      ["$", "$"],
      ["\\b", `(?:(?<=${W})(?!${W})|(?<!${W})(?=${W}))`],
      ["\\B", `(?:(?<=${W})(?=${W})|(?<!${W})(?!${W}))`],
    );
    const join = (parts: [string, string][], by = ""): [string, string] => [
      parts.map((p) => p[0]).join(by),
      parts.map((p) => p[1]).join(by),
    ];
    const pattern: fc.Arbitrary<[string, string]> = fc.letrec<{
      re: [string, string];
      piece: [string, string];
    }>((tie) => ({
      piece: fc.oneof(
        { depthSize: "small", withCrossShrink: true },
        atom,
        fc
          .tuple(tie("re"), fc.constantFrom("", "*", "+", "?", "{1,2}"))
          .map(([[e, j], q]): [string, string] => [`(?:${e})${q}`, `(?:${j})${q}`]),
        fc.tuple(atom, fc.constantFrom("*", "+", "?")).map(([[e, j], q]): [string, string] => [e + q, j + q]),
        assertion,
      ),
      re: fc
        .array(
          fc.array(tie("piece"), { minLength: 1, maxLength: 4 }).map((p) => join(p)),
          { minLength: 1, maxLength: 3 },
        )
        .map((alts) => join(alts, "|")),
    })).re;
    const text = fc.string({
      unit: fc.constantFrom("a", "A", "é", "É", "к", "К", "1", "٣", "_", "-", " ", "\n", "\u2028"),
      maxLength: 12,
    });
    let compared = 0;
    fc.assert(
      fc.property(pattern, text, ([p, oracle], t) => {
        const compiled = compileModerationRules({ bannedWords: [], bannedPatterns: [p] });
        if (!compiled.ok) {
          if (compiled.reason.includes("longer than")) return;
          expect(compiled.reason).toContain("can match without any characters");
          return;
        }
        compared++;
        const native = new RegExp(oracle, "isu").test(normalizeForModeration(t));
        expect(findBanned(t, compiled.value) !== undefined).toBe(native);
      }),
      { numRuns: 2000 },
    );
    expect(compared).toBeGreaterThan(600);
  });

  it("never throws while compiling or matching, whatever the pattern and text", () => {
    const patternText = fc.oneof(
      fc.string({ unit: "binary", maxLength: 30 }),
      fc
        .array(
          fc.constantFrom(
            "(",
            ")",
            "[",
            "]",
            "{",
            "}",
            "\\",
            "a",
            "|",
            "*",
            "+",
            "?",
            "^",
            "$",
            "-",
            "p",
            "u",
            "x",
            "1",
            ",",
            "<",
            ">",
            "=",
          ),
          {
            maxLength: 20,
          },
        )
        .map((c) => c.join("")),
    );
    fc.assert(
      fc.property(patternText, fc.string({ unit: "binary", maxLength: 60 }), (p, t) => {
        const compiled = compileModerationRules({
          bannedWords: [p.slice(0, 10) || "w"],
          bannedPatterns: [p],
        });
        if (compiled.ok) {
          const verdict = moderatePrompt(t, compiled.value);
          expect(verdict.ok || verdict.reason.startsWith("your prompt contains")).toBe(true);
        } else {
          expect(compiled.reason.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: 3000 },
    );
  });
});

describe("permissions", () => {
  const member: Requester = { platform: "discord", workspaceId: "g", channelId: "c", userId: "111" };
  const none = { adminIds: [], platformAdmin: false, adminRoleIds: [], memberRoleIds: [] };

  it("makes a configured user id an admin, also written with its platform", () => {
    expect(isAdmin(member, { ...none, adminIds: ["111"] })).toBe(true);
    expect(isAdmin(member, { ...none, adminIds: [" discord:111 "] })).toBe(true);
    expect(isAdmin(member, { ...none, adminIds: ["slack:111"] })).toBe(false);
  });

  it("makes a member with a configured role an admin", () => {
    expect(isAdmin(member, { ...none, adminRoleIds: ["r1"], memberRoleIds: ["r0", "r1"] })).toBe(true);
    expect(isAdmin(member, { ...none, adminRoleIds: ["r1"], memberRoleIds: ["r2"] })).toBe(false);
  });

  it("makes a platform admin an admin", () => {
    expect(isAdmin(member, { ...none, platformAdmin: true })).toBe(true);
  });

  it("refuses everyone else, and never matches empty ids", () => {
    expect(isAdmin(member, none)).toBe(false);
    expect(isAdmin({ ...member, userId: "" }, { ...none, adminIds: [""] })).toBe(false);
    expect(isAdmin(member, { ...none, adminRoleIds: [""], memberRoleIds: [""] })).toBe(false);
  });

  it("lets others press a result's buttons only when the channel or guild allows", () => {
    const other = { ...member, userId: "222" };
    const closed = { guild: { othersMayPressButtons: false }, presserIsAdmin: false };
    expect(mayPressButtons(member, member, closed)).toBe(true);
    expect(mayPressButtons(other, member, closed)).toBe(false);
    expect(mayPressButtons(other, member, { ...closed, presserIsAdmin: true })).toBe(true);
    expect(mayPressButtons(other, member, { ...closed, channel: { othersMayPressButtons: true } })).toBe(
      true,
    );
    expect(
      mayPressButtons(other, member, {
        guild: { othersMayPressButtons: true },
        channel: { othersMayPressButtons: false },
        presserIsAdmin: false,
      }),
    ).toBe(false);
  });
});
