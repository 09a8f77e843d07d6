import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { DEFAULT_CONFIG, loadConfig, platformReadiness } from "../src/config.ts";
import { isEaselError } from "../src/core/errors.ts";

function configError(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (err) {
    expect(isEaselError(err, "config")).toBe(true);
    return (err as Error).message;
  }
  throw new Error("expected a configuration error");
}

describe("configuration", () => {
  it("applies the documented defaults", () => {
    const config = loadConfig({});
    expect(config.modelsDir).toBe(resolve(DEFAULT_CONFIG.modelsDir));
    expect(config.dataDir).toBe(resolve(DEFAULT_CONFIG.dataDir));
    expect(config.device).toBe("auto");
    expect(config.slack.port).toBe(3000);
    expect(config.openai.imageModel).toBe(DEFAULT_CONFIG.openaiImageModel);
    expect(config.adminIds).toEqual([]);
    expect(config.discord).toEqual({});
    expect(config.cudaDevice).toBe(0);
    expect(config.threads).toBeUndefined();
    expect(config.idleUnloadMinutes).toBe(0);
    expect(loadConfig({ EASEL_THREADS: "2" }).threads).toBe(2);
  });

  it("lets the CLI run past a malformed bot-only variable, which still stops the bot", () => {
    const env = { DISCORD_GUILD_ID: "abc", SLACK_PORT: "http", EASEL_MAX_STEPS: "20" };
    expect(configError(env)).toMatch(/DISCORD_GUILD_ID/);
    const cli = loadConfig(env, { scope: "cli" });
    expect(cli.limits.maxSteps).toBe(20);
    expect(cli.discord.guildId).toBeUndefined();
    // Variables the CLI reads are still checked for it.
    expect(() => loadConfig({ EASEL_MAX_STEPS: "0" }, { scope: "cli" })).toThrow(/EASEL_MAX_STEPS/);
  });

  it("reads EASEL_DEBUG as on or off", () => {
    expect(loadConfig({}).debug).toBe(false);
    expect(loadConfig({ EASEL_DEBUG: "1" }).debug).toBe(true);
    expect(configError({ EASEL_DEBUG: "yes please" })).toMatch(/EASEL_DEBUG/);
  });

  it("treats empty values as unset and splits admin ids", () => {
    const config = loadConfig({ DISCORD_TOKEN: "  ", EASEL_ADMIN_IDS: " 1, 2 ,,3", EASEL_DEVICE: "cpu" });
    expect(config.discord.token).toBeUndefined();
    expect(config.adminIds).toEqual(["1", "2", "3"]);
    expect(config.device).toBe("cpu");
  });

  it.each([
    [{ SLACK_PORT: "99999" }, "SLACK_PORT"],
    [{ SLACK_PORT: "http" }, "SLACK_PORT"],
    [{ EASEL_DEVICE: "gpu" }, "EASEL_DEVICE"],
    [{ DISCORD_API_BASE: "not a url" }, "DISCORD_API_BASE"],
    [{ DISCORD_GUILD_ID: "my-server" }, "DISCORD_GUILD_ID"],
    [{ EASEL_THREADS: "0" }, "EASEL_THREADS"],
    [{ EASEL_CUDA_DEVICE: "-1" }, "EASEL_CUDA_DEVICE"],
    [{ EASEL_IDLE_UNLOAD_MINUTES: "soon" }, "EASEL_IDLE_UNLOAD_MINUTES"],
    [{ OPENAI_TIMEOUT_MS: "600000" }, "OPENAI_TIMEOUT_MS"],
    [{ OPENAI_MAX_RETRIES: "-1" }, "OPENAI_MAX_RETRIES"],
    [{ OPENAI_MAX_RPM: "0" }, "OPENAI_MAX_RPM"],
    [{ OPENAI_CONCURRENCY: "many" }, "OPENAI_CONCURRENCY"],
    [{ OPENAI_IMAGE_QUALITY: "ultra" }, "OPENAI_IMAGE_QUALITY"],
    [{ OPENAI_DAILY_IMAGES_PER_USER: "1.5" }, "OPENAI_DAILY_IMAGES_PER_USER"],
    [{ OPENAI_DAILY_IMAGES_PER_GUILD: "lots" }, "OPENAI_DAILY_IMAGES_PER_GUILD"],
    [{ OPENAI_IMAGE_PRICES: "gpt-image-1:0.04" }, "OPENAI_IMAGE_PRICES"],
    [{ OPENAI_BASE_URL: "api dot openai" }, "OPENAI_BASE_URL"],
    [{ EASEL_VARIATION_STRENGTH: "1.5" }, "EASEL_VARIATION_STRENGTH"],
    [{ EASEL_UPSCALE_STRENGTH: "0" }, "EASEL_UPSCALE_STRENGTH"],
    [{ EASEL_MAX_STEPS: "151" }, "EASEL_MAX_STEPS"],
    [{ EASEL_MAX_PIXELS: "10" }, "EASEL_MAX_PIXELS"],
    [{ EASEL_MAX_IMAGES: "5" }, "EASEL_MAX_IMAGES"],
    [{ EASEL_MAX_QUEUED_PER_USER: "0" }, "EASEL_MAX_QUEUED_PER_USER"],
    [{ EASEL_MAX_QUEUED_PER_SERVER: "x" }, "EASEL_MAX_QUEUED_PER_SERVER"],
    [{ EASEL_MAX_QUEUED: "-3" }, "EASEL_MAX_QUEUED"],
    [{ EASEL_ELO_K: "0" }, "EASEL_ELO_K"],
    [{ EASEL_ELO_START: "high" }, "EASEL_ELO_START"],
  ])("names the variable in error for %j", (env, variable) => {
    expect(configError(env)).toContain(variable);
  });

  it("reads the button strengths, the request limits and the queue bounds", () => {
    const defaults = loadConfig({});
    expect(defaults.strengths).toEqual({ variation: 0.6, upscale: 0.3 });
    expect(defaults.limits).toEqual({});
    expect(defaults.queue).toEqual({});
    expect(defaults.elo).toEqual({ k: 32, start: 1000 });
    expect(loadConfig({ EASEL_ELO_K: "16", EASEL_ELO_START: "1500" }).elo).toEqual({ k: 16, start: 1500 });
    const set = loadConfig({
      EASEL_VARIATION_STRENGTH: "0.45",
      EASEL_UPSCALE_STRENGTH: "1",
      EASEL_MAX_STEPS: "50",
      EASEL_MAX_PIXELS: "262144",
      EASEL_MAX_IMAGES: "2",
      EASEL_MAX_QUEUED_PER_USER: "5",
      EASEL_MAX_QUEUED_PER_SERVER: "40",
      EASEL_MAX_QUEUED: "500",
    });
    expect(set.strengths).toEqual({ variation: 0.45, upscale: 1 });
    expect(set.limits).toEqual({ maxSteps: 50, maxPixels: 262144, maxCount: 2, maxQueuedPerUser: 5 });
    expect(set.queue).toEqual({ maxQueued: 500, maxQueuedPerWorkspace: 40 });
  });

  it("reads the OpenAI backend's settings with defaults well below the SDK's 10-minute timeout", () => {
    expect(loadConfig({}).openai).toEqual({
      imageModel: "gpt-image-1",
      timeoutMs: 120_000,
      maxRetries: 2,
      maxRequestsPerMinute: 5,
      concurrency: 4,
      dailyImagesPerUser: 20,
      dailyImagesPerGuild: 200,
      prices: {},
    });
    const config = loadConfig({
      OPENAI_API_KEY: "sk-test",
      OPENAI_BASE_URL: "http://127.0.0.1:8080/v1",
      OPENAI_IMAGE_MODEL: "dall-e-3",
      OPENAI_IMAGE_QUALITY: "hd",
      OPENAI_TIMEOUT_MS: "30000",
      OPENAI_MAX_RETRIES: "0",
      OPENAI_MAX_RPM: "50",
      OPENAI_CONCURRENCY: "8",
      OPENAI_DAILY_IMAGES_PER_USER: "0",
      OPENAI_DAILY_IMAGES_PER_GUILD: "1000",
      OPENAI_IMAGE_PRICES: " dall-e-3:1792x1024:hd=0.12, my-model=0.01 ,gpt-image-1:*:high=0.2",
    });
    expect(config.openai).toEqual({
      apiKey: "sk-test",
      baseUrl: "http://127.0.0.1:8080/v1",
      imageModel: "dall-e-3",
      quality: "hd",
      timeoutMs: 30_000,
      maxRetries: 0,
      maxRequestsPerMinute: 50,
      concurrency: 8,
      dailyImagesPerUser: 0,
      dailyImagesPerGuild: 1000,
      prices: { "dall-e-3:1792x1024:hd": 0.12, "my-model": 0.01, "gpt-image-1:*:high": 0.2 },
    });
  });

  it("says which tokens are missing when no platform can start", () => {
    const readiness = platformReadiness(loadConfig({}));
    expect(readiness.ready).toEqual([]);
    expect(readiness.missing.join("\n")).toContain("DISCORD_TOKEN");
    expect(readiness.missing.join("\n")).toContain("SLACK_BOT_TOKEN");
    const slackHalf = platformReadiness(loadConfig({ SLACK_BOT_TOKEN: "xoxb-test" }));
    expect(slackHalf.missing.join("\n")).toContain("SLACK_APP_TOKEN");
    const both = platformReadiness(
      loadConfig({ DISCORD_TOKEN: "t", SLACK_BOT_TOKEN: "b", SLACK_APP_TOKEN: "a" }),
    );
    expect(both.ready).toEqual(["discord", "slack"]);
  });
});
