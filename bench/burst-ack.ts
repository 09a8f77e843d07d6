import { pathToFileURL } from "node:url";
import { FakeDiscord, type InteractionHandle } from "../test/fakes/fake-discord/index.ts";
import { startEaselProcess } from "./easel-process.ts";
import { quantile, report } from "./measure.ts";

/**
 * `burst_ack_p99_ms`: 200 `/imagine` from 50 members within one second (one every 5 ms, each member's four
 * 250 ms apart) on the fake Discord, easel running as `npm start` does in its own process (the LDM worker
 * rendering the queued jobs at 64², 2 steps, meanwhile, and the relay posting their status messages): the time
 * from each INTERACTION_CREATE frame to the bot's answer at the fake's REST server, p99 over all 200. Every one
 * must be answered within Discord's 3 seconds (the fake refuses a later callback, as Discord does): a deferred
 * reply for a queued job, or a refusal naming the limit for the excess (each member may have 3 jobs waiting or
 * rendering: EASEL_MAX_QUEUED_PER_USER). Prints how many were acknowledged, queued and refused. One job is run
 * to its result first (a start's one-off costs are not a burst's). Target: p99 < 1000 ms.
 */

const MEMBERS = 50;
const COMMANDS = 200;
const SPREAD_MS = 1_000;

export async function benchBurstAck(): Promise<Record<string, number>> {
  const fake = await FakeDiscord.start();
  const easel = await startEaselProcess({ DISCORD_TOKEN: fake.token, DISCORD_API_BASE: fake.apiBase });
  try {
    await fake.until(() => /serving discord/.test(easel.output()), 60_000, "easel to start");
    // One job first, to its result: the first command after a start pays one-off costs (the first durable
    // write, the first render and post) that are no part of a burst's steady cost.
    const warm = fake.slashCommand({
      name: "imagine",
      userId: String(1300000000000000000n + BigInt(MEMBERS)),
      options: [{ name: "prompt", value: "warm-up --steps 2 --size 64x64" }],
    });
    await fake.waitForOriginalMessage(warm, (m) => m.attachments.length > 0, 60_000);
    const handles: InteractionHandle[] = [];
    const start = performance.now();
    for (let i = 0; i < COMMANDS; i++) {
      const due = start + (i * SPREAD_MS) / COMMANDS;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      handles.push(
        fake.slashCommand({
          name: "imagine",
          userId: String(1300000000000000000n + BigInt(i % MEMBERS)),
          options: [{ name: "prompt", value: `burst ${i} --steps 2 --size 64x64` }],
        }),
      );
    }
    const sentWithinMs = performance.now() - start;
    // Discord refuses a callback after 3 s: waiting longer than that cannot make an answer count.
    const callbacks = await Promise.all(
      handles.map((h) => fake.waitForCallback(h, 5_000).catch(() => undefined)),
    );
    const answered = callbacks.filter((c) => c !== undefined);
    const queued = answered.filter((c) => c.type === 5);
    const refused = answered.filter((c) => c.type === 4);
    const latencies = answered.map((c) => c.latencyMs);
    const late = latencies.filter((ms) => ms >= 3_000).length;
    const unnamed = refused.filter((c) => {
      const content = String((c.body as { data?: { content?: unknown } } | undefined)?.data?.content ?? "");
      return !/limit/i.test(content);
    });
    const figures = {
      burst_ack_p99_ms: quantile(latencies, 0.99),
      burst_ack_p50_ms: quantile(latencies, 0.5),
      burst_ack_max_ms: Math.max(...latencies),
      burst_sent_within_ms: sentWithinMs,
      burst_acknowledged: answered.length,
      burst_queued: queued.length,
      burst_refused: refused.length,
    };
    const problems = [
      answered.length < COMMANDS ? `${COMMANDS - answered.length} of ${COMMANDS} were never answered` : "",
      late > 0 ? `${late} were answered after 3 s` : "",
      queued.length + refused.length < answered.length
        ? `${answered.length - queued.length - refused.length} answers were neither a defer nor a refusal`
        : "",
      unnamed.length > 0 ? `${unnamed.length} refusals do not name the limit` : "",
      ...fake.violations.map((v) => `violation: ${v.route}: ${v.errors.join("; ")}`),
    ].filter(Boolean);
    if (problems.length > 0) {
      for (const [key, value] of Object.entries(figures)) report(key, value);
      throw new Error(`burst-ack bench: ${problems.join("; ")}`);
    }
    return figures;
  } finally {
    await easel.stop();
    await fake.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  for (const [key, value] of Object.entries(await benchBurstAck())) report(key, value);
}
