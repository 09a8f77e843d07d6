import { describe, expect, it } from "vitest";
import { encodeButtonId, parseButtonId } from "../src/core/buttons.ts";
import type { StoredImage } from "../src/core/engine.ts";
import { explainJob } from "../src/core/explain.ts";
import type { Job } from "../src/core/job.ts";
import { MESSAGES, plural } from "../src/core/messages.ts";
import {
  cut,
  presentArenaReveal,
  presentContestResult,
  presentDone,
  presentFailed,
  presentQueued,
} from "../src/core/presenter.ts";
import { parsePromptFlags } from "../src/core/prompt-flags.ts";
import type { Ballot } from "../src/core/voting.ts";

const job: Job = {
  id: "ab12cd34ef",
  eventId: "e",
  state: "rendered",
  attempts: 1,
  createdAt: 0,
  request: {
    prompt: "a lighthouse in a storm",
    negativePrompt: "blurry",
    seed: 42,
    steps: 30,
    guidance: 7,
    sampler: "euler_ancestral",
    width: 768,
    height: 512,
    count: 4,
    backend: "ldm",
    model: "sd15",
    requester: { platform: "discord", workspaceId: "g", channelId: "c", userId: "123" },
  },
};

const image = (variant: number, seed: number | null): StoredImage => ({
  id: `sha${variant}`,
  variant,
  png: new Uint8Array(),
  width: variant === 0 ? 1536 : 768,
  height: variant === 0 ? 1024 : 512,
  seed,
});

