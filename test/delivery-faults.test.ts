import { readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startTestEasel, type TestEasel, tinyAndSlowModelsDir } from "./easel-harness.ts";
import { FakeDiscord, type FakeMessage } from "./fakes/fake-discord/index.ts";
import { FakeSlack, type FakeSlackMessage } from "./fakes/fake-slack/index.ts";

/**
 * Delivery you can trust, end to end: the real SDKs against the fakes, which perform a post and then lose its
 * answer (HTTP 500 or a dropped connection), or refuse the bot for good. Every post a member would see is
 * counted as the fake holds it, without deduplicating: a lost answer must never make a second one (S4), and a
 * result that can never be posted ends undeliverable at once, its requester told, never retried (S3).
 */

let modelsDir: string;
let t: TestEasel | undefined;
let slack: FakeSlack | undefined;
let discord: FakeDiscord | undefined;

beforeAll(async () => {
  modelsDir = await tinyAndSlowModelsDir();
});
afterAll(async () => {
  await rm(modelsDir, { recursive: true, force: true });
});
afterEach(async () => {
  await t?.stop();
  t = undefined;
  await slack?.close();
  slack = undefined;
  await discord?.close();
  discord = undefined;
});

function easel(): TestEasel {
  if (!t) throw new Error("easel is not running");
  return t;
}

async function stateOf(jobId: string, state: string, timeout = 30_000): Promise<void> {
  await expect
    .poll(() => easel().easel.store.jobs.getJob(jobId)?.state, { timeout, interval: 20 })
    .toBe(state);
}

// ---- Slack ------------------------------------------------------------------------------------------------

const GENERAL = "C0123456789";
const ALICE = "U0A11CE0001";

/** The bot scopes slack-app-manifest.yaml asks for: the fake grants exactly these. */
function manifestScopes(): string[] {
  const text = readFileSync("slack-app-manifest.yaml", "utf8");
  const bot = text.slice(text.indexOf("    bot:"), text.indexOf("\nsettings:"));
  return [...bot.matchAll(/^\s+- ([a-z:.]+)\s*$/gm)].map((m) => m[1] as string);
}

async function startSlack(dataDir?: string): Promise<FakeSlack> {
  const f =
    slack ?? (await FakeSlack.start({ scopes: manifestScopes(), users: [{ id: ALICE, name: "alice" }] }));
  slack = f;
  t = await startTestEasel(
    modelsDir,
    {
      SLACK_BOT_TOKEN: f.botToken,
      SLACK_APP_TOKEN: f.appToken,
      SLACK_API_URL: f.apiUrl,
      EASEL_MODEL: "tiny",
    },
    dataDir ? { dataDir } : {},
  );
  await f.socketConnected();
  return f;
}

async function slash(f: FakeSlack, text: string): Promise<string> {
  const payload = f.slashCommandPayload({ command: "/imagine", text });
  await f.sendEnvelope("slash_commands", payload, true).ack;
  const job = easel().easel.store.jobs.getJobByEventId(`slack:${payload.trigger_id}`);
  if (!job) throw new Error("no job");
  return job.id;
}

/** The bot's messages in #general as the member sees them (not ephemeral, not deleted), threads included. */
function seen(f: FakeSlack): FakeSlackMessage[] {
  return f.messages(GENERAL).filter((m) => !m.ephemeral && m.bot_id !== undefined && !m.deleted);
}

