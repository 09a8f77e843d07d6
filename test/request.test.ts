import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { renderCanonicalPrompt } from "../src/core/prompt-flags.ts";
import {
  type BuildResult,
  buildRequest,
  type GenerationRequest,
  type RequestContext,
  type Requester,
  type RequestInput,
  type RequestOptions,
  randomSeed,
} from "../src/core/request.ts";
import {
  type ChannelSettings,
  checkChannelSettings,
  checkGuildSettings,
  DEFAULT_CHANNEL_SETTINGS,
  DEFAULT_GUILD_SETTINGS,
  DEFAULT_LIMITS,
  DEFAULT_REQUEST_DEFAULTS,
  effectiveLimits,
  type GuildSettings,
} from "../src/core/settings.ts";

const requester: Requester = { platform: "discord", workspaceId: "g1", channelId: "c1", userId: "u1" };

const context = (extra: Partial<RequestContext> = {}): RequestContext => ({
  catalog: { ldm: ["sd15", "sd2", "sd-turbo"], openai: ["gpt-image-1"] },
  random: () => 0.25,
  ...extra,
});

const guild = (extra: Partial<GuildSettings> = {}): GuildSettings => ({
  ...DEFAULT_GUILD_SETTINGS,
  ...extra,
});
const channel = (extra: Partial<ChannelSettings> = {}): ChannelSettings => ({
  ...DEFAULT_CHANNEL_SETTINGS,
  ...extra,
});

function build(
  prompt: string,
  extra: Partial<RequestContext> = {},
  input: Partial<RequestInput> = {},
): BuildResult {
  return buildRequest({ prompt, requester, ...input }, context(extra));
}

function built(prompt: string, extra: Partial<RequestContext> = {}, input: Partial<RequestInput> = {}) {
  const result = build(prompt, extra, input);
  if (!result.ok) throw new Error(result.reason);
  return result;
}

function refusal(prompt: string, extra: Partial<RequestContext> = {}, input: Partial<RequestInput> = {}) {
  const result = build(prompt, extra, input);
  if (result.ok) throw new Error(`expected a refusal, got ${JSON.stringify(result.value)}`);
  return result;
}

