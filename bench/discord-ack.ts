import { FakeDiscord } from "../test/fakes/fake-discord/index.ts";
import { startEaselProcess } from "./easel-process.ts";
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
  const fake = await FakeDiscord.start();
  const easel = await startEaselProcess({ DISCORD_TOKEN: fake.token, DISCORD_API_BASE: fake.apiBase });
  try {
    await fake.until(() => /serving discord/.test(easel.output()), 60_000, "easel to start");
    const long = fake.slashCommand({
      name: "imagine",
      options: [{ name: "prompt", value: "long --steps 150 --n 4" }],
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
    // Cancel the long job first: on SIGTERM running jobs get 30 s to finish.
    await fake.waitForCallback(fake.slashCommand({ name: "cancel" }), 5_000).catch(() => undefined);
  } finally {
    await easel.stop();
    await fake.close();
  }
}
