import { readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Job } from "../src/core/job.ts";
import { startTestEasel, type TestEasel, tinyAndSlowModelsDir } from "./easel-harness.ts";
import { FakeSlack, type FakeSlackMessage } from "./fakes/fake-slack/index.ts";

/**
 * The Slack posts that a button or a contest makes, each on core's keyed path: the U button's image, "how it
 * was made", the contest's announcement and the undeliverable DM carry a delivery key and are looked up when
 * Slack's answer is lost, so that a lost answer never makes a second post (the fake performs the call, then
 * answers 500).
 */

const GENERAL = "C0123456789";
const ALICE = "U0A11CE0001";
const BOB = "U0B0B000001";

let modelsDir: string;
let fake: FakeSlack | undefined;
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

function manifestScopes(): string[] {
  const text = readFileSync("slack-app-manifest.yaml", "utf8");
  const bot = text.slice(text.indexOf("    bot:"), text.indexOf("\nsettings:"));
  return [...bot.matchAll(/^\s+- ([a-z:.]+)\s*$/gm)].map((m) => m[1] as string);
}

async function start(): Promise<{ f: FakeSlack; e: TestEasel }> {
  const f = await FakeSlack.start({
    scopes: manifestScopes(),
    users: [ALICE, BOB].map((id) => ({ id, name: id.toLowerCase() })),
  });
  fake = f;
  t = await startTestEasel(modelsDir, {
    SLACK_BOT_TOKEN: f.botToken,
    SLACK_APP_TOKEN: f.appToken,
    SLACK_API_URL: f.apiUrl,
    EASEL_MODEL: "tiny",
  });
  await f.socketConnected();
  return { f, e: t };
}

async function slash(f: FakeSlack, e: TestEasel, text: string): Promise<Job> {
  const payload = f.slashCommandPayload({ command: "/imagine", text, userId: ALICE });
  await f.sendEnvelope("slash_commands", payload, true).ack;
  const job = e.easel.store.jobs.getJobByEventId(`slack:${payload.trigger_id}`);
  if (!job) throw new Error("no job");
  return job;
}

async function stateOf(e: TestEasel, jobId: string, state: string, timeout = 30_000): Promise<void> {
  await expect.poll(() => e.easel.store.jobs.getJob(jobId)?.state, { timeout, interval: 20 }).toBe(state);
}

/** The bot's messages in a channel as members see them, threads included. */
function seen(f: FakeSlack, channel = GENERAL): FakeSlackMessage[] {
  return f.messages(channel).filter((m) => !m.ephemeral && m.bot_id !== undefined && !m.deleted);
}