describe("buildRequest", () => {
  it("fills every field from the configuration defaults", () => {
    const { value, notes } = built("a lighthouse in a storm");
    expect(value).toEqual({
      prompt: "a lighthouse in a storm",
      negativePrompt: "",
      seed: 1_073_741_824,
      steps: DEFAULT_REQUEST_DEFAULTS.steps,
      guidance: DEFAULT_REQUEST_DEFAULTS.guidance,
      sampler: DEFAULT_REQUEST_DEFAULTS.sampler,
      width: 512,
      height: 512,
      count: 1,
      backend: "ldm",
      model: "sd15",
      requester,
      nsfwAllowed: false,
    } satisfies GenerationRequest);
    expect(notes).toEqual([]);
  });

  it("is a Parsed<GenerationRequest>", () => {
    const result: { ok: true; value: GenerationRequest } | { ok: false; reason: string } = build("a cat");
    expect(result.ok).toBe(true);
  });

  describe("precedence: options > flags > channel > guild > model defaults > configuration", () => {
    const layers = {
      defaults: { ...DEFAULT_REQUEST_DEFAULTS, steps: 10 },
      modelDefaults: () => ({ steps: 11 }),
      guild: guild({ defaults: { steps: 12 } }),
      channel: channel({ defaults: { steps: 13 } }),
    };

    it.each([
      ["an option", { options: { steps: 15 } }, "a cat --steps 14", layers, 15],
      ["a flag", {}, "a cat --steps 14", layers, 14],
      ["the channel", {}, "a cat", layers, 13],
      ["the guild", {}, "a cat", { ...layers, channel: undefined }, 12],
      ["the model", {}, "a cat", { ...layers, channel: undefined, guild: undefined }, 11],
      ["the configuration", {}, "a cat", { defaults: layers.defaults }, 10],
    ])("takes steps from %s", (_name, input, prompt, extra, steps) => {
      const clean = Object.fromEntries(Object.entries(extra).filter(([, v]) => v !== undefined));
      expect(built(prompt, clean, input).value.steps).toBe(steps);
    });

    it("notes when an option replaced a flag", () => {
      const { value, notes } = built("a cat --seed 1", {}, { options: { seed: 2 } });
      expect(value.seed).toBe(2);
      expect(notes).toEqual(["the seed option (2) was used instead of --seed in the prompt"]);
    });

    it("lets an option's size replace the prompt's --ar", () => {
      const { value, notes } = built("a cat --ar 16:9", {}, { options: { size: "640x448" } });
      expect([value.width, value.height, value.aspect]).toEqual([640, 448, undefined]);
      expect(notes[0]).toContain("--ar in the prompt was replaced by the size option");
    });

    it("reads numbers given as text by a form", () => {
      expect(built("a cat", {}, { options: { steps: "20", guidance: "6.5" } }).value).toMatchObject({
        steps: 20,
        guidance: 6.5,
      });
    });
  });

  describe("the bad inputs of RELIABILITY row 10, refused with the valid range", () => {
    it("refuses a 100 kB prompt naming the 1000-character limit", () => {
      const result = refusal("x".repeat(100_000));
      expect(result.reason).toBe(
        "the prompt is 100000 characters long; the limit is 1000 (flags not counted)",
      );
      expect(result.code).toBe("invalid_argument");
    });

    it("counts characters, not UTF-16 units, and not the flags", () => {
      expect(build(`${"🦊".repeat(1000)} --seed 1`).ok).toBe(true);
      expect(refusal("🦊".repeat(1001)).reason).toContain("1001 characters");
    });

    it.each([
      ["steps 10^6", "a cat --steps 1000000", {}, "--steps must be a whole number from 1 to 150"],
      [
        "steps 10^6 as an option",
        "a cat",
        { steps: 1_000_000 },
        "the steps option must be a whole number from 1 to 150 (got 1000000)",
      ],
      ["width 99999", "a cat --size 99999x512", {}, "each side a whole number from 64 to 2048"],
      [
        "width 99999 as an option",
        "a cat",
        { size: { width: 99999, height: 512 } },
        "the size option must be a size like 768x512, each side a whole number from 64 to 2048 (got 99999x512)",
      ],
      ["seed -1", "a cat --seed -1", {}, '--seed must be a whole number from 0 to 4294967295 (got "-1")'],
      [
        "seed -1 as an option",
        "a cat",
        { seed: -1 },
        "the seed option must be a whole number from 0 to 4294967295 (got -1)",
      ],
      [
        "seed NaN",
        "a cat",
        { seed: Number.NaN },
        "the seed option must be a whole number from 0 to 4294967295 (got NaN)",
      ],
      [
        "seed 2^64",
        "a cat --seed 18446744073709551616",
        {},
        "--seed must be a whole number from 0 to 4294967295",
      ],
      ["seed 2^64 as an option", "a cat", { seed: 2 ** 64 }, "from 0 to 4294967295"],
      ["seed 1.5", "a cat", { seed: 1.5 }, "from 0 to 4294967295"],
      ["cfg NaN", "a cat --cfg NaN", {}, '--cfg must be a number from 0 to 30 (got "NaN")'],
      [
        "cfg NaN as an option",
        "a cat",
        { guidance: Number.NaN },
        "the cfg option must be a number from 0 to 30 (got NaN)",
      ],
      ["cfg Infinity", "a cat", { guidance: Number.POSITIVE_INFINITY }, "from 0 to 30 (got Infinity)"],
      ["n 1000", "a cat --n 1000", {}, "--n must be a whole number from 1 to 4"],
      [
        "n 1000 as an option",
        "a cat",
        { count: 1000 },
        "the n option must be a whole number from 1 to 4 (got 1000)",
      ],
      ["a sampler path", "a cat", { sampler: "../euler" }, "the sampler option must be one of ddim"],
      ["a model with a NUL", "a cat", { model: "sd15\u0000" }, "the model option must be a model name"],
    ] satisfies [string, string, RequestOptions, string][])("%s", (_name, prompt, options, expected) => {
      const result = refusal(prompt, {}, { options });
      expect(result.reason).toContain(expected);
      expect(result.code).toBe("invalid_argument");
    });
  });

  describe("limits", () => {
    it("refuses steps above a lower configured limit, naming it", () => {
      expect(refusal("a cat --steps 60", { limits: { maxSteps: 50 } }).reason).toBe(
        '--steps must be a whole number from 1 to 50 (got "60")',
      );
    });

    it("never lets configuration raise a limit above the hard one", () => {
      expect(refusal("a cat --steps 151", { limits: { maxSteps: 10_000 } }).reason).toContain(
        "from 1 to 150",
      );
      expect(effectiveLimits({ maxSteps: 10_000, maxPixels: 1e12, maxCount: 99 })).toMatchObject({
        maxSteps: 150,
        maxPixels: 2048 * 2048,
        maxCount: 4,
      });
    });

    it("lets guild and channel only lower the configuration's limits", () => {
      expect(effectiveLimits({ maxSteps: 80 }, { maxSteps: 100 }, { maxSteps: 60 }).maxSteps).toBe(60);
      expect(effectiveLimits({ maxSteps: 80 }, { maxSteps: 100 }).maxSteps).toBe(80);
      expect(effectiveLimits(undefined).maxPixels).toBe(1_048_576);
      const ctx = {
        guild: guild({ limits: { maxCount: 2 } }),
        channel: channel({ limits: { maxCount: 1 } }),
      };
      expect(refusal("a cat --n 2", ctx).reason).toBe('--n must be a whole number from 1 to 1 (got "2")');
    });

    it("lowers a default above the limit and says so, instead of refusing the user", () => {
      const { value, notes } = built("a cat", {
        guild: guild({ defaults: { steps: 100, count: 4 } }),
        channel: channel({ limits: { maxSteps: 40, maxCount: 2 } }),
      });
      expect([value.steps, value.count]).toEqual([40, 2]);
      expect(notes).toEqual([
        "steps lowered from 100 to 40 (the limit here)",
        "images per job lowered from 4 to 2 (the limit here)",
      ]);
    });
  });

  describe("sizes", () => {
    it("rounds sides down to multiples of 8 and notes it", () => {
      const { value, notes } = built("a cat --size 770x513");
      expect([value.width, value.height]).toEqual([768, 512]);
      expect(notes).toEqual(["size 770x513 rounded down to 768x512 (sides are multiples of 8)"]);
    });

    it("refuses an exact size over the pixel limit, naming it", () => {
      expect(refusal("a cat --size 2048x2048").reason).toBe(
        "--size 2048x2048 is 4194304 pixels; the limit here is 1048576 (1024x1024)",
      );
      expect(build("a cat --size 2048x2048", { limits: { maxPixels: 2048 * 2048 } }).ok).toBe(true);
    });

    it("computes --ar from the model's native side", () => {
      expect(built("a cat --ar 16:9").value).toMatchObject({ width: 704, height: 384, aspect: "16:9" });
      const sd2 = built("a cat --ar 16:9 --model sd2", { nativeSide: (_b, m) => (m === "sd2" ? 768 : 512) });
      expect(sd2.value).toMatchObject({ width: 1024, height: 576, model: "sd2" });
      expect(built("a cat", { nativeSide: 768 }).value).toMatchObject({ width: 768, height: 768 });
    });

    it("fits --ar under a lower pixel limit and says so", () => {
      // 3:2 at 512² is 576×384 (221184 pixels), so the limit must be lower than that to change it.
      const { value, notes } = built("a cat --ar 3:2", {
        guild: guild({ limits: { maxPixels: 400 * 400 } }),
      });
      expect(value.width * value.height).toBeLessThanOrEqual(400 * 400);
      expect(value.width / value.height).toBeCloseTo(1.5, 0);
      expect(notes[0]).toContain("--ar 3:2 made");
    });

    it("fits a default size under the pixel limit, keeping its shape", () => {
      const { value, notes } = built("a cat", {
        guild: guild({ defaults: { size: { width: 1024, height: 768 } } }),
        channel: channel({ limits: { maxPixels: 512 * 512 } }),
      });
      expect(value.width * value.height).toBeLessThanOrEqual(512 * 512);
      expect(value.width % 8).toBe(0);
      expect(value.height % 8).toBe(0);
      expect(value.width / value.height).toBeCloseTo(4 / 3, 1);
      expect(notes[0]).toContain("size 1024x768 lowered to");
    });
  });

  describe("backends and models", () => {
    it("picks the backend that has the model the user named", () => {
      expect(built("a cat --model gpt-image-1").value).toMatchObject({
        backend: "openai",
        model: "gpt-image-1",
      });
    });

    it("uses each backend's default model", () => {
      const defaults = { ...DEFAULT_REQUEST_DEFAULTS, models: { ldm: "sd2", openai: "gpt-image-1" } };
      expect(built("a cat", { defaults }).value.model).toBe("sd2");
      expect(built("a cat --backend openai", { defaults }).value.model).toBe("gpt-image-1");
    });

    it("refuses an unknown model, listing the models", () => {
      expect(refusal("a cat --model nope").reason).toBe(
        'there is no model "nope"; models: sd15, sd2, sd-turbo (ldm); gpt-image-1 (openai)',
      );
      expect(refusal("a cat --backend openai --model sd15").reason).toBe(
        'there is no openai model "sd15"; openai models: gpt-image-1',
      );
    });

    it("refuses a backend that is not set up", () => {
      expect(refusal("a cat --backend openai", { catalog: { ldm: ["sd15"] } }).reason).toBe(
        "backend openai is not set up on this server; backends: ldm",
      );
    });

    it("refuses a model or backend the guild or channel does not allow, listing the allowed ones", () => {
      const ctx = { guild: guild({ allowedModels: ["sd15", "sd-turbo"], allowedBackends: ["ldm"] }) };
      const model = refusal("a cat --model sd2", ctx);
      expect(model).toMatchObject({
        code: "forbidden",
        reason: "model sd2 is not allowed here; allowed: sd15, sd-turbo",
      });
      expect(refusal("a cat --backend openai", ctx).reason).toBe(
        "backend openai is not allowed here; allowed: ldm",
      );
      const narrowed = { ...ctx, channel: channel({ allowedModels: ["sd-turbo", "sd2"] }) };
      expect(refusal("a cat --model sd15", narrowed).reason).toBe(
        "model sd15 is not allowed here; allowed: sd-turbo",
      );
      expect(built("a cat", narrowed).value.model).toBe("sd-turbo");
    });

    it("skips defaults that are not allowed or not installed", () => {
      const ctx = {
        defaults: { ...DEFAULT_REQUEST_DEFAULTS, backend: "openai" as const, models: { ldm: "gone" } },
        guild: guild({ allowedBackends: ["ldm"], defaults: { model: "also-gone" } }),
      };
      expect(built("a cat", ctx).value).toMatchObject({ backend: "ldm", model: "sd15" });
    });

    it("applies a model's own defaults below the guild's", () => {
      const modelDefaults = (_b: string, m: string) =>
        m === "sd-turbo" ? { steps: 1, guidance: 0, sampler: "euler_trailing" as const } : undefined;
      expect(built("a cat --model sd-turbo", { modelDefaults }).value).toMatchObject({
        steps: 1,
        guidance: 0,
        sampler: "euler_trailing",
      });
      const withGuild = built("a cat --model sd-turbo", {
        modelDefaults,
        guild: guild({ defaults: { steps: 4 } }),
      });
      expect(withGuild.value.steps).toBe(4);
    });
  });

  describe("seeds", () => {
    it("draws the seed from the injected random source", () => {
      expect(built("a cat", { random: () => 0 }).value.seed).toBe(0);
      expect(built("a cat", { random: () => 0.999999999999 }).value.seed).toBe(4_294_967_295);
    });

    it("keeps a broken random source inside 0..2^32-1", () => {
      expect(randomSeed(() => 1)).toBe(4_294_967_295);
      expect(randomSeed(() => -3)).toBe(0);
      expect(randomSeed(() => Number.NaN)).toBe(0);
    });

    it("keeps the user's seed, 0 and 2^32-1 included", () => {
      expect(built("a cat --seed 0").value.seed).toBe(0);
      expect(built("a cat --seed 4294967295").value.seed).toBe(4_294_967_295);
    });
  });

  describe("start images", () => {
    it("refuses --strength without a start image", () => {
      expect(refusal("a cat --strength 0.5").reason).toBe(
        "--strength only applies when starting from an image (a variation or an upscale); this request has none",
      );
    });

    it("uses the given strength, else the default, with a start image and the lineage", () => {
      const parent = { jobId: "j1", variant: 2, kind: "variation" as const };
      const withInit = { init: { imageId: "abc" }, parent };
      expect(built("a cat --strength 0.35", {}, withInit).value).toMatchObject({
        init: { imageId: "abc", strength: 0.35 },
        parent,
      });
      expect(built("a cat", {}, withInit).value.init).toEqual({ imageId: "abc", strength: 0.6 });
    });
  });

  describe("texts", () => {
    it("refuses an empty prompt", () => {
      expect(refusal("   --ar 16:9").reason).toContain("the prompt is empty");
    });

    it("refuses a negative prompt over 1000 characters", () => {
      expect(refusal(`a cat --no ${"x".repeat(1001)}`).reason).toBe(
        "--no is 1001 characters long; the limit is 1000",
      );
    });

    it("refuses flags inside a negative prompt given as an option, so the canonical prompt stays a round trip", () => {
      expect(refusal("a cat", {}, { options: { negativePrompt: "blur --seed 5" } }).reason).toBe(
        'the negative option cannot contain flags (found "--seed")',
      );
    });

    it("passes the channel's NSFW setting to the backend", () => {
      expect(built("a cat", { channel: channel({ nsfwAllowed: true }) }).value.nsfwAllowed).toBe(true);
      expect(built("a cat", { channel: channel() }).value.nsfwAllowed).toBe(false);
    });
  });

  describe("moderation", () => {
    it("refuses a banned word in the prompt, naming it, but not in the negative prompt", () => {
      const ctx = { guild: guild({ bannedWords: ["gore"] }) };
      expect(refusal("a GORE scene", ctx)).toEqual({
        ok: false,
        code: "banned_content",
        reason: "your prompt contains a banned word: ‘gore’",
      });
      expect(build("a calm scene --no gore", ctx).ok).toBe(true);
    });

    it("fails closed when the guild's patterns cannot be compiled", () => {
      const result = refusal("a cat", { guild: guild({ bannedPatterns: ["(unclosed"] }) });
      expect(result.code).toBe("forbidden");
      expect(result.reason).toContain("an admin needs to fix them");
    });
  });

  it("never throws, whatever the prompt and options", () => {
    const value = fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.double(),
      fc.integer(),
      fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, -0, 2 ** 64, 1e21, "1e3", "0x10", "", "  "),
      fc.record({ width: fc.double(), height: fc.integer() }),
      fc.constant(null),
      fc.constant({}),
    );
    const options = fc.dictionary(
      fc.constantFrom(
        "aspect",
        "seed",
        "negativePrompt",
        "steps",
        "guidance",
        "sampler",
        "model",
        "backend",
        "count",
        "size",
        "strength",
      ),
      value,
    ) as fc.Arbitrary<RequestOptions>;
    fc.assert(
      fc.property(
        fc.string({ unit: "grapheme", maxLength: 200 }),
        options,
        fc.boolean(),
        (prompt, opts, init) => {
          const result = buildRequest(
            { prompt, options: opts, requester, ...(init ? { init: { imageId: "i" } } : {}) },
            context(),
          );
          if (result.ok) {
            const r = result.value;
            expect(Number.isInteger(r.seed) && r.seed >= 0 && r.seed <= 4_294_967_295).toBe(true);
            expect(r.steps >= 1 && r.steps <= 150).toBe(true);
            expect(
              r.width % 8 === 0 && r.height % 8 === 0 && r.width * r.height <= DEFAULT_LIMITS.maxPixels,
            ).toBe(true);
            expect(r.count >= 1 && r.count <= 4).toBe(true);
            expect(r.guidance >= 0 && r.guidance <= 30).toBe(true);
          } else {
            expect(result.reason.length).toBeGreaterThan(0);
          }
        },
      ),
      { numRuns: 1500 },
    );
  });

  it("rebuilds the same request from its canonical prompt", () => {
    const flagText = fc
      .record({
        seed: fc.option(fc.integer({ min: 0, max: 4_294_967_295 }), { nil: undefined }),
        steps: fc.option(fc.integer({ min: 1, max: 150 }), { nil: undefined }),
        cfg: fc.option(
          fc.integer({ min: 0, max: 3000 }).map((v) => v / 100),
          { nil: undefined },
        ),
        shape: fc.oneof(
          fc.constant(""),
          fc.constantFrom(
            "--ar 16:9",
            "--ar 2:3",
            "--ar 4:1",
            "--size 770x513",
            "--size 1024x1024",
            "--size 64x2048",
          ),
        ),
        n: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
        model: fc.option(fc.constantFrom("sd15", "sd2", "gpt-image-1"), { nil: undefined }),
        no: fc.option(fc.string({ unit: "grapheme", minLength: 1, maxLength: 20 }), { nil: undefined }),
      })
      .map((f) =>
        [
          f.seed === undefined ? "" : `--seed ${f.seed}`,
          f.steps === undefined ? "" : `--steps ${f.steps}`,
          f.cfg === undefined ? "" : `--cfg ${f.cfg}`,
          f.shape,
          f.n === undefined ? "" : `--n ${f.n}`,
          f.model === undefined ? "" : `--model ${f.model}`,
          f.no === undefined ? "" : `--no ${f.no}`,
        ].join(" "),
      );
    let compared = 0;
    fc.assert(
      fc.property(
        fc.string({ unit: "grapheme", maxLength: 60 }),
        flagText,
        fc.boolean(),
        (prompt, flags, init) => {
          const input = { ...(init ? { init: { imageId: "i" } } : {}) };
          const first = build(`${prompt} ${flags}`, {}, input);
          if (!first.ok) return; // refusals are covered elsewhere
          compared++;
          const again = build(renderCanonicalPrompt(first.value), {}, input);
          if (!again.ok) throw new Error(again.reason);
          const { aspect: _aspect, ...expected } = first.value;
          expect(again.value).toEqual(expected);
          expect(again.notes).toEqual([]);
        },
      ),
      { numRuns: 1000 },
    );
    // Most generated inputs must be valid, or the property would prove little.
    expect(compared).toBeGreaterThan(600);
  });
});

