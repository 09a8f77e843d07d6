import { rm } from "node:fs/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { COMMANDS, type CommandReply, isGroup, type LeafCommand, parseArgs } from "../commands/index.ts";
import type { Actor } from "../src/core/bot-services.ts";
import { pressButton } from "../src/core/button-press.ts";
import { encodeButtonId } from "../src/core/buttons.ts";
import { actor, nextEvent, startTestEasel, type TestEasel, tinyModelsDir } from "./easel-harness.ts";
import { FakeOpenAi } from "./fakes/fake-openai.ts";
import { failure } from "./support.ts";

/**
 * The OpenAI images backend as `npm start` wires it: checked once at start, selectable per request
 * (`--backend openai`) and per server (settings), daily caps refused before anything is queued, the cost of
 * each job recorded and readable by admins, and an image from one backend varied on the other.
 */

let modelsDir: string;
let fake: FakeOpenAi;
let t: TestEasel | undefined;
let event = 0;

beforeAll(async () => {
  modelsDir = await tinyModelsDir();
  fake = await FakeOpenAi.start();
});
afterAll(async () => {
  await fake.close();
  await rm(modelsDir, { recursive: true, force: true });
});
afterEach(async () => {
  await t?.stop();
  t = undefined;
});

const openAiEnv = (extra: Record<string, string> = {}) => ({
  OPENAI_API_KEY: fake.apiKey,
  OPENAI_BASE_URL: fake.baseUrl,
  OPENAI_IMAGE_MODEL: "gpt-image-1",
  OPENAI_MAX_RETRIES: "0",
  ...extra,
});

function leaf(path: string): LeafCommand {
  const [name, sub] = path.split(" ");
  const found = COMMANDS.find((c) => c.name === name);
  if (!found) throw new Error(path);
  if (!isGroup(found)) return found;
  const l = found.subcommands.find((s) => s.name === sub);
  if (!l) throw new Error(path);
  return l;
}

async function run(path: string, raw: Record<string, unknown>, who: Actor = actor()): Promise<CommandReply> {
  const command = leaf(path);
  const args = parseArgs(command.options, raw);
  if (!args.ok) throw new Error(args.reason);
  if (!t) throw new Error("not started");
  return command.handle(args.value as never, {
    services: t.easel.services,
    actor: who,
    eventId: `o${++event}`,
  });
}

