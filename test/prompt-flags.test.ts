import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createScheduler } from "../src/backends/ldm/schedulers/index.ts";
import {
  BACKEND_NAMES,
  FLAG_NAMES,
  firstFlagWord,
  parsePromptFlags,
  parseSampler,
  renderCanonicalPrompt,
  SAMPLER_NAMES,
} from "../src/core/prompt-flags.ts";
import type { GenerationRequest } from "../src/core/request.ts";

/** The reason parsing `text` fails with (fails the test when it parses). */
function reasonOf(text: string): string {
  const parsed = parsePromptFlags(text);
  if (parsed.ok) throw new Error(`expected "${text}" to be refused, got ${JSON.stringify(parsed.value)}`);
  return parsed.reason;
}

function flagsOf(text: string) {
  const parsed = parsePromptFlags(text);
  if (!parsed.ok) throw new Error(parsed.reason);
  return parsed.value;
}

describe("parsePromptFlags", () => {
  it("splits the Midjourney example into prompt and flags", () => {
    expect(flagsOf("a lighthouse in a storm --ar 3:2 --seed 42")).toEqual({
      prompt: "a lighthouse in a storm",
      flags: { aspect: "3:2", seed: 42 },
    });
  });

  it("reads every flag", () => {
    const parsed = flagsOf(
      "a cat --ar 16:9 --seed 7 --no text, watermark --steps 30 --cfg 7.5 --sampler euler_a --model sd-1.5 --backend ldm --n 2 --strength 0.6",
    );
    expect(parsed).toEqual({
      prompt: "a cat",
      flags: {
        aspect: "16:9",
        seed: 7,
        negativePrompt: "text, watermark",
        steps: 30,
        guidance: 7.5,
        sampler: "euler_ancestral",
        model: "sd-1.5",
        backend: "ldm",
        count: 2,
        strength: 0.6,
      },
    });
    expect(flagsOf("a cat --size 768x512").flags.size).toEqual({ width: 768, height: 512 });
  });

  it("accepts the em dash and en dash that phones and Discord turn -- into", () => {
    expect(flagsOf("a cat —ar 16:9 –seed 3").flags).toEqual({ aspect: "16:9", seed: 3 });
  });

  it("reads flag names case-insensitively and --aspect as --ar", () => {
    expect(flagsOf("a cat --AR 2:3 --Seed 1").flags).toEqual({ aspect: "2:3", seed: 1 });
    expect(flagsOf("a cat --aspect 2:3").flags).toEqual({ aspect: "2:3" });
  });

  it("keeps the whole negative prompt up to the next flag, across lines", () => {
    expect(flagsOf("a cat --no text,\n  blurry  hands --seed 1").flags).toEqual({
      negativePrompt: "text,\n  blurry  hands",
      seed: 1,
    });
  });

  it.each([
    ["euler_a", "euler_ancestral"],
    ["Euler a", "euler_ancestral"],
    ["DPM++ 2M Karras", "dpmpp_2m_karras"],
    ["dpm++ 2m", "dpmpp_2m"],
    ["plms", "pndm"],
    ["EULER_TRAILING", "euler_trailing"],
    ["ddim", "ddim"],
  ])("resolves the sampler %j to %s", (text, name) => {
    expect(parseSampler(text)).toEqual({ ok: true, value: name });
    expect(flagsOf(`x --sampler ${text}`).flags.sampler).toBe(name);
  });

  it("accepts every scheduler the LDM backend can create", () => {
    for (const name of SAMPLER_NAMES) {
      expect(parseSampler(name)).toEqual({ ok: true, value: name });
      expect(createScheduler(name, {}).name).toBe(name);
    }
  });

  it("lists the backends", () => {
    expect(BACKEND_NAMES).toEqual(["ldm", "openai"]);
  });

  it.each([
    ["x --steps abc", '--steps must be a whole number from 1 to 150 (got "abc")'],
    ["x --steps 1000000", '--steps must be a whole number from 1 to 150 (got "1000000")'],
    ["x --steps 0", "from 1 to 150"],
    ["x --steps 20.5", "from 1 to 150"],
    ["x --seed -1", '--seed must be a whole number from 0 to 4294967295 (got "-1")'],
    ["x --seed NaN", "--seed must be a whole number from 0 to 4294967295"],
    ["x --seed 4294967296", "from 0 to 4294967295"],
    ["x --seed 18446744073709551616", "from 0 to 4294967295"],
    ["x --seed 1e3", "from 0 to 4294967295"],
    ["x --seed 0x10", "from 0 to 4294967295"],
    ["x --seed +5", "from 0 to 4294967295"],
    ["x --seed Infinity", "from 0 to 4294967295"],
    ["x --cfg NaN", '--cfg must be a number from 0 to 30 (got "NaN")'],
    ["x --cfg -1", "--cfg must be a number from 0 to 30"],
    ["x --cfg 31", "--cfg must be a number from 0 to 30"],
    ["x --cfg 1e1", "--cfg must be a number from 0 to 30"],
    ["x --cfg 7,5", "--cfg must be a number from 0 to 30"],
    ["x --n 1000", '--n must be a whole number from 1 to 4 (got "1000")'],
    ["x --n 0", "--n must be a whole number from 1 to 4"],
    ["x --strength 0", "--strength must be a number from 0.01 to 1"],
    ["x --strength 1.5", "--strength must be a number from 0.01 to 1"],
    ["x --size 99999x512", "--size must be a size like 768x512, each side a whole number from 64 to 2048"],
    ["x --size 32x32", "each side a whole number from 64 to 2048"],
    ["x --size big", "--size must be a size like 768x512"],
    ["x --ar 5:1", "--ar must be an aspect ratio like 16:9"],
    ["x --ar wide", "at most 4:1 either way"],
    [
      "x --sampler foo",
      "--sampler must be one of ddim, pndm, euler, euler_ancestral, dpmpp_2m, dpmpp_2m_karras, lcm, euler_trailing",
    ],
    ["x --backend comfy", '--backend must be ldm or openai (got "comfy")'],
    ["x --model ../../etc/passwd", "--model must be a model name"],
    ["x --model /abs/path", "--model must be a model name"],
    ["x --model a\u0000b", "--model must be a model name"],
    ["x --model sd..15", "--model must be a model name"],
  ])("refuses %j naming the flag and its valid values", (text, expected) => {
    expect(reasonOf(text)).toContain(expected);
  });

  it("refuses an unknown flag and lists the known ones", () => {
    const reason = reasonOf("a cat --foo 1");
    expect(reason).toContain('unknown flag "--foo"');
    expect(reason).toContain(`flags: ${FLAG_NAMES.map((f) => `--${f}`).join(", ")}`);
  });

  it("suggests the flag a typo was close to, and a space for --ar=16:9", () => {
    expect(reasonOf("a cat --step 30")).toContain("did you mean --steps?");
    expect(reasonOf("a cat --ar=16:9")).toContain("put a space between --ar and its value");
  });

  it("refuses a flag given twice, naming it, also through an alias", () => {
    expect(reasonOf("a cat --seed 1 --seed 2")).toBe("--seed is given twice; give it once");
    expect(reasonOf("a cat --ar 1:1 --aspect 2:3")).toContain("--ar is given twice");
  });

  it("refuses --ar and --size together", () => {
    expect(reasonOf("a cat --ar 16:9 --size 768x512")).toContain("give --ar or --size, not both");
  });

  it("refuses a flag without a value, saying what it takes", () => {
    expect(reasonOf("a cat --seed")).toBe("--seed needs a value: a whole number from 0 to 4294967295");
    expect(reasonOf("a cat --no --seed 1")).toContain("--no needs a value");
  });

  it("says flags go at the end when prompt text follows a flag", () => {
    expect(reasonOf("a cat --ar 16:9 in space")).toContain("flags go at the end of the prompt");
  });

  it("checks against lower limits when the caller gives them", () => {
    const parsed = parsePromptFlags("x --steps 60", { maxSteps: 50 });
    expect(parsed).toEqual({ ok: false, reason: '--steps must be a whole number from 1 to 50 (got "60")' });
  });

  it("keeps two decimals of cfg and strength", () => {
    expect(flagsOf("x --cfg 7.555 --strength .333").flags).toEqual({ guidance: 7.56, strength: 0.33 });
  });

  describe("a literal -- in a prompt", () => {
    it.each([
      "rock--paper scissors",
      "a -- b",
      "count down --5 4 3",
      "see https://example.com/--x",
      "a lighthouse — storm",
      "a cat—dog hybrid",
      "---ar 16:9",
      "-- ar",
    ])("stays prompt text when it is not a flag: %j", (text) => {
      expect(flagsOf(text)).toEqual({ prompt: text, flags: {} });
    });

    it("is refused when it reads as an unknown flag, so nothing is silently sent to the model", () => {
      expect(reasonOf("a man —tall and thin")).toContain('unknown flag "—tall"');
      expect(reasonOf("a --weird style")).toContain("a word starting with -- or — is read as a flag");
    });
  });

  it("finds the first flag-shaped word", () => {
    expect(firstFlagWord("a b --seed 1")).toBe("--seed");
    expect(firstFlagWord("—ar 1:1")).toBe("—ar");
    expect(firstFlagWord("rock--paper -- 5")).toBeUndefined();
  });

  it("never throws, and answers ok or a non-empty reason, for any string", () => {
    const pieces = fc.oneof(
      fc.string({ unit: "binary", maxLength: 40 }),
      fc.string({ unit: "grapheme", maxLength: 20 }),
      fc.constantFrom(
        ...FLAG_NAMES.map((f) => ` --${f} `),
        " —ar ",
        " –seed ",
        "--",
        "—",
        " ",
        "\n",
        "16:9",
        "1e9",
        "NaN",
        "-1",
      ),
    );
    fc.assert(
      fc.property(
        fc.array(pieces, { maxLength: 12 }).map((p) => p.join("")),
        (text) => {
          const parsed = parsePromptFlags(text);
          if (parsed.ok) {
            expect(typeof parsed.value.prompt).toBe("string");
            // What parsed as the prompt never contains a flag, so rendering it again stays a round trip.
            expect(firstFlagWord(parsed.value.prompt)).toBeUndefined();
          } else {
            expect(parsed.reason.length).toBeGreaterThan(0);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it.each([
    [
      "random text",
      () => Array.from({ length: 100_000 }, (_, i) => String.fromCharCode(32 + ((i * 7919) % 95))).join(""),
    ],
    ["a prompt then flags", () => `${"a lighthouse ".repeat(8000)} --ar 16:9 --seed 1`],
    ["dash words", () => "—a ".repeat(34_000)],
    ["dashes", () => "-".repeat(100_000)],
    ["a huge negative", () => `cat --no ${"x ".repeat(50_000)}`],
    ["unicode", () => "🦊é\u0301\u200b\u2028".repeat(20_000)],
  ])("handles 100 kB of %s without throwing", (_name, make) => {
    // How fast is a speed figure: npm run bench (prompt_flags_100kb_ms) times these same inputs.
    const text = make();
    expect(text.length).toBeGreaterThanOrEqual(100_000);
    const parsed = parsePromptFlags(text);
    expect(parsed.ok ? typeof parsed.value.prompt : parsed.reason).toBeTypeOf("string");
  });
});

/** Everything before the first flag-shaped word, trimmed: a prompt as parsing would leave it. */
const promptPart = (text: string): string => text.split(/(?:^|(?<=\s))(?:--|[—–])[A-Za-z]/)[0]?.trim() ?? "";

const promptText = fc
  .array(
    fc.oneof(
      { weight: 4, arbitrary: fc.string({ unit: "grapheme", maxLength: 12 }) },
      { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 8 }) },
      {
        weight: 2,
        arbitrary: fc.constantFrom("--", "—", "–", " -- ", "a--b", "--5", " ", "\n", "\u00a0", "-", "—ar"),
      },
    ),
    { maxLength: 10 },
  )
  .map((parts) => promptPart(parts.join("")));

const validRequest: fc.Arbitrary<GenerationRequest> = fc
  .record({
    prompt: promptText,
    negativePrompt: fc.oneof(fc.constant(""), promptText),
    seed: fc.integer({ min: 0, max: 4_294_967_295 }),
    steps: fc.integer({ min: 1, max: 150 }),
    guidance: fc.integer({ min: 0, max: 3000 }).map((g) => g / 100),
    sampler: fc.constantFrom(...SAMPLER_NAMES),
    width: fc.integer({ min: 8, max: 256 }).map((v) => v * 8),
    height: fc.integer({ min: 8, max: 256 }).map((v) => v * 8),
    count: fc.integer({ min: 1, max: 4 }),
    backend: fc.constantFrom(...BACKEND_NAMES),
    model: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,30}$/).filter((m) => !m.includes("..")),
    init: fc.option(
      fc.record({
        imageId: fc.stringMatching(/^[0-9a-f]{64}$/),
        strength: fc.integer({ min: 1, max: 100 }).map((s) => s / 100),
      }),
      { nil: undefined },
    ),
    requester: fc.constant({ platform: "discord" as const, workspaceId: "g", channelId: "c", userId: "u" }),
  })
  .map(({ init, ...rest }) => (init ? { ...rest, init } : rest));

describe("renderCanonicalPrompt", () => {
  const request: GenerationRequest = {
    prompt: "a lighthouse in a storm",
    negativePrompt: "text, watermark",
    seed: 42,
    steps: 30,
    guidance: 7.5,
    sampler: "euler_ancestral",
    width: 768,
    height: 512,
    count: 2,
    backend: "ldm",
    model: "sd15",
    init: { imageId: "abc", strength: 0.6 },
    requester: { platform: "slack", workspaceId: "T1", channelId: "C1", userId: "U1" },
  };

  it("prints the prompt, then every setting in a fixed order", () => {
    expect(renderCanonicalPrompt(request)).toBe(
      "a lighthouse in a storm --seed 42 --steps 30 --cfg 7.5 --sampler euler_ancestral --size 768x512 --model sd15 --backend ldm --n 2 --no text, watermark --strength 0.6",
    );
  });

  it("leaves out --n 1, an empty --no and --strength without a start image", () => {
    const { init: _init, ...plain } = request;
    expect(renderCanonicalPrompt({ ...plain, count: 1, negativePrompt: "" })).toBe(
      "a lighthouse in a storm --seed 42 --steps 30 --cfg 7.5 --sampler euler_ancestral --size 768x512 --model sd15 --backend ldm",
    );
  });

  it("parses back to the same fields for any valid request", () => {
    fc.assert(
      fc.property(validRequest, (r) => {
        const parsed = parsePromptFlags(renderCanonicalPrompt(r));
        if (!parsed.ok) throw new Error(parsed.reason);
        const { prompt, flags } = parsed.value;
        expect(prompt).toBe(r.prompt);
        expect(flags.seed).toBe(r.seed);
        expect(flags.steps).toBe(r.steps);
        expect(flags.guidance).toBe(r.guidance);
        expect(flags.sampler).toBe(r.sampler);
        expect(flags.size).toEqual({ width: r.width, height: r.height });
        expect(flags.model).toBe(r.model);
        expect(flags.backend).toBe(r.backend);
        expect(flags.count ?? 1).toBe(r.count);
        expect(flags.negativePrompt ?? "").toBe(r.negativePrompt);
        expect(flags.strength).toBe(r.init?.strength);
        expect(flags.aspect).toBeUndefined();
      }),
      { numRuns: 1000 },
    );
  });
});
