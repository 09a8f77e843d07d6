import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { TINY_MODEL_VARIANTS, writeTinyModel } from "../src/backends/ldm/tiny-model.ts";
import type { Job } from "../src/core/job.ts";
import { BOT_MESSAGES } from "../src/core/messages.ts";
import { presentDone } from "../src/core/presenter.ts";
import { SLACK_EVENTS_PATH } from "../src/platforms/slack/slack-bot.ts";
import { startTestEasel, type TestEasel, TOKENIZER_DIR, tinyAndSlowModelsDir } from "./easel-harness.ts";
import {
  FakeSlack,
  type FakeSlackMessage,
  type FakeSlackOptions,
  signedPost,
} from "./fakes/fake-slack/index.ts";

/**
 * easel on Slack end to end: startEasel as `npm start` runs it (real store, engine, LDM worker with a tiny
 * model), the real @slack/bolt in Socket Mode or HTTP mode, and the fake Slack. Every test ends with no
 * request the real Slack would have refused (fake.violations).
 */

const GENERAL = "C0123456789";
const RANDOM = "C0987654321";
const ALICE = "U0A11CE0001";
/** A workspace admin by Slack's own flag (users.info is_admin). */
const ROOT = "U0AD0000001";
/** An easel admin by EASEL_ADMIN_IDS only. */
const CAROL = "U0CA201E001";
const BOB = "U0B0B000001";

/** The bot scopes slack-app-manifest.yaml asks for: the fake grants exactly these, so they must suffice. */
function manifestScopes(): string[] {
  const text = readFileSync("slack-app-manifest.yaml", "utf8");
  const bot = text.slice(text.indexOf("    bot:"), text.indexOf("\nsettings:"));
  return [...bot.matchAll(/^\s+- ([a-z:.]+)\s*$/gm)].map((m) => m[1] as string);
}

const FAKE_OPTIONS: FakeSlackOptions = {
  scopes: manifestScopes(),
  users: [
    { id: ALICE, name: "alice", realName: "Alice Example" },
    { id: ROOT, name: "root", realName: "Root Admin", isAdmin: true },
    { id: CAROL, name: "carol" },
    { id: BOB, name: "bob" },
  ],
};

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
  // easel (and with it the Slack app) first: a Socket Mode client that loses its server reconnects.
  await t?.stop();
  t = undefined;
  await fake?.close();
  fake = undefined;
});

async function startSocket(env: Record<string, string> = {}, dir = modelsDir): Promise<FakeSlack> {
  const f = await FakeSlack.start(FAKE_OPTIONS);
  fake = f;
  t = await startTestEasel(
    dir,
    {
      SLACK_BOT_TOKEN: f.botToken,
      SLACK_APP_TOKEN: f.appToken,
      SLACK_API_URL: f.apiUrl,
      EASEL_ADMIN_IDS: CAROL,
      EASEL_MODEL: "tiny",
      ...env,
    },
    process.env.SLACK_TEST_LOG ? { log: (line) => console.log(line) } : {},
  );
  await f.socketConnected();
  return f;
}

function easel(): TestEasel {
  if (!t) throw new Error("easel is not running");
  return t;
}

/** Sends `/imagine text` over Socket Mode; resolves with the ack and the job it made (if any). */
async function slash(f: FakeSlack, text: string, options: { userId?: string; channelId?: string } = {}) {
  const payload = f.slashCommandPayload({ command: "/imagine", text, ...options });
  const ack = await f.sendEnvelope("slash_commands", payload, true).ack;
  const job = easel().easel.store.jobs.getJobByEventId(`slack:${payload.trigger_id}`);
  return { ack, job, payload, ackText: asRead(String(ack.payload?.text ?? "")) };
}

/** Resolves once the job is delivered (its result posted and recorded). */
async function delivered(jobId: string): Promise<void> {
  await expect
    .poll(() => easel().easel.store.jobs.getJob(jobId)?.state, { timeout: 30_000, interval: 20 })
    .toBe("delivered");
}

/** Messages the bot posted in the channel (not ephemeral, not deleted). */
function botMessages(f: FakeSlack, channel = GENERAL): FakeSlackMessage[] {
  return f.messages(channel).filter((m) => !m.ephemeral && m.bot_id !== undefined && !m.deleted);
}

