import { rm } from "node:fs/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  COMMANDS,
  type CommandReply,
  isGroup,
  type LeafCommand,
  optionSpecs,
  parseArgs,
} from "../commands/index.ts";
import { writeTinyModel } from "../src/backends/ldm/tiny-model.ts";
import { CLIP_BPE_DIR } from "../src/backends/ldm/tokenizer/clip-tokenizer.ts";
import { castVote } from "../src/core/ballots.ts";
import type { Actor } from "../src/core/bot-services.ts";
import { pressButton, upscaleSize } from "../src/core/button-press.ts";
import { encodeButtonId } from "../src/core/buttons.ts";
import { explainJob } from "../src/core/explain.ts";
import { presentDone } from "../src/core/presenter.ts";
import { actor, nextEvent, startTestEasel, type TestEasel, tinyModelsDir } from "./easel-harness.ts";

/**
 * The platform-neutral commands and buttons over easel as main composes it (real store, engine and LDM worker
 * with a tiny model), driven the way the Discord and Slack adapters drive them.
 */

let modelsDir: string;
let t: TestEasel;
let event = 0;

beforeAll(async () => {
  modelsDir = await tinyModelsDir();
});
afterAll(async () => {
  await rm(modelsDir, { recursive: true, force: true });
});
afterEach(async () => {
  await t?.stop();
});

function command(path: string): LeafCommand {
  const [name, sub] = path.split(" ");
  const found = COMMANDS.find((c) => c.name === name);
  if (!found) throw new Error(`no command ${name}`);
  if (!isGroup(found)) return found;
  const leaf = found.subcommands.find((s) => s.name === sub);
  if (!leaf) throw new Error(`no sub-command ${path}`);
  return leaf;
}

async function run(path: string, raw: Record<string, unknown>, who: Actor = actor()): Promise<CommandReply> {
  const leaf = command(path);
  const args = parseArgs(leaf.options, raw);
  if (!args.ok) return { kind: "text", text: args.reason, ephemeral: true };
  return leaf.handle(args.value as never, { services: t.easel.services, actor: who, eventId: `e${++event}` });
}

function text(reply: CommandReply): string {
  if (reply.kind !== "text") throw new Error(`expected text, got ${JSON.stringify(reply)}`);
  return reply.text;
}

async function queued(reply: CommandReply) {
  if (reply.kind !== "job" || !reply.outcome.ok) throw new Error(`not queued: ${JSON.stringify(reply)}`);
  return reply.outcome;
}

describe("command definitions", () => {
  it("carry the hard limits as option bounds and put required options first", () => {
    const specs = optionSpecs(command("imagine").options);
    expect(specs[0]).toMatchObject({ name: "prompt", type: "string", required: true, maxLength: 2000 });
    expect(specs.find((s) => s.name === "steps")).toMatchObject({ type: "integer", min: 1, max: 150 });
    expect(specs.find((s) => s.name === "seed")).toMatchObject({
      type: "integer",
      min: 0,
      max: 4_294_967_295,
    });
    expect(specs.find((s) => s.name === "cfg")).toMatchObject({ type: "number", min: 0, max: 30 });
    expect(specs.find((s) => s.name === "sampler")?.choices).toContain("euler_ancestral");
    expect(specs.find((s) => s.name === "backend")?.choices).toEqual(["ldm", "openai"]);
  });

  it("parses arguments server-side and names the option and limit on refusal", () => {
    const leaf = command("imagine");
    const bad = parseArgs(leaf.options, { prompt: "x", steps: 500 });
    expect(bad).toMatchObject({ ok: false });
    expect(!bad.ok && bad.reason).toMatch(/steps.*150/);
    expect(parseArgs(leaf.options, { prompt: "x", steps: 30 })).toEqual({
      ok: true,
      value: { prompt: "x", steps: 30 },
    });
  });
});

