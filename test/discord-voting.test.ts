import { rm } from "node:fs/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { castVote, startArena } from "../src/core/ballots.ts";
import { parseButtonId } from "../src/core/buttons.ts";
import { DOUBLE_CLICK_MS } from "../src/core/voting.ts";
import { Store } from "../src/store/index.ts";
import { actor, startTestEasel, type TestEasel, tinyAndSlowModelsDir } from "./easel-harness.ts";
import {
  FakeDiscord,
  type FakeMessage,
  type InteractionHandle,
  subcommand,
} from "./fakes/fake-discord/index.ts";

/**
 * Voting on Discord end to end: votes on variants (move, take back, double clicks, bots, self-votes, deleted
 * results), contests that close and announce a winner (also across a restart), `/top`, and the blind arena
 * with its Elo ratings. Nothing here sleeps: the double-click window runs on vitest's fake Date (easel reads a
 * press's time from Date.now; the fake Discord keeps the real clock it took at its start), and the contests'
 * deadlines are moved in the database or closed directly.
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
  vi.useRealTimers();
  await t?.stop();
  t = undefined;
  await fake?.close();
  fake = undefined;
});

const env = (f: FakeDiscord) => ({
  DISCORD_TOKEN: f.token,
  DISCORD_API_BASE: f.apiBase,
  EASEL_MODEL: "tiny",
});

async function start(extra: Record<string, string> = {}) {
  fake = await FakeDiscord.start({ heartbeatIntervalMs: 1_000 });
  t = await startTestEasel(modelsDir, { ...env(fake), ...extra });
  return { f: fake, e: t };
}

const isResult = (m: FakeMessage) => m.attachments.length > 0 && /ready/.test(m.content);

function buttons(message: FakeMessage): Map<string, string> {
  const out = new Map<string, string>();
  for (const row of message.components as { components: { label: string; custom_id: string }[] }[]) {
    for (const b of row.components) out.set(b.label, b.custom_id);
  }
  return out;
}

function voteId(message: FakeMessage, choice: string): string {
  for (const [label, id] of buttons(message)) if (label.startsWith(`🗳 ${choice}`)) return id;
  throw new Error(`no vote button ${choice} in ${[...buttons(message).keys()].join(", ")}`);
}

const replyText = (f: FakeDiscord, h: InteractionHandle) =>
  (f.callback(h)?.body as { data?: { content?: string } } | undefined)?.data?.content ?? "";

const ALICE = "1200000000000000011";
const BOB = "1300000000000000001";
const CAROL = "1300000000000000002";

async function result(
  f: FakeDiscord,
  prompt: string,
  userId = ALICE,
): Promise<{ h: InteractionHandle; message: FakeMessage }> {
  const h = f.slashCommand({ name: "imagine", userId, options: [{ name: "prompt", value: prompt }] });
  return { h, message: await f.waitForOriginalMessage(h, isResult, 30_000) };
}

describe("votes on variants", () => {
  it("counts one vote per member: a second choice moves it, the same one later takes it back, and the tally shows", async () => {
    const { f, e } = await start();
    const { message } = await result(f, "a lighthouse --size 64x64 --steps 2 --n 2");
    const ballot = parseButtonId(voteId(message, "1"));
    if (!ballot.ok) throw new Error(ballot.reason);
    const jobId = ballot.value.jobId;

    const v1 = f.pressButton({ messageId: message.id, customId: voteId(message, "1"), userId: BOB });
    expect((await f.waitForCallback(v1)).type).toBe(6);
    await f.until(() => f.followUps(v1)[0], 5_000, "the vote's confirmation");
    expect(f.followUps(v1)[0]?.content).toMatch(/Your vote for image 1 counts/);
    expect(e.easel.store.votes.tally(jobId).counts).toEqual([1, 0]);
    const edited = await f.until(
      () => {
        const m = f.message(message.id);
        return m && buttons(m).has("🗳 1 · 1") ? m : undefined;
      },
      8_000,
      "the tally on the message",
    );
    expect(buttons(edited).has("🗳 2 · 0")).toBe(true);

    // From here the press times are on a stopped fake clock (Date only: sockets, timers and the worker stay
    // real), so the double-click window is measured exactly and never by how fast this machine is.
    vi.useFakeTimers({ toFake: ["Date"] });
    const press = async (what: string) => {
      const p = f.pressButton({ messageId: message.id, customId: voteId(message, "2"), userId: BOB });
      await f.until(() => f.followUps(p)[0], 5_000, what);
      return f.followUps(p)[0]?.content;
    };
    expect(await press("the move")).toMatch(/moved to image 2/);
    expect(e.easel.store.votes.tally(jobId).counts).toEqual([0, 1]);

    // The same choice again inside the window is a double click: the vote stays.
    expect(await press("the double click")).toMatch(/Your vote for image 2 counts/);
    vi.advanceTimersByTime(DOUBLE_CLICK_MS - 1);
    expect(await press("the last double click")).toMatch(/Your vote for image 2 counts/);
    expect(e.easel.store.votes.tally(jobId).counts).toEqual([0, 1]);

    // Once the window is over (counted from the move, not from the double clicks), it takes the vote back.
    vi.advanceTimersByTime(1);
    expect(await press("the take-back")).toMatch(/taken back/);
    expect(e.easel.store.votes.tally(jobId).total).toBe(0);
    expect(f.violations).toEqual([]);
  });

  it("keeps one vote when a member presses fifty times at once", async () => {
    const { f, e } = await start();
    const { message } = await result(f, "fifty --size 64x64 --steps 2 --n 2");
    const id = voteId(message, "1");
    const presses = Array.from({ length: 50 }, () =>
      f.pressButton({ messageId: message.id, customId: id, userId: CAROL }),
    );
    await Promise.all(presses.map((p) => f.waitForCallback(p, 10_000)));
    const jobId = (parseButtonId(id) as { value: { jobId: string } }).value.jobId;
    expect(e.easel.store.votes.tally(jobId)).toMatchObject({ counts: [1, 0], total: 1 });
    const rows = e.easel.store.db
      .prepare("SELECT count(*) AS n FROM votes WHERE ballot_id = ?")
      .get(jobId) as { n: number };
    expect(rows.n).toBe(1);
  });

  it("refuses bots, self-votes (unless the server allows them) and votes on a deleted result", async () => {
    const { f, e } = await start();
    const { message } = await result(f, "rules --size 64x64 --steps 2 --n 2");
    const bot = f.pressButton({
      messageId: message.id,
      customId: voteId(message, "1"),
      userId: BOB,
      bot: true,
    });
    await f.waitForCallback(bot);
    expect(replyText(f, bot)).toMatch(/Bots and apps cannot vote/);
    const self = f.pressButton({ messageId: message.id, customId: voteId(message, "1") });
    await f.waitForCallback(self);
    expect(replyText(f, self)).toMatch(/cannot vote on your own/);
    const allow = f.slashCommand({
      name: "settings",
      admin: true,
      userId: BOB,
      options: [subcommand("set", { key: "self-vote", value: "on" })],
    });
    await f.waitForCallback(allow);
    const selfAgain = f.pressButton({ messageId: message.id, customId: voteId(message, "1") });
    expect((await f.waitForCallback(selfAgain)).type).toBe(6);

    const del = f.pressButton({ messageId: message.id, customId: buttons(message).get("🗑 Delete") ?? "" });
    await f.waitForCallback(del);
    await f.until(
      () => f.message(message.id) === undefined || (f.message(message.id) as { deleted?: boolean }).deleted,
      5_000,
      "the deletion",
    );
    // A press that raced the deletion (a client still showing the message) is refused.
    const jobId = (parseButtonId(voteId(message, "1")) as { value: { jobId: string } }).value.jobId;
    expect(e.easel.store.votes.ballot(jobId)?.closedBy).toBe("deleted");
    const late = castVote(e.easel.services, actor(BOB), jobId, 2, Date.now());
    expect(late).toEqual({ ok: false, message: expect.stringMatching(/deleted/) });
  });
});

describe("contests", () => {
  it("announce the winner with its image once, also when the deadline passed while easel was down; late votes are refused", async () => {
    const { f, e } = await start();
    const { message } = await result(f, "contest --size 64x64 --steps 2 --vote 10m");
    expect(message.content).toMatch(/voting closes in 10 min/);
    expect(message.attachments).toHaveLength(5); // a contest gets four images and the grid
    const jobId = (parseButtonId(voteId(message, "1")) as { value: { jobId: string } }).value.jobId;
    await f.until(() => e.easel.store.votes.ballot(jobId), 5_000, "the contest ballot");
    expect(e.easel.store.votes.ballot(jobId)).toMatchObject({ kind: "contest", choices: 4 });
    for (const [user, choice] of [
      [BOB, "3"],
      [CAROL, "3"],
      ["1300000000000000003", "1"],
    ] as const) {
      const p = f.pressButton({ messageId: message.id, customId: voteId(message, choice), userId: user });
      expect((await f.waitForCallback(p)).type).toBe(6);
    }
    // easel goes down; the deadline passes meanwhile; on the next start the clock closes it from the database.
    await e.stop({ keepData: true });
    const offline = Store.open(e.dataDir);
    offline.db.prepare("UPDATE ballots SET closes_at = ? WHERE id = ?").run(Date.now() - 1, jobId);
    offline.close();
    t = await startTestEasel(modelsDir, env(f), { dataDir: e.dataDir });
    const announced = await f.until(
      () => f.messages(message.channel_id).find((m) => /wins with/.test(m.content)),
      10_000,
      "the announcement",
    );
    expect(announced.content).toMatch(/Image 3 of <@1200000000000000011> wins with 2 of 3 votes/);
    expect(announced.attachments[0]?.filename).toMatch(/-3-winner\.png$/);
    const late = f.pressButton({ messageId: message.id, customId: voteId(message, "2"), userId: CAROL });
    await f.waitForCallback(late);
    expect(replyText(f, late)).toMatch(/Voting closed/);
    // Another restart posts nothing again.
    await t.stop({ keepData: true });
    t = await startTestEasel(modelsDir, env(f), { dataDir: e.dataDir });
    // The start rebuilt the clock from the database: the contest is closed and its announcement on record, so
    // there is nothing to schedule or post; stop() waits for any closing the start began (none).
    expect(t.easel.store.votes.openDeadlines()).toEqual([]);
    expect(t.easel.store.votes.unannounced()).toEqual([]);
    await t.easel.contests.stop();
    expect(f.messages(message.channel_id).filter((m) => /wins with/.test(m.content))).toHaveLength(1);
  });

  it("a contest channel makes every /imagine a contest, and the server may have winners upscaled", async () => {
    const { f, e } = await start();
    const set = (key: string, value: string, scope?: string) =>
      f.waitForCallback(
        f.slashCommand({
          name: "settings",
          admin: true,
          userId: BOB,
          options: [subcommand("set", { key, value, ...(scope ? { scope } : {}) })],
        }),
      );
    await set("contest", "on", "channel");
    await set("contest-minutes", "5");
    await set("contest-upscale", "on");
    const { message } = await result(f, "channel contest --size 64x64 --steps 2");
    expect(message.content).toMatch(/voting closes in 5 min/);
    const jobId = (parseButtonId(voteId(message, "1")) as { value: { jobId: string } }).value.jobId;
    await f.until(() => e.easel.store.votes.ballot(jobId), 5_000, "the contest ballot");
    const p = f.pressButton({ messageId: message.id, customId: voteId(message, "4"), userId: CAROL });
    await f.waitForCallback(p);
    await e.easel.contests.close(jobId);
    const upscaled = await f.until(
      () =>
        f
          .messages(message.channel_id)
          .find((m) => /ready/.test(m.content) && m.attachments[0]?.width === 128),
      30_000,
      "the winner's upscale",
    );
    expect(upscaled.content).toContain("<@1200000000000000011>");
    const up = e.easel.store.jobs.listJobs({}).find((j) => j.request.parent?.kind === "upscale");
    expect(up?.request.parent).toMatchObject({ jobId, variant: 4 });
  });

  it("/top lists the most-voted results with links, and the top creators", async () => {
    const { f } = await start();
    const { message } = await result(f, "popular --size 64x64 --steps 2 --n 2");
    for (const user of [BOB, CAROL]) {
      const p = f.pressButton({ messageId: message.id, customId: voteId(message, "2"), userId: user });
      await f.waitForCallback(p);
    }
    const top = f.slashCommand({ name: "top", options: [{ name: "period", value: "day" }] });
    await f.waitForCallback(top);
    const text = replyText(f, top);
    expect(text).toContain("1. 2 votes · <@1200000000000000011> · popular");
    expect(text).toContain(
      `https://discord.com/channels/${f.guilds[0]?.id}/${message.channel_id}/${message.id}`,
    );
    expect(text).toMatch(/\*\*Top creators\*\*\n1\. <@1200000000000000011> · 2 votes/);
  });
});

describe("the arena", () => {
  it("shows two models blind, reveals them at the close and moves their Elo ratings", async () => {
    const { f, e } = await start({ EASEL_ELO_K: "32", EASEL_ELO_START: "1000" });
    const h = f.slashCommand({
      name: "compare",
      options: [
        { name: "prompt", value: "a red bicycle" },
        { name: "a", value: "ldm:tiny" },
        { name: "b", value: "slow" },
      ],
    });
    const a = await f.waitForOriginalMessage(
      h,
      (m) => m.attachments.length > 0 && /Arena/.test(m.content),
      60_000,
    );
    const b = await f.until(
      () => f.followUps(h).find((m) => m.attachments.length > 0 && /Arena/.test(m.content)),
      60_000,
      "side B",
    );
    for (const m of [a, b]) {
      const embed = JSON.stringify(m.embeds);
      expect(embed).not.toMatch(/tiny|slow|ldm/);
      expect([...buttons(m).keys()]).toEqual(["🗳 A", "🗳 B"]);
    }
    const matchId = (parseButtonId(voteId(a, "A")) as { value: { jobId: string } }).value.jobId;
    const match = e.easel.store.votes.match(matchId);
    if (!match) throw new Error("no match");
    const sideOf = (model: string) => (match.modelA === model ? "A" : "B");
    await f.until(() => e.easel.store.votes.ballot(matchId)?.closesAt, 5_000, "the arena deadline");
    for (const [user, model] of [
      [BOB, "ldm:tiny"],
      [CAROL, "ldm:tiny"],
      ["1300000000000000003", "ldm:slow"],
    ] as const) {
      const p = f.pressButton({ messageId: a.id, customId: voteId(a, sideOf(model)), userId: user });
      expect((await f.waitForCallback(p)).type).toBe(6);
    }
    await e.easel.contests.close(matchId);
    const reveal = await f.until(
      () => f.messages(a.channel_id).find((m) => /Arena revealed/.test(m.content)),
      5_000,
      "the reveal",
    );
    expect(reveal.content).toMatch(/wins, 2–1/);
    const fields = JSON.stringify(reveal.embeds);
    expect(fields).toContain("ldm:tiny · 2 votes · Elo 1016 (+16)");
    expect(fields).toContain("ldm:slow · 1 vote · Elo 984 (−16)");
    expect(e.easel.store.votes.rating("ldm:tiny")).toMatchObject({ games: 1, wins: 1, votes: 2 });

    const board = f.slashCommand({
      name: "leaderboard",
      options: [subcommand("models")],
    });
    await f.waitForCallback(board);
    expect(replyText(f, board)).toMatch(
      /1\. ldm:tiny · Elo 1016 · 2 votes · won 100 % of 1 · (about \d+ s|under a second) per image/,
    );
    expect(f.violations).toEqual([]);
  });

  it("calls the match off when one side cannot be drawn, and a redelivered /compare opens no second match", async () => {
    const { f, e } = await start();
    const h = f.slashCommand({
      name: "compare",
      options: [
        { name: "prompt", value: "a blue kite" },
        { name: "a", value: "slow" },
        { name: "b", value: "tiny" },
      ],
    });
    await f.waitForCallback(h);
    const { id: matchId } = e.easel.store.db.prepare("SELECT id FROM arena_matches").get() as { id: string };
    const match = e.easel.store.votes.match(matchId);
    if (!match) throw new Error("no match");
    // The same interaction again (a gateway replay): the same match, nothing new posted.
    const again = startArena(e.easel.services, actor(), h.id, { prompt: "a blue kite" });
    expect(again).toMatchObject({ ok: true, matchId });
    expect(
      (e.easel.store.db.prepare("SELECT count(*) AS n FROM arena_matches").get() as { n: number }).n,
    ).toBe(1);
    const slowSide = match.modelA === "ldm:slow" ? match.jobA : match.jobB;
    e.easel.engine.cancel(slowSide);
    const notice = await f.until(
      () => f.messages(f.interaction(h).channelId).find((m) => /called off/.test(m.content)),
      30_000,
      "the called-off notice",
    );
    expect(notice.content).toMatch(/side [AB] could not be drawn/);
    expect(e.easel.store.votes.ballot(matchId)?.closedBy).toBe("deleted");
    expect(e.easel.store.votes.ratings()).toEqual([]);
  });
});
