import { readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Job } from "../src/core/job.ts";
import { Store } from "../src/store/index.ts";
import { startTestEasel, type TestEasel, tinyAndSlowModelsDir } from "./easel-harness.ts";
import { FakeSlack, type FakeSlackMessage } from "./fakes/fake-slack/index.ts";

/**
 * Voting on Slack end to end, the same flows as on Discord through the same core: votes on variants (move,
 * double clicks, bots, self-votes), a contest closed across a restart with its winner announced once, `/imagine
 * top`, and the blind arena (`/imagine compare …`) revealed with Elo ratings.
 */

const GENERAL = "C0123456789";
const ALICE = "U0A11CE0001";
const BOB = "U0B0B000001";
const CAROL = "U0CA201E001";
const DAVE = "U0DA7E00001";

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

function scopes(): string[] {
  const text = readFileSync("slack-app-manifest.yaml", "utf8");
  const bot = text.slice(text.indexOf("    bot:"), text.indexOf("\nsettings:"));
  return [...bot.matchAll(/^\s+- ([a-z:.]+)\s*$/gm)].map((m) => m[1] as string);
}

const env = (f: FakeSlack) => ({
  SLACK_BOT_TOKEN: f.botToken,
  SLACK_APP_TOKEN: f.appToken,
  SLACK_API_URL: f.apiUrl,
  EASEL_MODEL: "tiny",
});

async function start(extra: Record<string, string> = {}) {
  const f = await FakeSlack.start({
    scopes: scopes(),
    users: [ALICE, BOB, CAROL, DAVE].map((id) => ({ id, name: id.toLowerCase() })),
  });
  fake = f;
  t = await startTestEasel(modelsDir, { ...env(f), ...extra });
  await f.socketConnected();
  return { f, e: t };
}

function easel(): TestEasel {
  if (!t) throw new Error("easel is not running");
  return t;
}

async function slash(f: FakeSlack, text: string, userId = ALICE) {
  const payload = f.slashCommandPayload({ command: "/imagine", text, userId });
  const ack = await f.sendEnvelope("slash_commands", payload, true).ack;
  const job = easel().easel.store.jobs.getJobByEventId(`slack:${payload.trigger_id}`);
  return { job, ackText: String(ack.payload?.text ?? "") };
}

async function delivered(jobId: string): Promise<void> {
  await expect
    .poll(() => easel().easel.store.jobs.getJob(jobId)?.state, { timeout: 30_000, interval: 20 })
    .toBe("delivered");
}

/** The job's status message (the result card once delivered). */
function card(f: FakeSlack, jobId: string): FakeSlackMessage {
  const found = f
    .messages(GENERAL)
    .find((m) => !m.ephemeral && m.thread_ts === undefined && JSON.stringify(m.blocks ?? []).includes(jobId));
  if (!found) throw new Error(`no card for ${jobId}`);
  return found;
}

/** The labels of a message's buttons, by value (the core's button id). */
function labels(message: FakeSlackMessage): Map<string, string> {
  const out = new Map<string, string>();
  for (const b of (message.blocks ?? []) as {
    type: string;
    elements?: { value?: string; text?: { text: string } }[];
  }[]) {
    if (b.type !== "actions") continue;
    for (const e of b.elements ?? []) if (e.value) out.set(e.value, e.text?.text ?? "");
  }
  return out;
}

async function vote(f: FakeSlack, ballotId: string, choice: number, userId: string) {
  return f.blockAction({ actionId: `b:${ballotId}:${choice}`, userId }).ack;
}

const ephemerals = (f: FakeSlack, user: string) =>
  f
    .messages(GENERAL)
    .filter((m) => m.ephemeral && m.ephemeralUser === user)
    .map((m) => m.text);

