import { describe, expect, it } from "vitest";
import { LdmWorkerSupervisor } from "../src/backends/ldm/worker-supervisor.ts";
import { loadConfig } from "../src/config.ts";

/** The LDM worker gets only the environment it needs: never the bot's tokens and keys. */

const ENTRY = new URL("./fakes/env-worker.ts", import.meta.url).pathname;

const SECRETS = {
  DISCORD_TOKEN: "MTIzNDU2Nzg5MDEyMzQ1Njc4.sentinel.discord-token-value-0000000",
  SLACK_BOT_TOKEN: "xoxb-sentinel-slack-bot-token",
  SLACK_APP_TOKEN: "xapp-sentinel-slack-app-token",
  SLACK_SIGNING_SECRET: "sentinel-signing-secret",
  OPENAI_API_KEY: "sk-sentinel-openai-key",
  HF_TOKEN: "hf_sentinel_token",
};

async function workerEnvironment(env: Record<string, string> | undefined): Promise<Record<string, string>> {
  const supervisor = new LdmWorkerSupervisor(
    { modelsDir: "/nowhere", model: "any", device: "cpu", deviceId: 0 },
    { workerEntry: ENTRY, ...(env ? { env } : {}) },
  );
  try {
    return JSON.parse((await supervisor.start()).name) as Record<string, string>;
  } finally {
    await supervisor.stop();
  }
}

describe("the LDM worker's environment", () => {
  it("holds what Node, onnxruntime and CUDA read, and none of the bot's secrets", async () => {
    const config = loadConfig({
      ...SECRETS,
      PATH: "/usr/bin:/bin",
      LANG: "C.UTF-8",
      CUDA_VISIBLE_DEVICES: "1",
      LD_LIBRARY_PATH: "/opt/cuda/lib64",
      OMP_NUM_THREADS: "2",
      EASEL_DATA_DIR: "/srv/easel",
    });
    expect(config.workerEnv).toEqual({
      PATH: "/usr/bin:/bin",
      LANG: "C.UTF-8",
      CUDA_VISIBLE_DEVICES: "1",
      LD_LIBRARY_PATH: "/opt/cuda/lib64",
      OMP_NUM_THREADS: "2",
    });
    const seen = await workerEnvironment(config.workerEnv);
    expect(seen).toMatchObject(config.workerEnv);
    const text = JSON.stringify(seen);
    for (const [name, value] of Object.entries(SECRETS)) {
      expect(seen[name]).toBeUndefined();
      expect(text).not.toContain(value);
    }
  });

  it("sends what the worker prints to the operator log, line by line", async () => {
    const lines: string[] = [];
    const supervisor = new LdmWorkerSupervisor(
      { modelsDir: "/nowhere", model: "any", device: "cpu", deviceId: 0 },
      { workerEntry: ENTRY, log: (line) => lines.push(line) },
    );
    try {
      await supervisor.start();
      await expect.poll(() => lines.length).toBe(2);
      expect(lines.sort()).toEqual(["LDM worker: a line on stderr", "LDM worker: a line on stdout"]);
    } finally {
      await supervisor.stop();
    }
  });

  it("inherits nothing from the bot's process when no environment is given", async () => {
    process.env.EASEL_TEST_SENTINEL = "must-not-reach-the-worker";
    try {
      const seen = await workerEnvironment(undefined);
      expect(seen.EASEL_TEST_SENTINEL).toBeUndefined();
      expect(seen.PATH).toBeUndefined();
    } finally {
      delete process.env.EASEL_TEST_SENTINEL;
    }
  });
});
