import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { TINY_MODEL_VARIANTS, writeTinyModel } from "../src/backends/ldm/tiny-model.ts";
import { FakeSlack } from "../test/fakes/fake-slack/index.ts";
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
  const modelsDir = await mkdtemp(join(tmpdir(), "easel-bench-models-"));
  const dataDir = await mkdtemp(join(tmpdir(), "easel-bench-data-"));
  await writeTinyModel(
    join(modelsDir, "bench"),
    TINY_MODEL_VARIANTS.bench,
    resolve("../shared/fixtures/clip-tokenizer"),
  );
  /** Member i (the long job's is the last). */
  const user = (i: number) => `U0BENCH${String(i).padStart(4, "0")}`;
  const users = Array.from({ length: COMMANDS + 1 }, (_, i) => ({ id: user(i), name: `member${i}` }));
  const fake = await FakeSlack.start({ users });
  let output = "";
  const easel = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    env: {
      PATH: process.env.PATH ?? "",
      SLACK_BOT_TOKEN: fake.botToken,
      SLACK_APP_TOKEN: fake.appToken,
      SLACK_API_URL: fake.apiUrl,
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
  const until = async (check: () => boolean, timeoutMs: number, what: string) => {
    const deadline = performance.now() + timeoutMs;
    while (!check()) {
      if (performance.now() > deadline || easel.exitCode !== null)
        throw new Error(`slack-ack bench: gave up waiting for ${what}\n${output}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  /** The long job's status message shows progress. */
  const rendering = () =>
    fake
      .messages(GENERAL)
      .some((m) => !m.ephemeral && /Rendering… step/.test(m.text) && m.text.includes("long"));
  try {
    await until(() => /serving slack/.test(output), 60_000, "easel to start");
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
    const exited = new Promise((r) => easel.once("exit", r));
    if (easel.exitCode === null) {
      easel.kill("SIGTERM");
      await exited;
    }
    await fake.close();
    await rm(modelsDir, { recursive: true, force: true });
    await rm(dataDir, { recursive: true, force: true });
  }
}
