import { FakeSlack } from "../test/fakes/fake-slack/index.ts";
import { startEaselProcess } from "./easel-process.ts";
import { quantile } from "./measure.ts";

/**
 * `slack_ack_p99_ms`: the time from a slash-command envelope leaving the fake Slack's Socket Mode server to
 * the ack frame arriving back, p99 over 200 `/imagine` commands sent one after another (each from another
 * member, and with the queue bounds raised through EASEL_MAX_QUEUED / EASEL_MAX_QUEUED_PER_SERVER, so that
 * every one is a real /imagine that queues a job rather than a refusal) while a long generation runs in the LDM
 * worker and the relay posts and edits the queued jobs' status messages. easel runs as `npm start` does, in its
 * own process (the fake, like Slack, is elsewhere): the full path is the WebSocket frame, bolt, the text parser,
 * argument parsing, request validation, a durable SQLite job row, and the ack with its ephemeral "queued" text.
 */

const COMMANDS = 200;
const GENERAL = "C0123456789";

export async function benchSlackAck(): Promise<Record<string, number>> {
  /** Member i (the long job's is the last). */
  const user = (i: number) => `U0BENCH${String(i).padStart(4, "0")}`;
  const users = Array.from({ length: COMMANDS + 1 }, (_, i) => ({ id: user(i), name: `member${i}` }));
  const fake = await FakeSlack.start({ users });
  const easel = await startEaselProcess({
    SLACK_BOT_TOKEN: fake.botToken,
    SLACK_APP_TOKEN: fake.appToken,
    SLACK_API_URL: fake.apiUrl,
  });
  const until = async (check: () => boolean, timeoutMs: number, what: string) => {
    const deadline = performance.now() + timeoutMs;
    while (!check()) {
      if (performance.now() > deadline || easel.child.exitCode !== null)
        throw new Error(`slack-ack bench: gave up waiting for ${what}\n${easel.output()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  /** The long job's status message shows progress. */
  const rendering = () =>
    fake
      .messages(GENERAL)
      .some((m) => !m.ephemeral && /Rendering… step/.test(m.text) && m.text.includes("long"));
  try {
    await until(() => /serving slack/.test(easel.output()), 60_000, "easel to start");
    await fake.socketConnected();
    // Four images of 150 steps at 512×512: the generation outlasts the 200 commands.
    await fake.slashCommand({
      command: "/imagine",
      text: "long --steps 150 --n 4",
      userId: user(COMMANDS),
    }).ack;
    await until(rendering, 60_000, "the long job to render");
    const latencies: number[] = [];
    for (let i = 0; i < COMMANDS; i++) {
      const ack = await fake.slashCommand({
        command: "/imagine",
        text: `ack ${i} --steps 2 --size 64x64`,
        userId: user(i),
      }).ack;
      const text = String(ack.payload?.text ?? "");
      if (!/^Queued/.test(text)) throw new Error(`command ${i} was not queued: ${text}`);
      latencies.push(ack.latencyMs);
    }
    if (!rendering()) throw new Error("slack-ack bench: the long generation ended before the commands did");
    return {
      slack_ack_p50_ms: quantile(latencies, 0.5),
      slack_ack_p99_ms: quantile(latencies, 0.99),
    };
  } finally {
    // Cancel the long job first: SIGTERM gives running jobs 30 s to finish.
    await Promise.race([
      fake.slashCommand({ command: "/imagine", text: "cancel", userId: user(COMMANDS) }).ack,
      new Promise((r) => setTimeout(r, 2000)),
    ]).catch(() => undefined);
    await easel.stop();
    await fake.close();
  }
}
