import { rm } from "node:fs/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { parseButtonId } from "../src/core/buttons.ts";
import { readPngText } from "../src/render/png.ts";
import { nextEvent, startTestEasel, type TestEasel, tinyAndSlowModelsDir } from "./easel-harness.ts";
import {
  DEFAULT_GUILD_ID,
  DEFAULT_NSFW_CHANNEL_ID,
  FakeDiscord,
  type FakeMessage,
  type InteractionHandle,
  subcommand,
} from "./fakes/fake-discord/index.ts";

/**
 * easel on Discord end to end: `startEasel` (what `npm start` runs) logs discord.js in to a local fake Discord
 * that speaks the REST API and the gateway, checks every request against Discord's OpenAPI document, and
 * enforces the 3-second and 15-minute windows. Images are rendered for real by tiny ONNX models.
 */

let modelsDir: string;
let fake: FakeDiscord | undefined;
let t: TestEasel | undefined;

beforeAll(async () => {
  modelsDir = await tinyAndSlowModelsDir();
});
afterAll(async () => {
  await rm(modelsDir, { recursive: true, force: true });
});
afterEach(async () => {
  await t?.stop();
  t = undefined;
  await fake?.close();
  fake = undefined;
});

async function start(
  options: Parameters<typeof FakeDiscord.start>[0] = {},
  env: Record<string, string> = {},
) {
  fake = await FakeDiscord.start({ heartbeatIntervalMs: 1_000, ...options });
  t = await startTestEasel(modelsDir, {
    DISCORD_TOKEN: fake.token,
    DISCORD_API_BASE: fake.apiBase,
    EASEL_MODEL: "tiny",
    ...env,
  });
  return { fake, t };
}

/** A finished result (status messages may carry a preview image, but never say "ready"). */
const hasImage = (m: FakeMessage) => m.attachments.length > 0 && /ready/.test(m.content);

/** The custom ids of a message's buttons, by label. */
function buttons(message: FakeMessage): Map<string, string> {
  const out = new Map<string, string>();
  for (const row of message.components as { components: { label: string; custom_id: string }[] }[]) {
    for (const b of row.components) out.set(b.label, b.custom_id);
  }
  return out;
}

function field(message: FakeMessage, name: string): string | undefined {
  const embed = message.embeds[0] as { fields?: { name: string; value: string }[] } | undefined;
  return embed?.fields?.find((f) => f.name === name)?.value;
}

function prompt(value: string, extra: { name: string; value: string | number }[] = []) {
  return [{ name: "prompt", value }, ...extra];
}

async function finalMessage(f: FakeDiscord, h: InteractionHandle, timeoutMs = 30_000): Promise<FakeMessage> {
  return f.waitForOriginalMessage(h, hasImage, timeoutMs);
}