describe("Slack posts made by buttons and contests, answers lost", () => {
  it("a U press whose upload was answered 500 posts the image at full size once, and the upscale goes on", async () => {
    const { f, e } = await start();
    const job = await slash(f, e, "a lighthouse --size 64x64 --steps 2");
    await stateOf(e, job.id, "delivered");
    f.loseAnswerNext("files.completeUploadExternal");
    await f.blockAction({ actionId: `u:${job.id}:1`, userId: ALICE }).ack;
    await expect
      .poll(() => seen(f).filter((m) => /at full size/.test(m.text)).length, { timeout: 10_000 })
      .toBe(1);
    await expect
      .poll(
        () =>
          e.easel.store.jobs.listJobs().find((j) => j.request.parent?.jobId === job.id)?.request.parent?.kind,
      )
      .toBe("upscale");
    const child = e.easel.store.jobs.listJobs().find((j) => j.request.parent?.jobId === job.id) as Job;
    await stateOf(e, child.id, "delivered");
    await e.easel.relay.idle();
    const alone = seen(f).filter((m) => /at full size/.test(m.text));
    expect(alone).toHaveLength(1);
    expect(alone[0]?.text).toContain(`<@${ALICE}>`);
    expect(f.calls.filter((c) => c.lostAnswer)).toHaveLength(1);
    expect(f.calls.find((c) => c.method === "conversations.replies")?.ok).toBe(true);
    const recorded = e.easel.store.deliveries.deliveriesForJob(job.id, "image");
    expect(recorded).toHaveLength(1);
    expect(recorded[0]?.messageId).toMatch(/^F/);
    expect(f.violations).toEqual([]);
  });

  it('"how it was made" whose upload was answered 500 posts its animation once, in the result\'s thread', async () => {
    const { f, e } = await start();
    const job = await slash(f, e, "a lighthouse in a storm --steps 8 --size 128x128");
    await stateOf(e, job.id, "delivered");
    const status = seen(f).find((m) => m.thread_ts === undefined);
    f.loseAnswerNext("files.completeUploadExternal");
    await f.blockAction({ actionId: `m:${job.id}`, userId: ALICE }).ack;
    await expect
      .poll(() => e.easel.store.deliveries.deliveriesForJob(job.id, "explanation")[0]?.messageId, {
        timeout: 10_000,
      })
      .toBeDefined();
    const told = seen(f).filter((m) => /How it was made/.test(m.text));
    expect(told).toHaveLength(1);
    expect(told[0]?.thread_ts).toBe(status?.ts);
    const gif = f.files.find((file) => told[0]?.files?.includes(file.id));
    expect(gif?.name).toMatch(/-denoising\.gif$/);
    expect(gif?.title).toBe(`easel-${job.id}-denoising.gif`);
    expect(f.violations).toEqual([]);
  });

  it("a contest's winner announced with a lost answer is found in the channel and posted once", async () => {
    const { f, e } = await start();
    const job = await slash(f, e, "contest --size 64x64 --steps 2 --n 2 --vote 10m");
    await stateOf(e, job.id, "delivered");
    await expect.poll(() => e.easel.store.votes.ballot(job.id)?.kind).toBe("contest");
    await f.blockAction({ actionId: `b:${job.id}:2`, userId: BOB }).ack;
    await expect.poll(() => e.easel.store.votes.tally(job.id).total).toBe(1);
    f.loseAnswerNext("files.completeUploadExternal");
    await e.easel.contests.close(job.id);
    const posted = seen(f).filter((m) => /wins with/.test(m.text));
    expect(posted).toHaveLength(1);
    expect(f.calls.filter((c) => c.lostAnswer)).toHaveLength(1);
    const winner = f.files.find((file) => /-2-winner\.png$/.test(file.name));
    expect(winner?.title).toBe(`easel-${job.id}-2-winner.png`);
    expect(e.easel.store.deliveries.deliveriesForJob(job.id, "announcement")).toEqual([
      expect.objectContaining({ messageId: winner?.id }),
    ]);
    // Closed again (a second timer, a restart): nothing more is posted.
    await e.easel.contests.close(job.id);
    expect(seen(f).filter((m) => /wins with|closed with/.test(m.text))).toHaveLength(1);
    expect(f.violations).toEqual([]);
  });

  it("a contest closed with no votes is announced in one message, also when its answer was lost", async () => {
    const { f, e } = await start();
    const job = await slash(f, e, "quiet --size 64x64 --steps 2 --n 2 --vote 10m");
    await stateOf(e, job.id, "delivered");
    await expect.poll(() => e.easel.store.votes.ballot(job.id)?.kind).toBe("contest");
    f.loseAnswerNext("chat.postMessage");
    await e.easel.contests.close(job.id);
    const posted = seen(f).filter((m) => /closed with no votes/.test(m.text));
    expect(posted).toHaveLength(1);
    expect(posted[0]?.metadata?.event_type).toBe("easel_delivery");
    expect(f.calls.filter((c) => c.lostAnswer)).toHaveLength(1);
    expect(f.violations).toEqual([]);
  });

  it("the DM that a result cannot be posted is sent once when its answer is lost", async () => {
    const { f, e } = await start();
    const job = await slash(f, e, "a lighthouse --model slow --steps 30 --size 64x64");
    await expect.poll(() => seen(f).length, { timeout: 10_000 }).toBe(1);
    // The next chat.postMessage is the DM: the status message is posted already, and edits are chat.update.
    f.loseAnswerNext("chat.postMessage");
    f.setMember(GENERAL, false);
    await stateOf(e, job.id, "undeliverable", 60_000);
    await expect.poll(() => e.easel.store.jobs.getJob(job.id)?.failureNotifiedAt).toBeDefined();
    const dm = f.messages(`D${ALICE.slice(1)}`);
    expect(dm).toHaveLength(1);
    expect(dm[0]?.text).toContain(job.id);
    expect(f.calls.filter((c) => c.lostAnswer)).toHaveLength(1);
    expect(f.violations).toEqual([]);
  });
});
