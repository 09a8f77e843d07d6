import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { TINY_MODEL_VARIANTS, writeTinyModel } from "../src/backends/ldm/tiny-model.ts";
import { FakeDiscord } from "../test/fakes/fake-discord/index.ts";
import { quantile, report } from "./measure.ts";

/**
 * `discord_ack_p99_ms`: the time from the INTERACTION_CREATE frame leaving the fake Discord gateway to the
 * bot's defer callback arriving at the fake's REST server, p99 over 200 `/imagine` interactions sent one after
 * another (each from another member, so that none is refused) while a long generation runs in the LDM worker
 * and the queue grows to 200 jobs whose status messages the relay keeps editing. easel runs as `npm start`
 * does, in its own process (the fake, like Discord, is elsewhere): the full path is the gateway frame,
 * discord.js, argument parsing, request validation, a durable SQLite job row, and the defer over HTTP.
 */
export async function benchDiscordAck(): Promise<void> {
  const modelsDir = await mkdtemp(join(tmpdir(), "easel-bench-models-"));
  const dataDir = await mkdtemp(join(tmpdir(), "easel-bench-data-"));
  await writeTinyModel(
    join(modelsDir, "bench"),
    TINY_MODEL_VARIANTS.bench,
    resolve("../shared/fixtures/clip-tokenizer"),
  );
  const fake = await FakeDiscord.start();
  let output = "";
  const easel = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    env: {
      PATH: process.env.PATH ?? "",
      DISCORD_TOKEN: fake.token,
      DISCORD_API_BASE: fake.apiBase,
      EASEL_MODELS_DIR: modelsDir,
      EASEL_DATA_DIR: dataDir,
      EASEL_DEVICE: "cpu",
      EASEL_MAX_QUEUED: "1000",
      EASEL_MAX_QUEUED_PER_SERVER: "1000",
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  easel.stderr.on("data", (d: Buffer) => {
    output += d.toString();
  });
  try {
    await fake.until(() => /serving discord/.test(output), 60_000, "easel to start");
    const long = fake.slashCommand({
      name: "imagine",
      options: [{ name: "prompt", value: "long --steps 150" }],
    });
    await fake.waitForOriginalMessage(long, (m) => /Rendering/.test(m.content), 60_000);
    const latencies: number[] = [];
    for (let i = 0; i < 200; i++) {
      const h = fake.slashCommand({
        name: "imagine",
        userId: String(1300000000000000000n + BigInt(i)),
        options: [{ name: "prompt", value: `ack ${i} --steps 2 --size 64x64` }],
      });
      const callback = await fake.waitForCallback(h, 10_000);
      if (callback.type !== 5)
        throw new Error(`interaction ${i} was answered with type ${callback.type}, not a defer`);
      latencies.push(callback.latencyMs);
    }
    report("discord_ack_p50_ms", quantile(latencies, 0.5));
    report("discord_ack_p99_ms", quantile(latencies, 0.99));
  } finally {
    const exited = new Promise((r) => easel.once("exit", r));
    easel.kill("SIGTERM");
    await exited;
    await fake.close();
    await rm(modelsDir, { recursive: true, force: true });
    await rm(dataDir, { recursive: true, force: true });
  }
}