describe("easel on Discord", () => {
  it("registers its commands, and /imagine goes from deferred to queued to progress to the image with its settings", async () => {
    const { fake: f } = await start();
    expect(f.commands().map((c) => c.name)).toEqual([
      "imagine",
      "settings",
      "queue",
      "cancel",
      "info",
      "top",
      "compare",
      "leaderboard",
      "Imagine this",
    ]);
    const imagine = f.commands().find((c) => c.name === "imagine") as unknown as {
      options: { name: string; min_value?: number; max_value?: number }[];
    };
    expect(imagine.options.find((o) => o.name === "steps")).toMatchObject({ min_value: 1, max_value: 150 });

    const h = f.slashCommand({
      name: "imagine",
      options: prompt("a lighthouse in a storm --ar 3:2 --seed 42", [{ name: "steps", value: 6 }]),
    });
    const callback = await f.waitForCallback(h);
    expect(callback.type).toBe(5);
    expect(callback.latencyMs).toBeLessThan(3_000);
    const done = await finalMessage(f, h);
    // Status edits came first: queued or rendering, with a cancel button.
    const edits = f.requests.filter((r) => r.method === "PATCH" && r.path.includes(h.token));
    const contents = edits.map((r) => (r.body as { content?: string }).content ?? "");
    expect(contents.some((c) => /Queued|Rendering|Starting/.test(c))).toBe(true);
    expect(done.content).toMatch(/your image is ready/);
    expect(field(done, "Seed")).toBe("42");
    expect(field(done, "Steps")).toBe("6");
    expect(field(done, "Size")).toBe("576×384 (3:2)"); // exactly 3:2, near 512² pixels
    expect(field(done, "Model")).toBe("tiny (ldm)");
    expect(field(done, "Requested by")).toBe(`<@${f.interaction(h).user.id}>`);
    expect(field(done, "Prompt to rerun")).toContain("--seed 42");
    const embed = done.embeds[0] as { title: string; image?: { url: string }; footer?: { text: string } };
    expect(embed.title).toBe("a lighthouse in a storm");
    expect(embed.image?.url).toMatch(/^attachment:\/\/|https?:/);
    expect([...buttons(done).keys()]).toEqual(["U1", "V1", "🔁 Reroll", "🎞 How it was made", "🗑 Delete"]);
    const png = f.attachmentBytes(done.id, 0);
    expect(readPngText(png).parameters).toMatch(/Seed: 42/);
    expect(f.violations).toEqual([]);
  });

  it("answers a bad request with an ephemeral reason that names the limit, and queues nothing", async () => {
    const { fake: f, t: e } = await start({}, { EASEL_MAX_STEPS: "30" });
    const h = f.slashCommand({ name: "imagine", options: prompt("a lighthouse --steps 80") });
    const callback = await f.waitForCallback(h);
    expect(callback.type).toBe(4);
    const body = callback.body as { data: { content: string; flags: number } };
    expect(body.data.content).toMatch(/30/);
    expect(body.data.flags & 64).toBe(64);
    expect(e.easel.engine.activeJobs()).toHaveLength(0);
    expect(f.violations).toEqual([]);
  });

  it("a V button makes a variation job, U posts the image alone and upscales it, ❌ cancels, 🗑 deletes", async () => {
    const { fake: f, t: e } = await start();
    const h = f.slashCommand({
      name: "imagine",
      options: prompt("a lighthouse --size 64x64 --steps 4 --n 2"),
    });
    const done = await finalMessage(f, h);
    expect(done.attachments).toHaveLength(3); // grid + both images
    const ids = buttons(done);

    const v = f.pressButton({ messageId: done.id, customId: ids.get("V2") ?? "" });
    expect((await f.waitForCallback(v)).type).toBe(5);
    const varied = await finalMessage(f, v);
    const vJob = parseButtonId(buttons(varied).get("🔁 Reroll") ?? "");
    const vRecord = vJob.ok ? e.easel.store.jobs.getJob(vJob.value.jobId) : undefined;
    expect(vRecord?.request.parent).toMatchObject({ kind: "variation", variant: 2 });

    const u = f.pressButton({ messageId: done.id, customId: ids.get("U1") ?? "" });
    const alone = await f.waitForOriginalMessage(u, (m) => m.attachments.length === 1);
    expect(alone.attachments[0]).toMatchObject({ width: 64, height: 64 });
    const upscaled = await f.until(() => f.followUps(u).find(hasImage), 30_000, "the upscale result");
    expect(upscaled.attachments[0]).toMatchObject({ width: 128, height: 128 });

    // Cancel a job while it waits behind a slow one.
    const slow = f.slashCommand({ name: "imagine", options: prompt("slow --model slow --steps 60") });
    await f.waitForCallback(slow);
    const queued = f.slashCommand({ name: "imagine", options: prompt("waiting --size 64x64 --steps 2") });
    const status = await f.waitForOriginalMessage(queued, (m) => /Queued/.test(m.content));
    const cancel = f.pressButton({ messageId: status.id, customId: buttons(status).get("❌ Cancel") ?? "" });
    const cancelReply = await f.waitForCallback(cancel);
    expect((cancelReply.body as { data: { content: string } }).data.content).toMatch(/Cancelling/);
    await f.waitForOriginalMessage(queued, (m) => m.content === "Cancelled.");
    const slowCancel = f.slashCommand({ name: "cancel", options: [] });
    await f.waitForCallback(slowCancel);
    await f.waitForOriginalMessage(slow, (m) => m.content === "Cancelled.", 15_000);

    // Someone else may not delete it; the requester may.
    const other = f.pressButton({
      messageId: done.id,
      customId: ids.get("🗑 Delete") ?? "",
      userId: "1200000000000000099",
    });
    expect(((await f.waitForCallback(other)).body as { data: { content: string } }).data.content).toMatch(
      /Only the member/,
    );
    const del = f.pressButton({ messageId: done.id, customId: ids.get("🗑 Delete") ?? "" });
    await f.waitForCallback(del);
    await f.until(
      () => f.message(done.id) === undefined || (f.message(done.id) as { deleted?: boolean }).deleted,
      5_000,
      "the deletion",
    );
    expect(f.violations).toEqual([]);
  });

  it('"Imagine this" turns a message into a prompt, flags included', async () => {
    const { fake: f } = await start();
    const h = f.messageContextMenu({
      name: "Imagine this",
      targetMessage: { content: "a cat on a windowsill --size 64x64 --steps 3 --seed 9" },
    });
    const done = await finalMessage(f, h);
    expect(field(done, "Seed")).toBe("9");
    expect(field(done, "Steps")).toBe("3");
  });

  it("delivers a result once after a restart mid-job", async () => {
    const { fake: f, t: first } = await start();
    const h = f.slashCommand({
      name: "imagine",
      options: prompt("restart --model slow --steps 40 --seed 3"),
    });
    await f.waitForOriginalMessage(h, (m) => /Rendering/.test(m.content), 30_000);
    await first.stop({ keepData: true });
    t = await startTestEasel(
      modelsDir,
      { DISCORD_TOKEN: f.token, DISCORD_API_BASE: f.apiBase, EASEL_MODEL: "tiny" },
      { dataDir: first.dataDir },
    );
    const done = await finalMessage(f, h, 60_000);
    expect(field(done, "Seed")).toBe("3");
    await t.easel.relay.idle();
    const resultPosts = f.requests.filter(
      (r) =>
        r.method === "PATCH" &&
        r.path.includes(h.token) &&
        r.files.length > 0 &&
        !r.files.some((x) => x.filename === "preview.png"),
    );
    expect(resultPosts).toHaveLength(1);
    expect(
      f.messages(done.channel_id).filter((m) => m.attachments.length > 0 && m.id !== done.id),
    ).toHaveLength(0);
  });

  it("posts a normal channel message mentioning the requester when the interaction token has died", async () => {
    let clock = Date.now();
    const { fake: f, t: e } = await start({ now: () => clock });
    const h = f.slashCommand({ name: "imagine", options: prompt("late --model slow --steps 30") });
    await f.waitForCallback(h);
    const jobId = e.easel.engine.activeJobs()[0]?.job.id ?? "";
    clock += 16 * 60_000;
    await nextEvent(e.easel.engine, "done", jobId, 60_000);
    const posted = await f.until(
      () =>
        f
          .messages(f.interaction(h).channelId)
          .find((m) => m.attachments.length > 0 && m.webhook_id === undefined),
      10_000,
      "the channel message",
    );
    expect(posted.content).toContain(`<@${f.interaction(h).user.id}>`);
    const dead = f.requests.filter((r) => r.status === 401);
    expect(dead.length).toBeLessThanOrEqual(2);
    expect(f.violations).toEqual([]);
  });

  it("re-encodes an image over the interaction's upload limit and says so", async () => {
    const { fake: f } = await start({ attachmentSizeLimit: 60_000 });
    const h = f.slashCommand({ name: "imagine", options: prompt("big noise --steps 2 --size 512x512") });
    const done = await finalMessage(f, h);
    expect(field(done, "Note")).toMatch(/upload limit/);
    for (const a of done.attachments) expect(a.size).toBeLessThanOrEqual(60_000);
    expect(f.violations).toEqual([]);
  });

  it('"how it was made" answers with the stages and an animation of the denoising', async () => {
    const { fake: f } = await start();
    const h = f.slashCommand({
      name: "imagine",
      options: prompt("a lighthouse in a storm --steps 8 --size 128x128"),
    });
    const done = await finalMessage(f, h);
    const m = f.pressButton({ messageId: done.id, customId: buttons(done).get("🎞 How it was made") ?? "" });
    const reply = await f.waitForOriginalMessage(m, (x) => /How it was made/.test(x.content), 10_000);
    expect(reply.content).toMatch(/7 CLIP tokens/);
    expect(reply.content).toMatch(/16×16×4 latent/);
    // The model's own scheduler (PNDM, as SD 1.5's): its defaults are known from the first job on.
    expect(reply.content).toMatch(/8 pndm steps/);
    expect(reply.flags & 64).toBe(64);
    expect(reply.attachments[0]?.filename).toMatch(/denoising\.gif$/);
    const gif = f.attachmentBytes(reply.id, 0);
    expect(Buffer.from(gif.subarray(0, 6)).toString("latin1")).toBe("GIF89a");
    expect(f.violations).toEqual([]);
  });

  it("/settings, /queue and /info through Discord's sub-commands and options", async () => {
    const { fake: f } = await start({}, {});
    const refused = f.slashCommand({
      name: "settings",
      options: [subcommand("set", { key: "steps", value: "5" })],
    });
    expect(((await f.waitForCallback(refused)).body as { data: { content: string } }).data.content).toMatch(
      /Only easel admins/,
    );
    const set = f.slashCommand({
      name: "settings",
      admin: true,
      options: [subcommand("set", { key: "steps", value: "5" })],
    });
    expect(((await f.waitForCallback(set)).body as { data: { content: string } }).data.content).toMatch(
      /steps set to 5/,
    );
    const h = f.slashCommand({ name: "imagine", options: prompt("x --size 64x64") });
    expect(field(await finalMessage(f, h), "Steps")).toBe("5");
    const info = f.slashCommand({ name: "info" });
    expect(((await f.waitForCallback(info)).body as { data: { content: string } }).data.content).toMatch(
      /ldm: slow, tiny/,
    );
    const queue = f.slashCommand({ name: "queue" });
    expect(((await f.waitForCallback(queue)).body as { data: { content: string } }).data.content).toMatch(
      /no jobs/,
    );
    expect(f.violations).toEqual([]);
  });

  it("registers in one guild with DISCORD_GUILD_ID, and rides out a 429 from Discord", async () => {
    const { fake: f } = await start({}, { DISCORD_GUILD_ID: DEFAULT_GUILD_ID });
    expect(f.commands(DEFAULT_GUILD_ID).map((c) => c.name)).toContain("imagine");
    expect(f.commands()).toHaveLength(0);
    f.rateLimitNext(/PATCH \/webhooks\//, { retryAfterS: 0.2, count: 2 });
    const h = f.slashCommand({ name: "imagine", options: prompt("rate limited --size 64x64 --steps 2") });
    const done = await finalMessage(f, h);
    expect(done.attachments.length).toBeGreaterThan(0);
    expect(f.requests.filter((r) => r.status === 429).length).toBe(2);
  });

  it("keeps the safety filter on unless the channel is age-restricted and the server allows NSFW there", async () => {
    const { fake: f, t: e } = await start();
    const on = (channelId: string) =>
      f.slashCommand({
        name: "settings",
        admin: true,
        channelId,
        options: [subcommand("set", { key: "nsfw", value: "on" })],
      });
    await f.waitForCallback(on(DEFAULT_NSFW_CHANNEL_ID));
    const general = f.slashCommand({ name: "imagine", options: prompt("x --size 64x64 --steps 2") });
    const afterDark = f.slashCommand({
      name: "imagine",
      channelId: DEFAULT_NSFW_CHANNEL_ID,
      options: prompt("y --size 64x64 --steps 2"),
    });
    await finalMessage(f, general);
    await finalMessage(f, afterDark);
    const jobs = e.easel.store.jobs.listJobs({});
    expect(jobs.find((j) => j.request.prompt === "x")?.request.nsfwAllowed).toBe(false);
    expect(jobs.find((j) => j.request.prompt === "y")?.request.nsfwAllowed).toBe(true);
  });
});