describe("Slack: answers lost after Slack did the work", () => {
  for (const how of ["500", "drop"] as const) {
    it(`an upload whose completion was answered ${how === "500" ? "500" : "by a dropped connection"} is found in the thread, not made again`, async () => {
      const f = await startSlack();
      f.loseAnswerNext("files.completeUploadExternal", { how });
      const jobId = await slash(f, "a lighthouse --size 64x64 --steps 2");
      await stateOf(jobId, "delivered");
      const uploads = seen(f).filter((m) => (m.files ?? []).length > 0);
      expect(uploads).toHaveLength(1);
      expect(f.calls.filter((c) => c.method === "files.completeUploadExternal")).toHaveLength(1);
      expect(f.calls.find((c) => c.method === "conversations.replies")?.ok).toBe(true);
      // The status message became the result card, once.
      const cards = seen(f).filter((m) => m.thread_ts === undefined);
      expect(cards).toHaveLength(1);
      expect(JSON.stringify(cards[0]?.blocks)).toContain(`r:${jobId}`);
      expect(f.violations).toEqual([]);
    });
  }

  it("a status message answered 500 is found by its delivery key: one status message, edited into the result", async () => {
    const f = await startSlack();
    f.loseAnswerNext("chat.postMessage");
    const jobId = await slash(f, "a lighthouse --size 64x64 --steps 2");
    await stateOf(jobId, "delivered");
    const top = seen(f).filter((m) => m.thread_ts === undefined);
    expect(top).toHaveLength(1);
    expect(top[0]?.metadata?.event_type).toBe("easel_delivery");
    expect(JSON.stringify(top[0]?.blocks)).toContain(`r:${jobId}`);
    expect(seen(f).filter((m) => (m.files ?? []).length > 0)).toHaveLength(1);
    expect(f.violations).toEqual([]);
  });
});

describe("Slack: a result that can never be posted", () => {
  it("the bot removed from the channel while rendering: undeliverable at once, images kept, a DM to the requester, no retry after a restart", async () => {
    const f = await startSlack();
    const jobId = await slash(f, "a lighthouse --model slow --steps 30 --size 64x64");
    await expect.poll(() => seen(f).length, { timeout: 10_000 }).toBe(1);
    f.setMember(GENERAL, false);
    await stateOf(jobId, "undeliverable", 60_000);
    const job = easel().easel.store.jobs.getJob(jobId);
    expect(job).toMatchObject({ deliveryAttempts: 1, errorCode: "delivery_failed" });
    await expect.poll(() => easel().easel.store.jobs.getJob(jobId)?.failureNotifiedAt).toBeDefined();
    expect(easel().easel.store.images.imagesForJob(jobId)).toHaveLength(1);
    const dm = f.messages(`D${ALICE.slice(1)}`);
    expect(dm).toHaveLength(1);
    expect(dm[0]?.text).toContain("easel is no longer a member of that channel");
    expect(dm[0]?.text).toContain(jobId);
    expect(f.calls.filter((c) => c.method === "files.completeUploadExternal")).toHaveLength(1);

    // Invited back and restarted: nothing is tried again, nobody is told twice.
    f.setMember(GENERAL, true);
    const { dataDir } = easel();
    await easel().stop({ keepData: true });
    const calls = f.calls.length;
    await startSlack(dataDir);
    await easel().easel.relay.idle();
    expect(f.calls.slice(calls).filter((c) => /^(files|chat)\./.test(c.method))).toEqual([]);
    expect(f.messages(`D${ALICE.slice(1)}`)).toHaveLength(1);
    expect(f.violations).toEqual([]);
  });
});

// ---- Discord ----------------------------------------------------------------------------------------------

async function startDiscord(options: Parameters<typeof FakeDiscord.start>[0] = {}, dataDir?: string) {
  const f = discord ?? (await FakeDiscord.start({ heartbeatIntervalMs: 1_000, ...options }));
  discord = f;
  t = await startTestEasel(
    modelsDir,
    { DISCORD_TOKEN: f.token, DISCORD_API_BASE: f.apiBase, EASEL_MODEL: "tiny" },
    dataDir ? { dataDir } : {},
  );
  return f;
}

const hasImage = (m: FakeMessage) => m.attachments.length > 0 && /ready/.test(m.content);

function buttons(message: FakeMessage): Map<string, string> {
  const out = new Map<string, string>();
  for (const row of message.components as { components: { label: string; custom_id: string }[] }[]) {
    for (const b of row.components) out.set(b.label, b.custom_id);
  }
  return out;
}

