import { describe, expect, it } from "vitest";
import { encodeButtonId, parseButtonId } from "../src/core/buttons.ts";
import type { StoredImage } from "../src/core/engine.ts";
import type { Job } from "../src/core/job.ts";
import { cut, presentDone, presentFailed, presentQueued } from "../src/core/presenter.ts";
import { parsePromptFlags } from "../src/core/prompt-flags.ts";

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
  it("shows every setting, each seed, the prompt to rerun and U/V/vote/reroll buttons within the limits", () => {
    const images = [image(0, null), image(1, 42), image(2, 43), image(3, 44), image(4, 45)];
    const m = presentDone(job, images, ["prompt cut: 3 tokens"], 12_000);
    const field = (name: string) => m.fields.find((f) => f.name === name)?.value;
    expect(field("Seed")).toBe("1: 42 · 2: 43 · 3: 44 · 4: 45");
    expect(field("Size")).toBe("768×512");
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
