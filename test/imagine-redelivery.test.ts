import { rm } from "node:fs/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { COMMANDS, isGroup, type LeafCommand, parseArgs } from "../commands/index.ts";
import { imagine } from "../src/core/imagine.ts";
import { actor, nextEvent, startTestEasel, type TestEasel, tinyModelsDir } from "./easel-harness.ts";
import { FakeOpenAi } from "./fakes/fake-openai.ts";

/**
 * A platform may deliver the same interaction twice (a retried webhook, a gateway resume). The second
 * delivery must get the job the first one made, whatever changed in between: a daily cap now used up by that
 * very job, a setting an admin changed. Refusing it would tell the member "limit reached" about a job that
 * is rendering.
 */

let modelsDir: string;
let fake: FakeOpenAi;
let t: TestEasel | undefined;

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

async function settingsSet(key: string, value: string): Promise<void> {
  const group = COMMANDS.find((c) => c.name === "settings");
  const leaf = group && isGroup(group) ? group.subcommands.find((s) => s.name === "set") : undefined;
  if (!leaf || !t) throw new Error("no /settings set");
  const args = parseArgs((leaf as LeafCommand).options, { key, value });
  if (!args.ok) throw new Error(args.reason);
  await (leaf as LeafCommand).handle(args.value as never, {
    services: t.easel.services,
    actor: actor("admin", { platformAdmin: true }),
    eventId: `settings-${key}`,
  });
}

describe("a redelivered imagine event", () => {
  it("gets its job back although the job itself used up the member's daily cap", async () => {
    t = await startTestEasel(modelsDir, openAiEnv({ OPENAI_DAILY_IMAGES_PER_USER: "1" }));
    const { services, engine } = t.easel;
    const first = imagine(services, actor(), "ev-1", { prompt: "one --backend openai" });
    if (!first.ok) throw new Error(first.message);
    await nextEvent(engine, "done", first.job.id);
    // The cap binds for a new event...
    const other = imagine(services, actor(), "ev-2", { prompt: "two --backend openai" });
    expect(other.ok || other.message).toMatch(/00:00 UTC/);
    // ...but not for the same event delivered again.
    const again = imagine(services, actor(), "ev-1", { prompt: "one --backend openai" });
    expect(again).toMatchObject({ ok: true, duplicate: true, job: { id: first.job.id } });
  });

  it("gets its job back after an admin forbade the backend it asked for", async () => {
    t = await startTestEasel(modelsDir, openAiEnv());
    const { services } = t.easel;
    const first = imagine(services, actor(), "ev-1", { prompt: "one --backend openai" });
    if (!first.ok) throw new Error(first.message);
    await settingsSet("allowed-backends", "ldm");
    const fresh = imagine(services, actor(), "ev-2", { prompt: "two --backend openai" });
    expect(fresh.ok).toBe(false);
    const again = imagine(services, actor(), "ev-1", { prompt: "one --backend openai" });
    expect(again).toMatchObject({ ok: true, duplicate: true, job: { id: first.job.id } });
  });
});