describe("settings", () => {
  it("declares defaults that pass their own checks", () => {
    expect(checkGuildSettings(DEFAULT_GUILD_SETTINGS).ok).toBe(true);
    expect(checkChannelSettings(DEFAULT_CHANNEL_SETTINGS, DEFAULT_GUILD_SETTINGS).ok).toBe(true);
  });

  it.each([
    [{ limits: { maxSteps: 500 } }, "maxSteps must be a whole number from 1 to 150 (got 500)"],
    [{ limits: { maxPixels: 100 } }, "maxPixels must be a whole number from 4096 to 4194304 (got 100)"],
    [{ limits: { maxQueuedPerUser: 0 } }, "maxQueuedPerUser must be a whole number from 1 to 100 (got 0)"],
    [{ defaults: { steps: 0 } }, "the default steps must be a whole number from 1 to 150 (got 0)"],
    [{ defaults: { guidance: 99 } }, "the default guidance must be a number from 0 to 30 (got 99)"],
    [
      { defaults: { size: { width: 1004, height: 1000 } } },
      "the default size 1004x1000 must have sides that are multiples of 8",
    ],
    [{ defaults: { size: { width: 2048, height: 2048 } } }, "is over the pixel limit of 1048576"],
    [
      { allowedBackends: ["comfy"] as never },
      'allowedBackends has an unknown name "comfy"; names: ldm, openai',
    ],
    [{ bannedPatterns: ["(a"] }, "is not a valid regular expression"],
    [{ bannedPatterns: ["(?<=a)b"] }, "lookarounds"],
  ] satisfies [Partial<GuildSettings>, string][])(
    "refuses guild settings %j with a reason",
    (patch, expected) => {
      const result = checkGuildSettings(guild(patch));
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.reason).toContain(expected);
    },
  );

  it("lets a guild only lower the operator's OpenAI daily caps, refusing a higher value with the limit named", () => {
    const operator = { perUser: 50, perGuild: 200 };
    const above = checkGuildSettings(guild({ openaiDailyImagesPerUser: 80 }), undefined, operator);
    expect(above).toEqual({
      ok: false,
      reason:
        "openaiDailyImagesPerUser can only lower the operator's daily limit of 50 OpenAI images (OPENAI_DAILY_IMAGES_PER_USER); got 80",
    });
    const guildAbove = checkGuildSettings(guild({ openaiDailyImagesPerGuild: 201 }), undefined, operator);
    expect(guildAbove.ok).toBe(false);
    if (!guildAbove.ok)
      expect(guildAbove.reason).toContain("daily limit of 200 OpenAI images (OPENAI_DAILY_IMAGES_PER_GUILD)");
    for (const caps of [
      { openaiDailyImagesPerUser: 50, openaiDailyImagesPerGuild: 200 },
      { openaiDailyImagesPerUser: 0, openaiDailyImagesPerGuild: 0 },
      { openaiDailyImagesPerUser: 5 },
    ])
      expect(checkGuildSettings(guild(caps), undefined, operator).ok).toBe(true);
    // No operator cap (0): any whole number of images is a lowering.
    expect(
      checkGuildSettings(guild({ openaiDailyImagesPerGuild: 1000 }), undefined, { perUser: 0, perGuild: 0 })
        .ok,
    ).toBe(true);
    expect(checkGuildSettings(guild({ openaiDailyImagesPerUser: 1000 })).ok).toBe(true);
    for (const bad of [-1, 2.5, Number.NaN, "3" as unknown as number])
      expect(checkGuildSettings(guild({ openaiDailyImagesPerUser: bad }), undefined, operator)).toMatchObject(
        {
          ok: false,
          reason: expect.stringContaining(
            "openaiDailyImagesPerUser must be a whole number of images from 0 to",
          ),
        },
      );
  });

  it("checks a channel's defaults against the guild's and its own limits", () => {
    const g = guild({ limits: { maxSteps: 30 } });
    const result = checkChannelSettings(channel({ defaults: { steps: 40 } }), g);
    expect(result).toEqual({
      ok: false,
      reason: "the default steps must be a whole number from 1 to 30 (got 40)",
    });
    expect(
      checkGuildSettings(guild({ defaults: { size: { width: 2048, height: 2048 } } }), {
        maxPixels: 2048 ** 2,
      }).ok,
    ).toBe(true);
  });
});