describe("the OpenAI backend in the bot", () => {
  it("renders with --backend openai, records the cost on the job and shows admins the spend", async () => {
    t = await startTestEasel(modelsDir, openAiEnv());
    const reply = await run("imagine", { prompt: "a lighthouse --backend openai --ar 3:2" });
    if (reply.kind !== "job" || !reply.outcome.ok) throw new Error(JSON.stringify(reply));
    expect(reply.outcome.job.request).toMatchObject({ backend: "openai", model: "gpt-image-1" });
    const done = await nextEvent(t.easel.engine, "done", reply.outcome.job.id);
    expect(done.images[0]).toMatchObject({ width: 1536, height: 1024, seed: null });
    expect(t.easel.store.jobs.getJob(reply.outcome.job.id)?.costUsd).toBeGreaterThan(0);
    const info = await run("info", {}, actor("a", { platformAdmin: true }));
    expect(info.kind === "text" && info.text).toMatch(
      /OpenAI images on this server: 1 \(about \$0\.\d\d\); today 1 \(about \$0\.\d\d\)\n {2}<@u1>: 1 image \(about \$0\.\d\d\)/,
    );
    const memberInfo = await run("info", {});
    expect(memberInfo.kind === "text" && memberInfo.text).not.toMatch(/OpenAI images on this server/);
    expect(fake.rejections()).toEqual([]);
  });

  it("a server may make OpenAI its default and lower the daily cap; over the cap is refused before queueing", async () => {
    t = await startTestEasel(modelsDir, openAiEnv());
    const admin = actor("a", { platformAdmin: true });
    await run("settings set", { key: "backend", value: "openai" }, admin);
    const set = await run("settings set", { key: "openai-daily-per-user", value: "1" }, admin);
    expect(set.kind === "text" && set.text).toMatch(/set to 1/);
    const tooHigh = await run("settings set", { key: "openai-daily-per-user", value: "5000" }, admin);
    expect(tooHigh.kind === "text" && tooHigh.text).toMatch(/OPENAI_DAILY_IMAGES_PER_USER/);
    const first = await run("imagine", { prompt: "one" });
    if (first.kind !== "job" || !first.outcome.ok) throw new Error(JSON.stringify(first));
    expect(first.outcome.job.request.backend).toBe("openai");
    await nextEvent(t.easel.engine, "done", first.outcome.job.id);
    const second = await run("imagine", { prompt: "two" });
    expect(second.kind === "job" && !second.outcome.ok && second.outcome.message).toMatch(/00:00 UTC/);
    expect(t.easel.engine.activeJobs()).toHaveLength(0);
    // The local model is still there for whoever asks for it.
    const local = await run("imagine", { prompt: "three --backend ldm --size 64x64 --steps 2" });
    expect(local.kind === "job" && local.outcome.ok).toBe(true);
  });

  it("a server may forbid the OpenAI backend", async () => {
    t = await startTestEasel(modelsDir, openAiEnv());
    await run("settings set", { key: "allowed-backends", value: "ldm" }, actor("a", { platformAdmin: true }));
    const reply = await run("imagine", { prompt: "x --backend openai" });
    expect(reply.kind === "job" && !reply.outcome.ok && reply.outcome.message).toMatch(/openai/);
  });

  it("V keeps the parent's backend (local img2img, OpenAI's edit endpoint); U of an OpenAI image upscales it locally", async () => {
    t = await startTestEasel(modelsDir, openAiEnv());
    const local = await run("imagine", { prompt: "a lighthouse --size 64x64 --steps 2" });
    if (local.kind !== "job" || !local.outcome.ok) throw new Error(JSON.stringify(local));
    await nextEvent(t.easel.engine, "done", local.outcome.job.id);
    const v = await pressButton(
      t.easel.services,
      actor(),
      "v1",
      encodeButtonId({ action: "variation", jobId: local.outcome.job.id, variant: 1 }),
    );
    expect(v.kind === "job" && v.outcome.ok && v.outcome.job.request.backend).toBe("ldm");
    const remote = await run("imagine", { prompt: "a lighthouse --backend openai" });
    if (remote.kind !== "job" || !remote.outcome.ok) throw new Error(JSON.stringify(remote));
    await nextEvent(t.easel.engine, "done", remote.outcome.job.id);
    const up = await pressButton(
      t.easel.services,
      actor(),
      "u1",
      encodeButtonId({ action: "upscale", jobId: remote.outcome.job.id, variant: 1 }),
    );
    if (up.kind !== "upscale" || !up.upscale.ok) throw new Error(JSON.stringify(up));
    expect(up.upscale.job.request).toMatchObject({ backend: "ldm", model: "tiny", count: 1 });
    const edits = fake.imageCalls().filter((c) => c.endpoint === "edits").length;
    const ov = await pressButton(
      t.easel.services,
      actor(),
      "v2",
      encodeButtonId({ action: "variation", jobId: remote.outcome.job.id, variant: 1 }),
    );
    if (ov.kind !== "job" || !ov.outcome.ok) throw new Error(JSON.stringify(ov));
    await nextEvent(t.easel.engine, "done", ov.outcome.job.id);
    expect(fake.imageCalls().filter((c) => c.endpoint === "edits").length).toBe(edits + 1);
  });

  it("stops at start with the variable named when the key is refused", async () => {
    const err = await failure(
      startTestEasel(modelsDir, openAiEnv({ OPENAI_API_KEY: "sk-wrong-key-123456" })),
    );
    expect(err.message).toMatch(/OPENAI_API_KEY/);
    expect(err.message).not.toContain("sk-wrong-key-123456");
  });
});