/** The status message of a job: the one whose buttons (or whose past buttons) name the job. */
function statusMessage(f: FakeSlack, jobId: string, channel = GENERAL): FakeSlackMessage {
  const found = botMessages(f, channel).find(
    (m) =>
      m.thread_ts === undefined &&
      [m.blocks, ...m.updates.map((u) => u.blocks)].some((b) => JSON.stringify(b ?? []).includes(jobId)),
  );
  if (!found) throw new Error(`no status message for job ${jobId}`);
  return found;
}

/** Every action_id in a message's blocks. */
function actionIds(blocks: unknown[] | undefined): string[] {
  return (blocks ?? []).flatMap((b) => {
    const elements = (b as { type: string; elements?: { action_id?: string }[] }).elements;
    return (b as { type: string }).type === "actions" ? (elements ?? []).map((e) => e.action_id ?? "") : [];
  });
}

/** Slack mrkdwn as the member reads it. */
const asRead = (text: string): string =>
  text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");

const blockText = (blocks: unknown[] | undefined): string => JSON.stringify(blocks ?? []);

function ephemeralsFor(f: FakeSlack, user: string, channel = GENERAL): string[] {
  return f
    .messages(channel)
    .filter((m) => m.ephemeral && m.ephemeralUser === user)
    .map((m) => m.text);
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("Slack in Socket Mode", () => {
  it("/imagine: an ephemeral queued ack, a channel status message with progress, the image in its thread, and the result card with buttons", async () => {
    const f = await startSocket();
    const { ack, job, ackText } = await slash(f, "a lighthouse --size 64x64 --steps 4 --seed 7");
    expect(ack.late).toBe(false);
    expect(ack.latencyMs).toBeLessThan(1000);
    expect(ackText).toMatch(/^Queued/);
    expect(job).toBeDefined();
    const jobId = (job as Job).id;
    expect(job?.request).toMatchObject({ prompt: "a lighthouse", width: 64, height: 64, steps: 4, seed: 7 });
    expect(job?.request.requester).toMatchObject({ platform: "slack", channelId: GENERAL, userId: ALICE });
    await delivered(jobId);

    // Only the member saw the ack.
    expect(f.messages(GENERAL).filter((m) => m.via === "ack")).toEqual([
      expect.objectContaining({ ephemeral: true, ephemeralUser: ALICE, text: ackText }),
    ]);
    // One status message, edited as the job ran and finally turned into the result card.
    const status = statusMessage(f, jobId);
    expect(status.via).toBe("chat.postMessage");
    const versions = [...status.updates.map((u) => u.text), status.text];
    expect(versions.some((v) => /Rendering… step \d\/4|Starting…/.test(v))).toBe(true);
    expect(status.updates.every((u) => u.by === "chat.update")).toBe(true);
    expect(actionIds(status.updates[0]?.blocks ?? status.blocks).length).toBeGreaterThan(0);
    const card = blockText(status.blocks);
    for (const field of ["Seed", "Steps", "CFG", "Sampler", "Size", "Model", "Prompt to rerun", "to render"])
      expect(card).toContain(field);
    expect(card).toContain("64×64");
    expect(card).toContain("--seed 7");
    expect(actionIds(status.blocks)).toEqual(
      expect.arrayContaining([`u:${jobId}:1`, `v:${jobId}:1`, `r:${jobId}`, `m:${jobId}`, `d:${jobId}`]),
    );
    // The image: uploaded once, into the status message's thread, mentioning the requester.
    expect(f.files).toHaveLength(1);
    const [file] = f.files;
    expect(file?.mimetype).toBe("image/png");
    expect(file?.shares).toEqual([expect.objectContaining({ channel: GENERAL, thread_ts: status.ts })]);
    const reply = f.messages(GENERAL).find((m) => m.files?.includes(file?.id ?? ""));
    expect(reply?.thread_ts).toBe(status.ts);
    expect(reply?.text).toContain(`<@${ALICE}>`);
    expect(botMessages(f).filter((m) => m.thread_ts === undefined)).toHaveLength(1);
    expect(f.violations).toEqual([]);
  });

  it("a V1 press queues a variation with its own status message and result; the owner may reroll, others may not delete", async () => {
    const f = await startSocket();
    const first = (await slash(f, "a lighthouse --size 64x64 --steps 4")).job as Job;
    await delivered(first.id);

    const press = f.blockAction({ actionId: `v:${first.id}:1`, userId: ALICE });
    expect((await press.ack).late).toBe(false);
    const variation = await childOf(first.id, "variation");
    expect(variation.request.init).toBeDefined();
    expect(variation.request.requester.userId).toBe(ALICE);
    await delivered(variation.id);
    const status = statusMessage(f, variation.id);
    expect(status.ts).not.toBe(statusMessage(f, first.id).ts);
    expect(actionIds(status.blocks)).toContain(`r:${variation.id}`);
    expect(f.files.filter((file) => file.shares.some((s) => s.thread_ts === status.ts))).toHaveLength(1);
    // The press was answered only to the presser, through its response_url.
    const answers = f.responseUrlRecords.filter((r) => r.kind === "interactive");
    expect(answers[0]?.posts.map((p) => p.status)).toEqual([200]);
    expect(ephemeralsFor(f, ALICE).some((text) => /^Queued/.test(text))).toBe(true);

    await f.blockAction({ actionId: `r:${first.id}`, userId: ALICE }).ack;
    const reroll = await childOf(first.id, "reroll");
    expect(reroll.request.seed).not.toBe(first.request.seed);
    await delivered(reroll.id);

    await f.blockAction({ actionId: `d:${first.id}`, userId: BOB }).ack;
    await f.waitFor(
      (c) => c.method === "response_url" && c.params.text === BOT_MESSAGES.onlyOwnerOrAdmin("delete"),
    );
    expect(statusMessage(f, first.id).deleted).toBe(false);
    expect(f.violations).toEqual([]);
  });

  it("cancels a queued job from its status message's button and a running one with `/imagine cancel ID`", async () => {
    const f = await startSocket();
    // The bench-sized model at 512² takes tens of milliseconds a step: still rendering when the cancel comes.
    const slow = (await slash(f, "a slow one --model slow --steps 150")).job as Job;
    const waiting = (await slash(f, "a second one --size 64x64 --steps 4")).job as Job;
    await expect.poll(() => easel().easel.store.jobs.getJob(slow.id)?.state).toBe("running");
    await expect.poll(() => actionIds(statusMessage(f, waiting.id).blocks)).toContain(`x:${waiting.id}`);

    await f.blockAction({ actionId: `x:${waiting.id}`, userId: ALICE }).ack;
    await expect.poll(() => easel().easel.store.jobs.getJob(waiting.id)?.state).toBe("cancelled");
    await expect.poll(() => statusMessage(f, waiting.id).text).toContain("Cancelled.");
    expect(actionIds(statusMessage(f, waiting.id).blocks)).toEqual([]);

    const refused = await slash(f, `cancel ${slow.id}`, { userId: BOB });
    expect(refused.ackText).toBe(BOT_MESSAGES.onlyOwnerOrAdmin("cancel"));
    expect(refused.job).toBeUndefined();
    const cancel = await slash(f, `cancel ${slow.id}`);
    expect(cancel.ackText).toBe(BOT_MESSAGES.cancelRequested);
    await expect
      .poll(() => easel().easel.store.jobs.getJob(slow.id)?.state, { timeout: 10_000 })
      .toBe("cancelled");
    await expect.poll(() => statusMessage(f, slow.id).text).toContain("Cancelled.");
    expect(easel().easel.engine.activeJobs()).toEqual([]);
    expect(f.files).toEqual([]);
    expect(f.violations).toEqual([]);
  });

  it("in a channel the bot is not in: the ephemeral ack turns into how to invite it, and nothing stays queued", async () => {
    const f = await startSocket();
    const { job, ackText } = await slash(f, "a lighthouse --size 64x64 --steps 4", { channelId: RANDOM });
    expect(ackText).toMatch(/^Queued/);
    // A job cancelled while its worker still loads the model stops only after that render (the supervisor
    // checks the signal before the load, not after), so allow for one render. On a loaded machine the tiny
    // render can even end before Slack's refusal arrives: the result then ends undeliverable at once
    // (not_in_channel is permanent). Either way nothing stays queued and nothing reaches the channel.
    await expect
      .poll(() => easel().easel.store.jobs.getJob(job?.id ?? "")?.state, { timeout: 15_000 })
      .toSatisfy((state) => state === "cancelled" || state === "undeliverable");
    await expect.poll(() => ephemeralsFor(f, ALICE, RANDOM)).toEqual([BOT_MESSAGES.notInChannel]);
    expect(easel().easel.engine.activeJobs()).toEqual([]);
    expect(botMessages(f, RANDOM)).toEqual([]);
    expect(f.files).toEqual([]);
    // Invited, the same command works.
    f.setMember(RANDOM, true);
    const again = await slash(f, "a lighthouse --size 64x64 --steps 4", { channelId: RANDOM });
    await delivered(again.job?.id ?? "");
    expect(botMessages(f, RANDOM).filter((m) => m.thread_ts === undefined)).toHaveLength(1);
    expect(f.violations).toEqual([]);
  });

  it("help, settings (admins by EASEL_ADMIN_IDS or Slack's admin flag; refused for others), queue, info, and prompts that start with a command's name", async () => {
    const f = await startSocket();
    const help = await slash(f, "help");
    for (const text of [
      "settings set <key> <value>",
      "cancel [job]",
      "queue [--all]",
      "info",
      "Imagine this",
    ])
      expect(help.ackText).toContain(text);

    expect((await slash(f, "settings set steps 12")).ackText).toBe(
      BOT_MESSAGES.adminsOnly("change settings"),
    );
    expect((await slash(f, "settings set steps 12", { userId: CAROL })).ackText).toBe(
      "steps set to 12 for this server.",
    );
    expect((await slash(f, "settings set sampler euler --scope channel", { userId: ROOT })).ackText).toBe(
      "sampler set to euler for this channel.",
    );
    expect((await slash(f, "settings set stepz 12", { userId: CAROL })).ackText).toMatch(/^the key option/);
    const shown = (await slash(f, "settings")).ackText;
    expect(shown).toContain("steps: 12");
    expect(shown).toContain("sampler: euler");
    expect((await slash(f, "queue")).ackText).toBe(BOT_MESSAGES.nothingQueued);
    expect((await slash(f, "info")).ackText).toMatch(/^easel test · device: cpu/);

    const { job } = await slash(f, "info graphic of a whale --size 64x64");
    expect(job?.request).toMatchObject({ prompt: "info graphic of a whale", steps: 12, sampler: "euler" });
    const queue = await slash(f, "queue");
    expect(queue.ackText).toContain(job?.id);
    await delivered(job?.id ?? "");
    expect(f.violations).toEqual([]);
  });

  it("a job goes on and is delivered when the Socket Mode connection drops; a second result() posts nothing more", async () => {
    const f = await startSocket();
    const { job } = await slash(f, "a lighthouse --size 64x64 --steps 4");
    f.dropSocket();
    const jobId = (job as Job).id;
    await delivered(jobId);
    expect(f.files).toHaveLength(1);
    expect(actionIds(statusMessage(f, jobId).blocks)).toContain(`r:${jobId}`);

    // The relay may hand a result out again (a retry, a restart after the upload): it is not uploaded twice.
    const { easel: e } = easel();
    const images = await e.services.jobs.images(jobId);
    const model = presentDone(e.store.jobs.getJob(jobId) as Job, images, [], 10);
    const files = images.map((i) => ({
      imageId: i.id,
      filename: "again.png",
      bytes: i.png,
      width: 64,
      height: 64,
    }));
    const again = e.store.jobs.getJob(jobId) as Job;
    await e.slack?.jobOutlet.result(again, e.slack.jobOutlet.recorded(again), model, files);
    expect(f.files).toHaveLength(1);
    expect(f.violations).toEqual([]);
  });

  it('"Imagine this" draws a message\'s text', async () => {
    const f = await startSocket();
    const source = f.addUserMessage(GENERAL, { text: "a cat in a hat --size 64x64 --steps 4", user: BOB });
    await f.messageShortcut({
      callbackId: "imagine_this",
      message: { text: source.text, ts: source.ts, user: source.user },
      userId: ALICE,
    }).ack;
    await expect.poll(() => easel().easel.store.jobs.listJobs().length).toBe(1);
    const [job] = easel().easel.store.jobs.listJobs();
    expect(job?.request).toMatchObject({ prompt: "a cat in a hat", width: 64 });
    expect(job?.request.requester.userId).toBe(ALICE);
    await delivered(job?.id ?? "");
    expect(statusMessage(f, job?.id ?? "").blocks).toBeDefined();
    expect(ephemeralsFor(f, ALICE).some((text) => /^Queued/.test(text))).toBe(true);
    expect(f.violations).toEqual([]);
  });
});

describe("Slack across a restart", () => {
  it("a job rendering when easel stops is rendered again after the restart and delivered once, in the same status message", async () => {
    const dir = await mkdtemp(join(tmpdir(), "easel-models-"));
    await writeTinyModel(join(dir, "bench"), TINY_MODEL_VARIANTS.bench, TOKENIZER_DIR);
    try {
      const f = await startSocket({ EASEL_MODEL: "bench" }, dir);
      const { job } = await slash(f, "a lighthouse in a storm --size 512x512 --steps 30");
      const jobId = (job as Job).id;
      const engine = easel().easel.engine;
      await new Promise<void>((resolve) => {
        const onProgress = (e: { job: Job }) => {
          if (e.job.id !== jobId) return;
          engine.off("progress", onProgress);
          resolve();
        };
        engine.on("progress", onProgress);
      });
      const { dataDir } = easel();
      await easel().stop({ graceMs: 0, keepData: true });
      t = undefined;
      expect(f.files).toEqual([]);

      t = await startTestEasel(
        dir,
        {
          SLACK_BOT_TOKEN: f.botToken,
          SLACK_APP_TOKEN: f.appToken,
          SLACK_API_URL: f.apiUrl,
        },
        { dataDir },
      );
      await delivered(jobId);
      await easel().easel.relay.idle();

      expect(f.socketConnects).toBe(2);
      const status = statusMessage(f, jobId);
      expect(botMessages(f).filter((m) => m.thread_ts === undefined)).toEqual([status]);
      expect(f.files).toHaveLength(1);
      expect(f.files[0]?.shares).toEqual([expect.objectContaining({ thread_ts: status.ts })]);
      expect(actionIds(status.blocks)).toContain(`r:${jobId}`);
      expect(easel().easel.store.jobs.getJob(jobId)?.attempts).toBe(1);
      expect(f.violations).toEqual([]);
    } finally {
      await t?.stop();
      t = undefined;
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("Slack over HTTP", () => {
  it("serves a signed /imagine and button press, and answers a bad signature or a stale timestamp with 401, queuing nothing", async () => {
    const f = await FakeSlack.start(FAKE_OPTIONS);
    fake = f;
    const port = await freePort();
    t = await startTestEasel(modelsDir, {
      EASEL_MODEL: "tiny",
      SLACK_BOT_TOKEN: f.botToken,
      SLACK_SIGNING_SECRET: f.signingSecret,
      SLACK_API_URL: f.apiUrl,
      SLACK_PORT: String(port),
    });
    const url = `http://127.0.0.1:${port}${SLACK_EVENTS_PATH}`;
    const secret = { signingSecret: f.signingSecret };
    const command = (text: string) => f.slashCommandPayload({ command: "/imagine", text });
    const jobs = () => easel().easel.store.jobs.listJobs().length;

    const tampered = await signedPost(url, "command", command("forged --size 64x64"), {
      ...secret,
      tamper: true,
    });
    expect(tampered.status).toBe(401);
    const wrong = await signedPost(url, "command", command("forged --size 64x64"), { signingSecret: "nope" });
    expect(wrong.status).toBe(401);
    const stale = await signedPost(url, "command", command("stale --size 64x64"), {
      ...secret,
      timestamp: Math.floor(Date.now() / 1000) - 5 * 60 - 1,
    });
    expect(stale.status).toBe(401);
    expect(jobs()).toBe(0);

    const started = performance.now();
    const good = await signedPost(url, "command", command("a lighthouse --size 64x64 --steps 4"), secret);
    expect(performance.now() - started).toBeLessThan(3000);
    expect(good.status).toBe(200);
    expect(JSON.parse(good.body)).toMatchObject({
      response_type: "ephemeral",
      text: expect.stringMatching(/^Queued/),
    });
    expect(jobs()).toBe(1);
    const [job] = easel().easel.store.jobs.listJobs();
    await delivered(job?.id ?? "");
    const status = statusMessage(f, job?.id ?? "");
    expect(f.files[0]?.shares).toEqual([expect.objectContaining({ thread_ts: status.ts })]);

    const press = f.blockActionPayload({ actionId: `r:${job?.id}`, userId: ALICE });
    const forgedPress = await signedPost(url, "interactive", press, { ...secret, tamper: true });
    expect(forgedPress.status).toBe(401);
    expect(jobs()).toBe(1);
    expect((await signedPost(url, "interactive", press, secret)).status).toBe(200);
    const reroll = await childOf(job?.id ?? "", "reroll");
    await delivered(reroll.id);
    expect(f.files).toHaveLength(2);
    expect(f.violations).toEqual([]);
  });
});

/** The job made from `parentId` by a button of `kind`. */
async function childOf(parentId: string, kind: string): Promise<Job> {
  let found: Job | undefined;
  await expect
    .poll(() => {
      found = easel()
        .easel.store.jobs.listJobs()
        .find((j) => j.request.parent?.jobId === parentId && j.request.parent.kind === kind);
      return found !== undefined;
    })
    .toBe(true);
  return found as Job;
}