describe("votes on Slack", () => {
  it("one vote per member, moved by another choice, counted on the card; bots and self-votes refused; fifty presses make one vote", async () => {
    const { f, e } = await start();
    const job = (await slash(f, "a lighthouse --size 64x64 --steps 2 --n 2")).job as Job;
    await delivered(job.id);
    expect(labels(card(f, job.id)).get(`b:${job.id}:1`)).toBe("🗳 1");

    await vote(f, job.id, 1, BOB);
    await expect.poll(() => ephemerals(f, BOB).join("\n")).toMatch(/Your vote for image 1 counts/);
    await expect.poll(() => labels(card(f, job.id)).get(`b:${job.id}:1`), { timeout: 8_000 }).toBe("🗳 1 · 1");
    await vote(f, job.id, 2, BOB);
    await expect.poll(() => e.easel.store.votes.tally(job.id).counts).toEqual([0, 1]);

    await vote(f, job.id, 1, ALICE);
    await expect.poll(() => ephemerals(f, ALICE).join("\n")).toMatch(/cannot vote on your own/);

    const botPress = f.blockActionPayload({ actionId: `b:${job.id}:1`, userId: DAVE });
    (botPress.user as { is_bot?: boolean }).is_bot = true;
    await f.sendEnvelope("interactive", botPress).ack;
    await expect.poll(() => ephemerals(f, DAVE).join("\n")).toMatch(/Bots and apps cannot vote/);

    await Promise.all(Array.from({ length: 50 }, () => vote(f, job.id, 1, CAROL)));
    await expect.poll(() => e.easel.store.votes.tally(job.id).counts).toEqual([1, 1]);
    const rows = e.easel.store.db
      .prepare("SELECT count(*) AS n FROM votes WHERE voter_id = ?")
      .get(CAROL) as {
      n: number;
    };
    expect(rows.n).toBe(1);
    expect(f.violations).toEqual([]);
  });

  it("a contest closes across a restart: the winner is announced once with its image, late votes are refused", async () => {
    const { f, e } = await start();
    const job = (await slash(f, "contest --size 64x64 --steps 2 --vote 10m")).job as Job;
    expect(job.request.count).toBe(4);
    await delivered(job.id);
    await expect.poll(() => e.easel.store.votes.ballot(job.id)?.kind).toBe("contest");
    await vote(f, job.id, 2, BOB);
    await vote(f, job.id, 2, CAROL);
    await vote(f, job.id, 4, DAVE);
    await expect.poll(() => e.easel.store.votes.tally(job.id).total).toBe(3);
    await e.stop({ keepData: true });
    const offline = Store.open(e.dataDir);
    offline.db.prepare("UPDATE ballots SET closes_at = ? WHERE id = ?").run(Date.now() - 1, job.id);
    offline.close();
    t = await startTestEasel(modelsDir, env(f), { dataDir: e.dataDir });
    await f.socketConnected();
    await expect
      .poll(() => f.messages(GENERAL).find((m) => /wins with/.test(m.text)), { timeout: 10_000 })
      .toBeDefined();
    const posted = f.messages(GENERAL).filter((m) => /wins with/.test(m.text));
    expect(posted).toHaveLength(1);
    expect(posted[0]?.text).toMatch(/Image 2 of <@U0A11CE0001> wins with 2 of 3 votes/);
    const winner = f.files.find((file) => /-2-winner\.png$/.test(file.name));
    expect(winner?.shares).toEqual([expect.objectContaining({ channel: GENERAL })]);
    await vote(f, job.id, 1, BOB);
    await expect.poll(() => ephemerals(f, BOB).join("\n")).toMatch(/Voting closed/);
    expect(f.violations).toEqual([]);
  });

  it("/imagine top and the arena: blind A and B, a reveal with Elo, and the models' leaderboard", async () => {
    const { f, e } = await start();
    const job = (await slash(f, "popular --size 64x64 --steps 2 --n 2")).job as Job;
    await delivered(job.id);
    await vote(f, job.id, 2, BOB);
    await expect.poll(() => e.easel.store.votes.tally(job.id).total).toBe(1);
    const top = await slash(f, "top day");
    expect(top.ackText).toMatch(/1\. 1 vote · <@U0A11CE0001> · popular/);

    const compare = await slash(f, "compare a red bicycle");
    expect(compare.job).toBeUndefined();
    await expect.poll(() => e.easel.store.db.prepare("SELECT id FROM arena_matches").get()).toBeDefined();
    const { id: matchId } = e.easel.store.db.prepare("SELECT id FROM arena_matches").get() as { id: string };
    const stored = e.easel.store.votes.match(matchId);
    if (!stored) throw new Error("no match");
    await delivered(stored.jobA);
    await delivered(stored.jobB);
    const sides = f
      .messages(GENERAL)
      .filter(
        (m) => !m.ephemeral && m.thread_ts === undefined && JSON.stringify(m.blocks ?? []).includes(matchId),
      );
    expect(sides.map((m) => [...labels(m).values()])).toEqual([
      ["🗳 A", "🗳 B"],
      ["🗳 A", "🗳 B"],
    ]);
    for (const side of sides) expect(JSON.stringify(side.blocks)).not.toMatch(/tiny|slow|ldm/);
    await expect.poll(() => e.easel.store.votes.ballot(matchId)?.closesAt).toBeDefined();
    await vote(f, matchId, 1, BOB);
    await vote(f, matchId, 1, CAROL);
    await vote(f, matchId, 2, DAVE);
    await expect.poll(() => e.easel.store.votes.tally(matchId).total).toBe(3);
    await e.easel.contests.close(matchId);
    const reveal = f.messages(GENERAL).find((m) => /Arena revealed/.test(m.text));
    expect(reveal?.text).toMatch(/A wins, 2–1/);
    expect(JSON.stringify(reveal?.blocks)).toContain(`${stored.modelA} · 2 votes · Elo 1016 (+16)`);
    const board = await slash(f, "leaderboard models");
    expect(board.ackText).toContain(`1. ${stored.modelA} · Elo 1016`);
    expect(f.violations).toEqual([]);
  });
});