const FOLLOW_UP = /^\/webhooks\/\d+\/[^/]+$/;

describe("Discord: answers lost after Discord did the work", () => {
  it("a follow-up Discord made but answered 500 is found by its interaction, not posted again", async () => {
    const f = await startDiscord();
    const h = f.slashCommand({
      name: "imagine",
      options: [{ name: "prompt", value: "a lighthouse --size 64x64 --steps 2" }],
    });
    const done = await f.waitForOriginalMessage(h, hasImage, 30_000);
    // The upscale job's status message is a follow-up of the U press.
    f.loseAnswerNext((r) => r.method === "POST" && FOLLOW_UP.test(r.path));
    const u = f.pressButton({ messageId: done.id, customId: buttons(done).get("U1") ?? "" });
    const upscaled = await f.until(() => f.followUps(u).find(hasImage), 30_000, "the upscale result");
    await easel().easel.relay.idle();
    expect(f.followUps(u)).toHaveLength(1);
    expect(f.followUps(u)[0]?.id).toBe(upscaled.id);
    expect(f.requests.filter((r) => r.lostAnswer)).toHaveLength(1);
    expect(f.violations).toEqual([]);
  });

  for (const how of ["500", "drop"] as const) {
    it(`a channel message (the token died) answered ${how === "500" ? "500" : "by a dropped connection"} shows once`, async () => {
      let clock = Date.now();
      const f = await startDiscord({ now: () => clock });
      const h = f.slashCommand({
        name: "imagine",
        options: [{ name: "prompt", value: "late --model slow --steps 30 --size 64x64" }],
      });
      await f.waitForCallback(h);
      const channelId = f.interaction(h).channelId;
      const jobId = easel().easel.engine.activeJobs()[0]?.job.id ?? "";
      f.loseAnswerNext(
        (r) => r.method === "POST" && r.path === `/channels/${channelId}/messages` && r.files.length > 0,
        { how },
      );
      clock += 16 * 60_000;
      await stateOf(jobId, "delivered", 60_000);
      const results = f
        .messages(channelId)
        .filter((m) => m.attachments.length > 0 && m.webhook_id === undefined);
      expect(results).toHaveLength(1);
      expect(f.requests.filter((r) => r.lostAnswer)).toHaveLength(1);
      expect(f.violations).toEqual([]);
    });
  }
});

describe("Discord: a result that can never be posted", () => {
  it("the channel deleted while rendering (token dead): undeliverable at once, a DM to the requester, no retry after a restart", async () => {
    let clock = Date.now();
    const f = await startDiscord({ now: () => clock });
    const h = f.slashCommand({
      name: "imagine",
      options: [{ name: "prompt", value: "gone --model slow --steps 30 --size 64x64" }],
    });
    await f.waitForCallback(h);
    const jobId = easel().easel.engine.activeJobs()[0]?.job.id ?? "";
    const userId = f.interaction(h).user.id;
    f.removeChannel(f.interaction(h).channelId);
    clock += 16 * 60_000;
    await stateOf(jobId, "undeliverable", 60_000);
    await expect.poll(() => f.dmMessages(userId).length, { timeout: 10_000 }).toBe(1);
    expect(f.dmMessages(userId)[0]?.content).toContain("could not post it");
    expect(easel().easel.store.jobs.getJob(jobId)?.deliveryAttempts).toBe(1);
    expect(easel().easel.store.images.imagesForJob(jobId)).toHaveLength(1);

    const { dataDir } = easel();
    await easel().stop({ keepData: true });
    const requests = f.requests.length;
    await startDiscord({}, dataDir);
    await easel().easel.relay.idle();
    expect(f.requests.slice(requests).filter((r) => r.method === "POST" && /messages$/.test(r.path))).toEqual(
      [],
    );
    expect(f.dmMessages(userId)).toHaveLength(1);
  });
});