describe("the commands over the engine", () => {
  it("/imagine queues a job that renders with the options over the prompt's flags", async () => {
    t = await startTestEasel(modelsDir);
    const outcome = await queued(
      await run("imagine", { prompt: "a lighthouse --steps 9 --seed 5", steps: 3, size: "64x64" }),
    );
    expect(outcome.position).toBeGreaterThanOrEqual(0);
    expect(outcome.job.request).toMatchObject({ steps: 3, seed: 5, width: 64, height: 64, model: "tiny" });
    const done = await nextEvent(t.easel.engine, "done", outcome.job.id);
    expect(done.images.map((i) => i.seed)).toEqual([5]);
  });

  it("/imagine refuses what is over a limit with a message naming it, and queues nothing", async () => {
    t = await startTestEasel(modelsDir, { EASEL_MAX_STEPS: "20" });
    const reply = await run("imagine", { prompt: "a lighthouse --steps 40" });
    expect(reply.kind === "job" && !reply.outcome.ok && reply.outcome.message).toMatch(/20/);
    expect(t.easel.engine.activeJobs()).toHaveLength(0);
  });

  it("/imagine refuses bots", async () => {
    t = await startTestEasel(modelsDir);
    const reply = await run("imagine", { prompt: "x" }, actor("b1", { isBot: true }));
    expect(reply.kind === "job" && !reply.outcome.ok && reply.outcome.message).toMatch(/Bots/);
  });

  it("/settings: anyone may look, only admins may change, values are checked, and new jobs use them", async () => {
    t = await startTestEasel(modelsDir);
    expect(text(await run("settings set", { key: "steps", value: "12" }))).toMatch(/Only easel admins/);
    const admin = actor("a1", { platformAdmin: true });
    expect(text(await run("settings set", { key: "steps", value: "12" }, admin))).toMatch(/steps set to 12/);
    expect(text(await run("settings set", { key: "max-steps", value: "500" }, admin))).toMatch(
      /maxSteps.*150/,
    );
    expect(text(await run("settings set", { key: "nsfw", value: "on" }, admin))).toMatch(
      /nsfw set to on for this channel/,
    );
    expect(text(await run("settings set", { key: "nsfw", value: "on", scope: "server" }, admin))).toMatch(
      /channel setting/,
    );
    const shown = text(await run("settings show", {}));
    expect(shown).toMatch(/steps: 12/);
    expect(shown).toMatch(/nsfw: on/);
    const outcome = await queued(await run("imagine", { prompt: "a lighthouse", size: "64x64" }));
    expect(outcome.job.request.steps).toBe(12);
    // NSFW output needs the channel setting and an age-restricted channel.
    expect(outcome.job.request.nsfwAllowed).toBe(false);
    const nsfw = await queued(
      await run("imagine", { prompt: "a lighthouse", size: "64x64" }, actor("u2", { channelNsfw: true })),
    );
    expect(nsfw.job.request.nsfwAllowed).toBe(true);
    expect(text(await run("settings reset", { key: "steps" }, admin))).toMatch(/reset/);
    expect(text(await run("settings show", {}))).not.toMatch(/steps: 12/);
  });

  it("/settings admin roles make their members admins", async () => {
    t = await startTestEasel(modelsDir, { EASEL_ADMIN_IDS: "root" });
    expect(text(await run("settings set", { key: "admin-roles", value: "<@&777>" }, actor("root")))).toMatch(
      /777/,
    );
    const member = actor("m1", { memberRoleIds: ["777"] });
    expect(text(await run("settings set", { key: "n", value: "2" }, member))).toMatch(/n set to 2/);
  });

  it("/queue lists your jobs with their places; /cancel cancels your latest; others may not cancel it", async () => {
    t = await startTestEasel(modelsDir);
    const jobs = [];
    for (let i = 0; i < 3; i++)
      jobs.push(await queued(await run("imagine", { prompt: `p${i}`, size: "64x64", steps: 2 })));
    const list = text(await run("queue", {}));
    for (const j of jobs) expect(list).toContain(j.job.id);
    expect(text(await run("queue", {}, actor("u9")))).toMatch(/no jobs/);
    expect(text(await run("cancel", { job: jobs[2]?.job.id }, actor("u9")))).toMatch(/Only the member/);
    const last = jobs[2]?.job.id ?? "";
    const cancelled = nextEvent(t.easel.engine, "cancelled", last);
    expect(text(await run("cancel", {}))).toMatch(/Cancelling/);
    await cancelled;
  });

  it("/cancel by another server's admin is refused: admins rule their own server", async () => {
    t = await startTestEasel(modelsDir);
    const job = await queued(await run("imagine", { prompt: "mine --size 64x64 --steps 2" }));
    const elsewhere = actor("a9", {
      platformAdmin: true,
      requester: { platform: "discord", workspaceId: "g2", channelId: "c9", userId: "a9" },
    });
    expect(text(await run("cancel", { job: job.job.id }, elsewhere))).toMatch(/no longer in easel's records/);
    const here = actor("a1", { platformAdmin: true });
    expect(text(await run("cancel", { job: job.job.id }, here))).toMatch(/Cancelling|already finished/);
  });

  it("a vote pressed before a contest's deadline is set does not make the contest endless", async () => {
    t = await startTestEasel(modelsDir);
    const contest = await queued(await run("imagine", { prompt: "early --size 64x64 --steps 2 --vote 10m" }));
    await nextEvent(t.easel.engine, "done", contest.job.id);
    const early = castVote(t.easel.services, actor("u2"), contest.job.id, 1, Date.now());
    expect(early).toMatchObject({ ok: true, ballot: { kind: "result" } });
    // The deadline is ten minutes from when the result was posted: bracketed by the clock around the call,
    // so the check is exact however slow the machine is.
    const before = Date.now();
    t.easel.contests.resultPosted(contest.job);
    const after = Date.now();
    const ballot = t.easel.store.votes.ballot(contest.job.id);
    expect(ballot?.kind).toBe("contest");
    expect(ballot?.closesAt).toBeGreaterThanOrEqual(before + 10 * 60_000);
    expect(ballot?.closesAt).toBeLessThanOrEqual(after + 10 * 60_000);
    expect(t.easel.store.votes.tally(contest.job.id).total).toBe(1);
  });

  it("/info names the version, models, the device really in use (not auto) and the queue", async () => {
    // No CUDA on the test machines: "auto" must show up as the CPU it fell back to.
    t = await startTestEasel(modelsDir, { EASEL_DEVICE: "auto" });
    const info = text(await run("info", {}));
    expect(info).toMatch(/easel test · device: cpu/);
    expect(info).toMatch(/ldm: tiny/);
    expect(info).toMatch(/queue: 0 waiting, 0 rendering/);
  });
});

describe("the model's safety checker in the bot", () => {
  it("withholds flagged images: recorded, never attached, U/V/votes refused; an NSFW channel skips it", async () => {
    // A checker lent from a folder beside the models; this tiny one flags every image.
    const lender = `${modelsDir}-checker`;
    await writeTinyModel(lender, { safetyChecker: true, safetyThreshold: -100 }, CLIP_BPE_DIR);
    t = await startTestEasel(modelsDir, { EASEL_SAFETY_CHECKER: lender });
    const services = t.easel.services;
    const first = await queued(
      await run("imagine", { prompt: "a lighthouse", size: "64x64", steps: 2, n: 2 }),
    );
    const done = await nextEvent(t.easel.engine, "done", first.job.id);
    expect(done.images.filter((i) => i.variant > 0).map((i) => i.flagged)).toEqual([true, true]);
    expect(services.jobs.withheld(first.job.id)).toEqual([1, 2]);
    const card = presentDone(first.job, await services.jobs.images(first.job.id), [], 1);
    expect(card.images).toEqual([]);
    expect(card.content).toContain("all 2 images were withheld");
    t.easel.engine.delivered(first.job.id);
    for (const action of ["upscale", "variation"] as const) {
      const press = await pressButton(
        services,
        actor(),
        `w-${action}`,
        encodeButtonId({ action, jobId: first.job.id, variant: 2 }),
      );
      expect(press).toEqual({ kind: "refused", message: expect.stringContaining("Image 2 was withheld") });
    }
    const vote = castVote(services, actor("u2"), first.job.id, 1, Date.now());
    expect(vote.ok === false && vote.message).toContain("Image 1 was withheld");

    // Where the channel allows NSFW output the checker does not run.
    const admin = actor("a1", { platformAdmin: true });
    await run("settings set", { key: "nsfw", value: "on" }, admin);
    const open = await queued(
      await run(
        "imagine",
        { prompt: "a lighthouse", size: "64x64", steps: 2 },
        actor("u3", { channelNsfw: true }),
      ),
    );
    const shown = await nextEvent(t.easel.engine, "done", open.job.id);
    expect(shown.images.some((i) => i.flagged)).toBe(false);
    expect(services.jobs.withheld(open.job.id)).toEqual([]);
    await rm(lender, { recursive: true, force: true });
  });
});

describe("buttons", () => {
  it("reroll keeps the settings with a new seed; V varies one image from its pixels; U upscales it 2×", async () => {
    t = await startTestEasel(modelsDir);
    const first = await queued(
      await run("imagine", { prompt: "a lighthouse", size: "64x64", steps: 2, n: 2, seed: 10 }),
    );
    const done = await nextEvent(t.easel.engine, "done", first.job.id);
    t.easel.engine.delivered(first.job.id);
    const services = t.easel.services;
    const reroll = await pressButton(
      services,
      actor(),
      "p1",
      encodeButtonId({ action: "reroll", jobId: first.job.id }),
    );
    expect(reroll.kind === "job" && reroll.outcome.ok && reroll.outcome.job.request).toMatchObject({
      prompt: "a lighthouse",
      steps: 2,
      count: 2,
      width: 64,
      parent: { jobId: first.job.id, kind: "reroll" },
    });
    expect(reroll.kind === "job" && reroll.outcome.ok && reroll.outcome.job.request.seed).not.toBe(10);

    const image2 = done.images.find((i) => i.variant === 2);
    const v2 = await pressButton(
      services,
      actor(),
      "p2",
      encodeButtonId({ action: "variation", jobId: first.job.id, variant: 2 }),
    );
    expect(v2.kind === "job" && v2.outcome.ok && v2.outcome.job.request.init).toEqual({
      imageId: image2?.id,
      strength: 0.6,
    });

    const u1 = await pressButton(
      services,
      actor(),
      "p3",
      encodeButtonId({ action: "upscale", jobId: first.job.id, variant: 1 }),
    );
    if (u1.kind !== "upscale" || !u1.upscale.ok) throw new Error(JSON.stringify(u1));
    expect(u1.image.variant).toBe(1);
    expect(u1.upscale.job.request).toMatchObject({
      width: 128,
      height: 128,
      count: 1,
      init: { strength: 0.3 },
    });
    const up = await nextEvent(t.easel.engine, "done", u1.upscale.job.id);
    expect(up.images[0]).toMatchObject({ width: 128, height: 128 });
  });

  it("refuses presses by others when the server says so, by bots always, and on unknown ids", async () => {
    t = await startTestEasel(modelsDir);
    const services = t.easel.services;
    const job = await queued(await run("imagine", { prompt: "a lighthouse", size: "64x64", steps: 2 }));
    const reroll = encodeButtonId({ action: "reroll", jobId: job.job.id });
    const admin = actor("a1", { platformAdmin: true });
    await run("settings set", { key: "others-may-press", value: "off" }, admin);
    expect(await pressButton(services, actor("u2"), "x1", reroll)).toMatchObject({ kind: "refused" });
    expect(await pressButton(services, admin, "x2", reroll)).toMatchObject({ kind: "job" });
    expect(await pressButton(services, actor("b", { isBot: true }), "x3", reroll)).toMatchObject({
      kind: "refused",
      message: expect.stringMatching(/Bots/),
    });
    expect(await pressButton(services, actor(), "x4", "zz:nothing")).toMatchObject({ kind: "refused" });
    expect(
      await pressButton(services, actor("u2"), "x5", encodeButtonId({ action: "delete", jobId: job.job.id })),
    ).toMatchObject({
      kind: "refused",
    });
    expect(
      await pressButton(services, actor(), "x6", encodeButtonId({ action: "delete", jobId: job.job.id })),
    ).toMatchObject({
      kind: "delete",
    });
  });

  it("upscale sizes double within the pixel limit, in multiples of 8", () => {
    expect(upscaleSize(512, 512, 1024 * 1024)).toEqual({ width: 1024, height: 1024 });
    expect(upscaleSize(768, 512, 1024 * 1024)).toEqual({ width: 1248, height: 832 });
    const big = upscaleSize(1024, 1024, 1024 * 1024);
    expect(big).toEqual({ width: 1024, height: 1024 });
  });

  it('"how it was made" tells the stages with the job\'s own numbers', async () => {
    t = await startTestEasel(modelsDir);
    const job = await queued(
      await run("imagine", { prompt: "a lighthouse in a storm", size: "64x64", steps: 2 }),
    );
    const tokens = await t.easel.services.tokenCount?.(job.job);
    expect(tokens).toEqual({ tokens: 7, cut: 0, encoders: 1 });
    const text = explainJob(job.job, tokens, 3);
    expect(text).toMatch(/7 CLIP tokens/);
    expect(text).toContain("the text encoder turns them");
    // The model's own scheduler (PNDM, as SD 1.5's): the default model is loaded before easel starts.
    expect(text).toMatch(/8×8×4 latent noise; 2 pndm steps/);
    expect(text).toMatch(/64×64 pixels/);
    expect(text).toMatch(/3 points/);
  });
});
