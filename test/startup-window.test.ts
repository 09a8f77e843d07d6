import { rm } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MESSAGES } from "../src/core/messages.ts";
import { startTestEasel, type TestEasel, tinyAndSlowModelsDir } from "./easel-harness.ts";
import { FakeDiscord } from "./fakes/fake-discord/index.ts";

/**
 * The start-up window: easel recovers its jobs before any platform takes an event, so a member whose command
 * arrives the moment the bot connects is served, not told "easel is restarting", and the jobs recovered from
 * the last run count toward that member's limit from the first command on.
 */

let modelsDir: string;
beforeAll(async () => {
  modelsDir = await tinyAndSlowModelsDir();
});
afterAll(async () => {
  await rm(modelsDir, { recursive: true, force: true });
});

describe("starting up", () => {
  it("recovers before Discord connects: a command sent at the gateway's READY is queued, with recovered jobs counted", async () => {
    const fake = await FakeDiscord.start({ heartbeatIntervalMs: 1_000 });
    const env = {
      DISCORD_TOKEN: fake.token,
      DISCORD_API_BASE: fake.apiBase,
      EASEL_MODEL: "tiny",
      EASEL_MAX_QUEUED_PER_USER: "2",
    };
    let t: TestEasel | undefined;
    try {
      // A first run leaves one of the member's jobs unfinished: a long render on the bench-sized model, stopped.
      t = await startTestEasel(modelsDir, env);
      const first = fake.slashCommand({
        name: "imagine",
        options: [{ name: "prompt", value: "left unfinished --model slow --steps 150" }],
      });
      await fake.waitForCallback(first);
      const { dataDir } = t;
      await t.stop({ keepData: true });
      t = undefined;

      // The second run: the member's command comes the moment the gateway says READY.
      const identifiedBefore = fake.identifies.length;
      const starting = startTestEasel(modelsDir, env, { dataDir });
      await fake.until(() => fake.identifies.length > identifiedBefore, 30_000, "the bot to identify");
      const early = fake.slashCommand({
        name: "imagine",
        options: [{ name: "prompt", value: "sent at ready --size 64x64 --steps 2" }],
      });
      const tooMany = fake.slashCommand({
        name: "imagine",
        options: [{ name: "prompt", value: "one too many --size 64x64 --steps 2" }],
      });
      t = await starting;
      const earlyReply = await fake.waitForOriginalMessage(early, (m) => m.content !== "", 30_000);
      expect(earlyReply.content).not.toContain(MESSAGES.shuttingDown);
      // The recovered job and the early one make two: the third is over EASEL_MAX_QUEUED_PER_USER=2.
      const refused = await fake.waitForOriginalMessage(tooMany, (m) => m.content !== "", 30_000);
      expect(refused.content).toBe(MESSAGES.userLimit(2));
      expect(fake.violations).toEqual([]);
    } finally {
      await t?.stop();
      await fake.close();
    }
  });
});
