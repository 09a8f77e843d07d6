import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TINY_MODEL_VARIANTS, writeTinyModel } from "../src/backends/ldm/tiny-model.ts";
import { CLIP_BPE_DIR } from "../src/backends/ldm/tokenizer/clip-tokenizer.ts";
import { FakeDiscord } from "./fakes/fake-discord/index.ts";
import { FakeSlack } from "./fakes/fake-slack/index.ts";

/**
 * `npm start` failing the way an operator meets it: one line that names the variable and the cause, a refused
 * token told apart from an unreachable service, no stack trace unless EASEL_DEBUG=1, and the CLI's rule for
 * the default model.
 */

let work: string;
let oneModel: string;
let twoModels: string;
let brokenModel: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "easel-start-fail-"));
  oneModel = join(work, "one");
  twoModels = join(work, "two");
  brokenModel = join(work, "broken");
  await writeTinyModel(join(oneModel, "tiny"), TINY_MODEL_VARIANTS.sd1, CLIP_BPE_DIR);
  await writeTinyModel(join(twoModels, "alpha"), TINY_MODEL_VARIANTS.sd1, CLIP_BPE_DIR);
  await writeTinyModel(join(twoModels, "beta"), TINY_MODEL_VARIANTS.sd1, CLIP_BPE_DIR);
  await writeTinyModel(join(brokenModel, "tiny"), TINY_MODEL_VARIANTS.sd1, CLIP_BPE_DIR);
  await writeFile(join(brokenModel, "tiny", "unet", "model.onnx"), "not a model");
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Runs `npm start` (src/main.ts) with only `env`, to its exit; returns the exit code and everything it printed. */
async function start(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  let output = "";
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      EASEL_THREADS: "1",
      EASEL_DEVICE: "cpu",
      EASEL_DATA_DIR: join(work, `data-${Math.random().toString(36).slice(2)}`),
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.on("data", (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    output += d.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  return { code, output };
}

/** A local port nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (typeof address !== "object" || address === null) throw new Error("no port");
  return address.port;
}

/** Stack frames as Node prints them. */
const STACK_FRAME = /^\s+at .+\(?.+:\d+:\d+\)?$/m;

describe("npm start, when it cannot start", () => {
  let discord: FakeDiscord;
  let slack: FakeSlack;
  beforeAll(async () => {
    discord = await FakeDiscord.start({ heartbeatIntervalMs: 1_000 });
    slack = await FakeSlack.start();
  });
  afterAll(async () => {
    await discord.close();
    await slack.close();
  });
  const discordEnv = () => ({ DISCORD_TOKEN: discord.token, DISCORD_API_BASE: discord.apiBase });

  it("refuses several model folders without EASEL_MODEL, naming the folders and the variable", async () => {
    const { code, output } = await start({ ...discordEnv(), EASEL_MODELS_DIR: twoModels });
    expect(code).toBe(1);
    expect(output).toMatch(/several models in .*\(alpha, beta\).*EASEL_MODEL/);
    expect(output).not.toMatch(/serving/);
  });

  it("never makes a folder that does not load the default: it names the folder and the file at fault", async () => {
    const { code, output } = await start({ ...discordEnv(), EASEL_MODELS_DIR: brokenModel });
    expect(code).toBe(1);
    expect(output).toMatch(/default model tiny .* does not load: .*unet[/\\]model\.onnx/);
    expect(output).not.toMatch(/serving/);
    expect(output).not.toMatch(STACK_FRAME);
  });

  it("says Discord refused DISCORD_TOKEN in one line, without a stack trace", async () => {
    const { code, output } = await start({
      DISCORD_TOKEN: "MTIzNDU2Nzg5MDEyMzQ1Njc4.bad.token",
      DISCORD_API_BASE: discord.apiBase,
      EASEL_MODELS_DIR: oneModel,
    });
    expect(code).toBe(1);
    expect(output).toMatch(/^easel cannot start: Discord refused DISCORD_TOKEN \(TokenInvalid/m);
    expect(output).not.toMatch(STACK_FRAME);
    expect(output).not.toMatch(/cannot reach/);
  });

  it("shows the stack trace with EASEL_DEBUG=1", async () => {
    const { code, output } = await start({
      DISCORD_TOKEN: "MTIzNDU2Nzg5MDEyMzQ1Njc4.bad.token",
      DISCORD_API_BASE: discord.apiBase,
      EASEL_MODELS_DIR: oneModel,
      EASEL_DEBUG: "1",
    });
    expect(code).toBe(1);
    expect(output).toMatch(/Discord refused DISCORD_TOKEN/);
    expect(output).toMatch(STACK_FRAME);
  });

  it("tells an unreachable Discord from a refused token, naming the address and DISCORD_API_BASE", async () => {
    const port = await closedPort();
    const { code, output } = await start({
      DISCORD_TOKEN: discord.token,
      DISCORD_API_BASE: `http://127.0.0.1:${port}/api`,
      EASEL_MODELS_DIR: oneModel,
    });
    expect(code).toBe(1);
    expect(output).toMatch(
      new RegExp(
        `cannot reach Discord at http://127\\.0\\.0\\.1:${port}/api: .*ECONNREFUSED.*DISCORD_API_BASE`,
      ),
    );
    expect(output).not.toMatch(/refused DISCORD_TOKEN/);
    expect(output).not.toMatch(STACK_FRAME);
  });

  it("says Slack refused SLACK_BOT_TOKEN, and SLACK_APP_TOKEN, each by name", async () => {
    const bot = await start({
      SLACK_BOT_TOKEN: "xoxb-not-the-token",
      SLACK_APP_TOKEN: slack.appToken,
      SLACK_API_URL: slack.apiUrl,
      EASEL_MODELS_DIR: oneModel,
    });
    expect(bot.code).toBe(1);
    expect(bot.output).toMatch(/Slack refused SLACK_BOT_TOKEN \(invalid_auth\)/);
    const app = await start({
      SLACK_BOT_TOKEN: slack.botToken,
      SLACK_APP_TOKEN: "xapp-not-the-token",
      SLACK_API_URL: slack.apiUrl,
      EASEL_MODELS_DIR: oneModel,
    });
    expect(app.code).toBe(1);
    expect(app.output).toMatch(/Slack refused SLACK_APP_TOKEN \(invalid_auth\)/);
    for (const { output } of [bot, app]) expect(output).not.toMatch(STACK_FRAME);
  });

  it("does not blame SLACK_BOT_TOKEN when Slack cannot be reached", async () => {
    const port = await closedPort();
    const { code, output } = await start({
      SLACK_BOT_TOKEN: slack.botToken,
      SLACK_APP_TOKEN: slack.appToken,
      SLACK_API_URL: `http://127.0.0.1:${port}/api/`,
      EASEL_MODELS_DIR: oneModel,
    });
    expect(code).toBe(1);
    expect(output).toMatch(
      /cannot reach Slack at http:\/\/127\.0\.0\.1:\d+\/api\/: .*ECONNREFUSED.*SLACK_API_URL/,
    );
    expect(output).not.toMatch(/refused SLACK_BOT_TOKEN/);
  });
});