describe("presenter", () => {
  it("withholds what the safety checker flagged: not attached, no U/V/vote for it, named in a field", () => {
    const images = [
      image(0, null),
      image(1, 42),
      { ...image(2, 43), flagged: true },
      image(3, 44),
      image(4, 45),
    ];
    const m = presentDone(job, images, [], 12_000);
    expect(m.images.map((i) => i.imageId)).toEqual(["sha0", "sha1", "sha3", "sha4"]);
    const ids = m.buttons.flat().map((b) => parseButtonId(b.id));
    const of = (action: string) =>
      ids.filter((b) => b.ok && b.value.action === action).map((b) => (b.ok ? b.value.variant : undefined));
    expect(of("upscale")).toEqual([1, 3, 4]);
    expect(of("variation")).toEqual([1, 3, 4]);
    // Each vote button casts its image's own number (a button by position would vote for image 2).
    expect(of("vote")).toEqual([1, 3, 4]);
    expect(m.fields.find((f) => f.name === "Withheld")?.value).toContain(
      "Image 2: flagged by the model's safety checker",
    );
    expect(m.content).toContain("ready");

    const alone = presentDone(
      { ...job, request: { ...job.request, count: 1 } },
      [{ ...image(1, 42), flagged: true }],
      [],
      1,
    );
    expect(alone.images).toEqual([]);
    expect(alone.content).toContain("your image was withheld");
    expect(alone.buttons.flat().some((b) => /upscale|variation/.test(b.id))).toBe(false);
  });

  it("shows every setting, each seed, the prompt to rerun and U/V/vote/reroll buttons within the limits", () => {
    const images = [image(0, null), image(1, 42), image(2, 43), image(3, 44), image(4, 45)];
    const m = presentDone(job, images, ["prompt cut: 3 tokens"], 12_000);
    const field = (name: string) => m.fields.find((f) => f.name === name)?.value;
    expect(field("Seed")).toBe("1: 42 · 2: 43 · 3: 44 · 4: 45");
    expect(field("Size")).toBe("768×512 (3:2)");
    expect(field("Negative prompt")).toBe("blurry");
    expect(field("Notes")).toContain("3 tokens");
    const rerun = (field("Prompt to rerun") ?? "").replaceAll("`", "");
    const parsed = parsePromptFlags(rerun);
    expect(parsed.ok).toBe(true);
    expect(rerun).toContain("--seed 42");
    expect(m.images[0]?.filename).toContain("grid");
    expect(m.images).toHaveLength(5);
    expect(m.buttons.map((row) => row.map((b) => b.label))).toEqual([
      ["U1", "U2", "U3", "U4"],
      ["V1", "V2", "V3", "V4"],
      ["🗳 1", "🗳 2", "🗳 3", "🗳 4"],
      ["🔁 Reroll", "🎞 How it was made", "🗑 Delete"],
    ]);
    expect(field("Requested by")).toBe("<@123>");
    expect(m.buttons.length).toBeLessThanOrEqual(5);
    for (const row of m.buttons) expect(row.length).toBeLessThanOrEqual(5);
    for (const b of m.buttons.flat()) expect(b.id.length).toBeLessThanOrEqual(100);
    expect(m.content).toContain("<@123>");
  });

  it("shows mentions typed in a prompt as text, so a prompt cannot ping anyone", () => {
    const pinging = {
      ...job,
      request: { ...job.request, prompt: "hi <!channel> <@U0123ABCD> <#C01>", negativePrompt: "<@999>" },
    };
    const m = presentDone(pinging, [image(1, 42)], [], 1_000);
    const typed = m.fields.filter((f) => f.name !== "Requested by").map((f) => f.value);
    const shown = [m.title, ...typed].join("\n");
    expect(shown).not.toMatch(/<[@#!]/);
    expect(m.title).toBe("hi <\u200b!channel> <\u200b@U0123ABCD> <\u200b#C01>");
    expect(m.content).toContain("<@123>"); // easel's own mention of the requester stays
  });

  it("cuts a long prompt to the title limit with an ellipsis", () => {
    const long = { ...job, request: { ...job.request, prompt: "x".repeat(1000) } };
    const title = presentQueued(long, 3, 60_000, false).title;
    expect(Array.from(title)).toHaveLength(256);
    expect(title.endsWith("…")).toBe(true);
    expect(cut("short", 10)).toBe("short");
  });

  it("says where a job is in line, and shows a failure with a way to try again", () => {
    expect(presentQueued(job, 3, 90_000, false).content).toBe("Queued #3 · ETA about 2 min");
    expect(presentQueued(job, 1, 5_000, false).content).toContain("next up");
    const failed = presentFailed(job, "Rejected by the provider's safety system.");
    expect(failed.tone).toBe("error");
    expect(failed.content).toContain("safety system");
  });
});

describe("singular and plural", () => {
  const one = { ...job, request: { ...job.request, steps: 1, count: 1 } };
  const ballot: Ballot = {
    id: job.id,
    kind: "contest",
    platform: "discord",
    workspaceId: "g",
    channelId: "c",
    ownerId: "123",
    choices: 2,
    createdAt: 0,
    winner: 1,
  };

  it("counts with the noun in the right number", () => {
    expect(plural(1, "step")).toBe("1 step");
    expect(plural(0, "step")).toBe("0 steps");
    expect(plural(2, "step")).toBe("2 steps");
    expect(plural(1, "match", "matches")).toBe("1 match");
    expect(plural(3, "match", "matches")).toBe("3 matches");
  });

  it("says 1 job, 1 image, 1 vote and 1 step in what members read", () => {
    expect(MESSAGES.queueFull(1)).toContain("(1 job)");
    expect(MESSAGES.userLimit(1)).toContain("1 job waiting");
    expect(MESSAGES.workspaceLimit(1)).toContain("1 job waiting");
    expect(MESSAGES.workspaceLimit(3)).toContain("3 jobs waiting");
    expect(MESSAGES.openAiCapAboveOperator("cap", 2, 1, "V")).toContain("limit of 1 OpenAI image (V)");
    const daily = { scope: "member", setBy: "operator", cap: 1, asked: 1 } as const;
    expect(MESSAGES.openAiDailyLimit({ ...daily, used: 1 })).toContain("used the 1 OpenAI image for today");
    expect(MESSAGES.openAiDailyLimit({ ...daily, cap: 2, used: 1, asked: 2 })).toContain(
      "1 OpenAI image left",
    );
    const won = presentContestResult(job, ballot, { counts: [1, 0], lastVoteAt: [1, undefined], total: 1 });
    expect(won.content).toMatch(/wins with 1 of 1 vote\.$/);
    const reveal = presentArenaReveal(
      { id: "m", prompt: "p", jobA: "a", jobB: "b", modelA: "ldm:x", modelB: "ldm:y" },
      ballot,
      [1, 0],
      [undefined, undefined],
      [undefined, undefined],
      1000,
    );
    expect(reveal.fields.map((f) => f.value.split(" · ")[1])).toEqual(["1 vote", "0 votes"]);
    const how = explainJob(one, { tokens: 9, cut: 1 }, 1);
    expect(how).toContain("1 euler_ancestral step removes it, guided by the prompt");
    expect(how).toContain("(1 over the limit of 77 was cut)");
    expect(how).toContain("at 1 point along");
    expect(how).not.toMatch(/\b1 (steps|points|votes)\b/);
  });

  it("states the steps an img2img job really runs, floor(steps × strength) as the pipeline does", () => {
    const img2img = (steps: number, strength: number) =>
      explainJob(
        { ...job, request: { ...job.request, steps, init: { imageId: "x", strength } } },
        undefined,
        0,
      );
    // 10 × 0.65 = 6.5: the pipeline runs 6 (rounding would have said 7).
    expect(img2img(10, 0.65)).toContain("then 6 of 10 euler_ancestral steps remove the noise");
    expect(img2img(1, 1)).toContain("then 1 of 1 euler_ancestral step removes the noise");
  });

  it("tells an SDXL job's real numbers: two text encoders and a 128×128×4 latent at 1024²", () => {
    const sdxl = explainJob(
      { ...job, request: { ...job.request, width: 1024, height: 1024 } },
      { tokens: 9, cut: 0, encoders: 2 },
      0,
    );
    expect(sdxl).toContain("two text encoders");
    expect(sdxl).toContain("128×128×4 latent");
    expect(sdxl).toContain("1024×1024 pixels");
    expect(explainJob(job, { tokens: 9, cut: 0, encoders: 1 }, 0)).toContain("the text encoder turns them");
  });
});

describe("button ids", () => {
  it("round-trips every action and refuses ids easel did not make", () => {
    for (const id of [
      { action: "reroll" as const, jobId: "ab12cd34ef" },
      { action: "variation" as const, jobId: "ab12cd34ef", variant: 3 },
      { action: "upscale" as const, jobId: "ab12cd34ef", variant: 1 },
      { action: "cancel" as const, jobId: "ab12cd34ef" },
    ]) {
      expect(parseButtonId(encodeButtonId(id))).toEqual({ ok: true, value: id });
    }
    for (const bad of [
      "",
      "r",
      "q:ab12cd34ef",
      "v:ab12cd34ef",
      "v:ab12cd34ef:0",
      "r:../../x",
      "r:ab12cd34ef:1:2",
      "__proto__:x",
    ]) {
      expect(parseButtonId(bad).ok).toBe(false);
    }
  });
});
