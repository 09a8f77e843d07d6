import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { FakeDiscord } from "../test/fakes/fake-discord/index.ts";
import { FakeOpenAi } from "../test/fakes/fake-openai.ts";
import { FakeSlack } from "../test/fakes/fake-slack/index.ts";
import { report } from "./measure.ts";

/**
 * `soak_rss_growth_mb`: easel's resident memory after 20,000 jobs minus after a warm-up of 1,000, both
 * measured after full garbage collections. easel runs as `npm start` composes it (src/main.ts in its own
 * process, with --expose-gc and bench/rss-probe.ts, which answers RSS requests over IPC); every job goes the
 * whole way: a slash command on the fake Discord (four in five) or the fake Slack, the durable job row, the
 * fake OpenAI as the renderer (dall-e-2 at 256², fast), the real engine, relay and outlets posting and editing
 * status messages and results. The fakes live in this process, so their own records (which keep everything)
 * do not count against easel. Target: ≤ 20 MB.
 */

const JOBS = Number(process.env.SOAK_RSS_JOBS ?? 20_000);
const WARMUP = Math.min(1_000, Math.floor(JOBS / 10));
/** Jobs in flight at once: enough to keep the queue and the relay busy, within the per-member caps. */
const WINDOW = 24;
const DISCORD_MEMBERS = 200;
const SLACK_MEMBERS = 50;

interface RssAnswer {
  type: "rss";
  rss?: number;
  heapUsed?: number;
  error?: string;
}

export async function benchSoakRss(): Promise<Record<string, number>> {
  const discord = await FakeDiscord.start({ heartbeatIntervalMs: 5_000 });
  const slack = await FakeSlack.start();
  const openai = await FakeOpenAi.start();
  const dataDir = await mkdtemp(join(tmpdir(), "easel-rss-data-"));
  const modelsDir = await mkdtemp(join(tmpdir(), "easel-rss-models-"));
  let output = "";
  const child: ChildProcess = spawn(
    process.execPath,
    ["--expose-gc", "--import", "tsx", "--import", resolve("bench/rss-probe.ts"), resolve("src/main.ts")],
    {
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "",
        EASEL_MODELS_DIR: modelsDir,
        EASEL_DATA_DIR: dataDir,
        EASEL_MAX_QUEUED: "1000",
        EASEL_MAX_QUEUED_PER_SERVER: "1000",
        OPENAI_API_KEY: openai.apiKey,
        OPENAI_BASE_URL: openai.baseUrl,
        OPENAI_IMAGE_MODEL: "dall-e-2",
        OPENAI_MAX_RPM: "100000",
        OPENAI_DAILY_IMAGES_PER_USER: "0",
        OPENAI_DAILY_IMAGES_PER_GUILD: "0",
        DISCORD_TOKEN: discord.token,
        DISCORD_API_BASE: discord.apiBase,
        SLACK_BOT_TOKEN: slack.botToken,
        SLACK_APP_TOKEN: slack.appToken,
        SLACK_API_URL: slack.apiUrl,
      },
      stdio: ["ignore", "ignore", "pipe", "ipc"],
    },
  );
  child.stderr?.on("data", (d: Buffer) => {
    output = (output + d.toString()).slice(-10_000);
  });
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  const fail = (what: string) => new Error(`soak-rss bench: ${what}\n${output.slice(-3000)}`);
  const until = async (check: () => boolean, timeoutMs: number, what: string) => {
    const deadline = performance.now() + timeoutMs;
    while (!check()) {
      if (performance.now() > deadline || child.exitCode !== null) throw fail(`gave up waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const rss = () =>
    new Promise<number>((done, reject) => {
      const onMessage = (m: RssAnswer) => {
        if (m?.type !== "rss") return;
        child.off("message", onMessage);
        if (m.rss === undefined) reject(fail(m.error ?? "no RSS"));
        else done(m.rss);
      };
      child.on("message", onMessage);
      child.send({ type: "rss" });
    });

  // Results seen so far, counted incrementally over the fakes' request logs.
  let results = 0;
  let discordSeen = 0;
  let slackSeen = 0;
  const count = () => {
    const requests = discord.requests;
    for (; discordSeen < requests.length; discordSeen++) {
      const r = requests[discordSeen];
      if (!r || r.status === 0) break; // still being answered: look again next time
      if (r.method === "PATCH" && r.path.startsWith("/webhooks/") && r.files.length > 0 && r.status === 200)
        results++;
    }
    const calls = slack.calls;
    for (; slackSeen < calls.length; slackSeen++) {
      const c = calls[slackSeen];
      if (!c || c.status === 0) break;
      if (c.method === "files.completeUploadExternal" && c.ok) results++;
    }
    return results;
  };

  try {
    await until(() => /serving discord and slack/.test(output), 60_000, "easel to start");
    await slack.socketConnected();
    let sent = 0;
    const send = () => {
      const i = sent++;
      if (i % 5 === 4) {
        slack.slashCommand({
          command: "/imagine",
          text: `soak ${i} --size 256x256`,
          userId: `U0RSS${String(i % SLACK_MEMBERS).padStart(5, "0")}`,
        });
      } else {
        discord.slashCommand({
          name: "imagine",
          userId: String(1400000000000000000n + BigInt(i % DISCORD_MEMBERS)),
          options: [{ name: "prompt", value: `soak ${i} --size 256x256` }],
        });
      }
    };
    const run = async (upTo: number) => {
      while (count() < upTo) {
        while (sent < upTo && sent - results < WINDOW) send();
        await new Promise((r) => setTimeout(r, 2));
        if (child.exitCode !== null) throw fail("easel exited");
      }
      // Everything sent has its result: let the relay's last edits go out before measuring.
      await until(() => count() >= upTo, 60_000, "the last results");
    };
    const started = performance.now();
    await run(WARMUP);
    const warm = await rss();
    await run(JOBS);
    const seconds = (performance.now() - started) / 1000;
    const end = await rss();
    const growth = (end - warm) / (1024 * 1024);
    return {
      soak_rss_growth_mb: growth,
      soak_rss_jobs: JOBS,
      soak_rss_warm_mb: warm / (1024 * 1024),
      soak_rss_end_mb: end / (1024 * 1024),
      soak_rss_jobs_per_s: JOBS / seconds,
    };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
    await discord.close();
    await slack.close();
    await openai.close();
    await rm(dataDir, { recursive: true, force: true });
    await rm(modelsDir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  for (const [key, value] of Object.entries(await benchSoakRss())) report(key, value);
}
