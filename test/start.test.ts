import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tinyModelsDir } from "./easel-harness.ts";
import { FakeDiscord } from "./fakes/fake-discord/index.ts";
import { FakeSlack } from "./fakes/fake-slack/index.ts";

/** `npm start` (src/main.ts) as an operator runs it: a child process configured only by its environment. */

let modelsDir: string;
beforeAll(async () => {
  modelsDir = await tinyModelsDir();
});
afterAll(async () => {
  await rm(modelsDir, { recursive: true, force: true });
});

function startMain(env: Record<string, string>): { child: ChildProcess; output: () => string } {
  let output = "";
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    // Only what the test gives: no .env, no tokens from the developer's shell.
    // One onnxruntime thread, as in the other tests: the suite runs test files side by side on 2 cores.
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", EASEL_THREADS: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.on("data", (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    output += d.toString();
  });
  return { child, output: () => output };
}

const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once("exit", (code) => resolve(code));
  });

describe("npm start", () => {
  it("names what is missing when no platform is configured, and exits 1", async () => {
    const { child, output } = startMain({ EASEL_MODELS_DIR: modelsDir });
    expect(await exited(child)).toBe(1);
    expect(output()).toMatch(/DISCORD_TOKEN/);
    expect(output()).toMatch(/SLACK_BOT_TOKEN/);
  });

  it("serves /imagine on Discord from start to finished image, then stops cleanly on SIGTERM", async () => {
    const fake = await FakeDiscord.start({ heartbeatIntervalMs: 1_000 });
    const dataDir = await mkdtemp(join(tmpdir(), "easel-start-"));
    const { child, output } = startMain({
      DISCORD_TOKEN: fake.token,
      DISCORD_API_BASE: fake.apiBase,
      EASEL_MODELS_DIR: modelsDir,
      EASEL_DATA_DIR: dataDir,
      EASEL_DEVICE: "cpu",
    });
    try {
      await fake.until(() => /serving discord/.test(output()), 30_000, "easel to start");
      expect(output()).not.toContain(fake.token);
      const h = fake.slashCommand({
        name: "imagine",
        options: [{ name: "prompt", value: "a lighthouse --size 64x64 --steps 3 --seed 4" }],
      });
      expect((await fake.waitForCallback(h)).type).toBe(5);
      const done = await fake.waitForOriginalMessage(
        h,
        (m) => m.attachments.length > 0 && /ready/.test(m.content),
        30_000,
      );
      expect(done.embeds[0]).toMatchObject({ title: "a lighthouse" });
      child.kill("SIGTERM");
      expect(await exited(child)).toBe(0);
      expect(fake.violations).toEqual([]);
    } finally {
      child.kill("SIGKILL");
      await fake.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it("serves Discord and Slack from one process over one queue", async () => {
    const discord = await FakeDiscord.start({ heartbeatIntervalMs: 1_000 });
    const slack = await FakeSlack.start();
    const dataDir = await mkdtemp(join(tmpdir(), "easel-start-"));
    const { child, output } = startMain({
      DISCORD_TOKEN: discord.token,
      DISCORD_API_BASE: discord.apiBase,
      SLACK_BOT_TOKEN: slack.botToken,
      SLACK_APP_TOKEN: slack.appToken,
      SLACK_API_URL: slack.apiUrl,
      EASEL_MODELS_DIR: modelsDir,
      EASEL_DATA_DIR: dataDir,
      EASEL_DEVICE: "cpu",
    });
    try {
      await discord.until(() => /serving discord and slack/.test(output()), 30_000, "easel to start");
      await slack.socketConnected();
      const h = discord.slashCommand({
        name: "imagine",
        options: [{ name: "prompt", value: "from discord --size 64x64 --steps 2" }],
      });
      const ack = await slack.slashCommand({ command: "/imagine", text: "from slack --size 64x64 --steps 2" })
        .ack;
      expect(String(ack.payload?.text)).toMatch(/^Queued/);
      await discord.waitForOriginalMessage(
        h,
        (m) => m.attachments.length > 0 && /ready/.test(m.content),
        30_000,
      );
      await discord.until(
        () => slack.files.some((file) => file.shares.length > 0),
        30_000,
        "the Slack upload, shared into the channel",
      );
      child.kill("SIGTERM");
      expect(await exited(child)).toBe(0);
      expect(discord.violations).toEqual([]);
      expect(slack.violations).toEqual([]);
    } finally {
      child.kill("SIGKILL");
      await slack.close();
      await discord.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
