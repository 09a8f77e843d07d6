import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SLACK_EVENTS_PATH } from "../src/platforms/slack/slack-bot.ts";
import { tinyModelsDir } from "./easel-harness.ts";
import { DEFAULT_APPLICATION_ID, FakeDiscord, type FakeMessage } from "./fakes/fake-discord/index.ts";
import { FakeOpenAi, rateLimited } from "./fakes/fake-openai.ts";
import { FakeSlack, signedPost } from "./fakes/fake-slack/index.ts";

/**
 * The sentinel test (issue 13): easel runs as `npm start` runs it (a child process, `--import tsx
 * src/main.ts`), with a planted secret in every token variable, through Discord, Slack (Socket Mode and HTTP)
 * and OpenAI flows and their failure paths: refused tokens at start, 429s, an expired interaction token, a
 * response_url that fails, provider errors that echo the key. Every byte the process prints on stdout and
 * stderr is kept (the LDM worker's own stdout and stderr are the process's: it inherits them), and none of it
 * may hold a secret by value or anything shaped like a token. Each flow is also checked to have happened
 * (images delivered, failures logged, the SDKs' debug output present), so a silent process cannot pass.
 */

/** In every planted secret: a leak of part of one (cut, or in another spelling) still shows. */
const MARK = "SENTINEL";
const hex = (bytes: number) => randomBytes(bytes).toString("hex");

/** Secrets in their services' real shapes, so that the shape rules meet them too. */
const PLANTED = {
  discord: `${Buffer.from(DEFAULT_APPLICATION_ID).toString("base64url")}.GfAkE0.${MARK}discord${hex(16)}`,
  discordWrong: `${Buffer.from(DEFAULT_APPLICATION_ID).toString("base64url")}.GfAkE0.${MARK}wrong${hex(16)}`,
  slackBot: `xoxb-0123456789-0123456789012-${MARK}bot${hex(12)}`,
  slackBotWrong: `xoxb-0123456789-0123456789012-${MARK}wrongbot${hex(12)}`,
  slackApp: `xapp-1-A0123456789-0123456789012-${MARK}app${hex(24)}`,
  signingSecret: `${MARK}signing${hex(16)}`,
  openai: `sk-proj-${MARK}openai${hex(16)}`,
  openaiWrong: `sk-proj-${MARK}wrongkey${hex(16)}`,
  hf: `hf_${MARK}hub${hex(16)}`,
};

/**
 * Token shapes, written here independently of src/logging/redact.ts so that a hole in its rules is not
 * mirrored: a match that is not followed by "[redacted]" is a leak.
 */
const TOKEN_SHAPES: [string, RegExp][] = [
  ["a Discord bot token", /[MNO][A-Za-z\d_-]{23,27}\.[A-Za-z\d_-]{6,7}\.[A-Za-z\d_-]{20,}/],
  ["a Discord interaction token", /aW50ZXJhY3Rpb246[A-Za-z0-9_-]{4,}/],
  [
    "an interaction webhook or callback path",
    /\/(?:webhooks|interactions)\/\d{5,}\/(?!\[redacted\])[^/\s"'\\]+/,
  ],
  ["a Slack token", /xox[a-z]-[A-Za-z0-9-]{4,}/],
  ["a Slack app token", /xapp-[A-Za-z0-9-]{4,}/],
  ["a Slack response_url", /\/(?:response|commands|actions)\/T[A-Z0-9]+\/(?!\[redacted\])[^\s"'\\]+/],
  ["a hooks.slack.com URL", /hooks\.slack\.com\/(?!\[redacted\])\S+/],
  ["a Slack upload URL", /\/upload\/v1\/(?!\[redacted\])[^\s"'\\]+/],
  ["a Socket Mode ticket", /ticket=(?!\[redacted\])[^&\s"'\\]+/],
  ["an OpenAI key", /sk-[A-Za-z0-9_-]{4,}/],
  ["a Hugging Face token", /hf_[A-Za-z0-9]{6,}/],
  ["a bearer token", /Bearer (?!\[redacted\])[^\s"'\\]{4,}/i],
];

/** Everything one easel process printed, stdout and stderr, with waits on what it prints (no polling). */
class Printed {
  stdout = "";
  stderr = "";
  private readonly waiters = new Set<() => void>();
  exitCode: number | null | undefined;

  constructor(readonly child: ChildProcess) {
    child.stdout?.on("data", (d: Buffer) => this.add("stdout", d));
    child.stderr?.on("data", (d: Buffer) => this.add("stderr", d));
    child.once("exit", (code) => {
      this.exitCode = code;
      for (const w of [...this.waiters]) w();
    });
  }

  get text(): string {
    return `${this.stdout}${this.stderr}`;
  }

  private add(stream: "stdout" | "stderr", chunk: Buffer): void {
    this[stream] += chunk.toString();
    for (const w of [...this.waiters]) w();
  }

  /** Resolves once the output matches `pattern`; rejects at the deadline or when the process exits first. */
  until(pattern: RegExp, what: string, timeoutMs = 30_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        if (err) reject(err);
        else resolve();
      };
      const check = () => {
        if (pattern.test(this.text)) done();
        else if (this.exitCode !== undefined)
          done(new Error(`easel exited (${this.exitCode}) before ${what}:\n${this.text.slice(-3000)}`));
      };
      const timer = setTimeout(
        () => done(new Error(`no ${what} within ${timeoutMs} ms:\n${this.text.slice(-3000)}`)),
        timeoutMs,
      );
      this.waiters.add(check);
      check();
    });
  }

  /** Resolves with the exit code. */
  exited(): Promise<number | null> {
    return new Promise((resolve) => {
      if (this.exitCode !== undefined) resolve(this.exitCode);
      else this.child.once("exit", (code) => resolve(code));
    });
  }
}

let work: string;
let modelsDir: string;
let noModels: string;
const running = new Set<ChildProcess>();

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "easel-sentinel-"));
  modelsDir = await tinyModelsDir();
  noModels = join(work, "no-models");
});
afterAll(async () => {
  for (const child of running) child.kill("SIGKILL");
  await rm(work, { recursive: true, force: true });
  await rm(modelsDir, { recursive: true, force: true });
});

/** `npm start` with only `env` (and HF_TOKEN planted: the bot never uses it, so it must never show). */
function startMain(env: Record<string, string>): Printed {
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      EASEL_THREADS: "1",
      EASEL_DEVICE: "cpu",
      EASEL_DATA_DIR: join(work, `data-${hex(4)}`),
      EASEL_MODELS_DIR: modelsDir,
      HF_TOKEN: PLANTED.hf,
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  child.once("exit", () => running.delete(child));
  return new Printed(child);
}

/** Asserts that `output` holds no planted secret, no `values` (tokens the fakes issued), no token shape. */
function expectNoSecrets(output: string, values: readonly string[] = []): void {
  for (const [name, value] of Object.entries(PLANTED))
    expect(output.includes(value), `${name} by value`).toBe(false);
  expect(output).not.toContain(MARK);
  for (const value of values)
    expect(output.includes(value), `an issued token ${value.slice(0, 8)}…`).toBe(false);
  for (const [what, shape] of TOKEN_SHAPES) expect(output, what).not.toMatch(shape);
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (typeof address !== "object" || address === null) throw new Error("no port");
  return address.port;
}

const hasImage = (m: FakeMessage) => m.attachments.length > 0 && /ready/.test(m.content);
const prompt = (value: string) => [{ name: "prompt", value }];
/** Every button action id in the Slack messages of a channel, their edits included. */
const slackActionIds = (slack: FakeSlack, channel: string): string[] =>
  [...JSON.stringify(slack.messages(channel)).matchAll(/"action_id":"([a-z]:[0-9a-z]+)"/g)].map(
    (m) => m[1] as string,
  );
const GENERAL = "C0123456789";

describe("no secret in anything easel prints", () => {
  it("Discord, Slack in Socket Mode and OpenAI with EASEL_DEBUG=1: delivered, failures logged, nothing leaked", async () => {
    // Discord's clock can jump 16 minutes: interaction tokens then expire (401 Invalid Webhook Token).
    let discordOffset = 0;
    const discord = await FakeDiscord.start({
      token: PLANTED.discord,
      heartbeatIntervalMs: 1_000,
      now: () => Date.now() + discordOffset,
    });
    const slack = await FakeSlack.start({ botToken: PLANTED.slackBot, appToken: PLANTED.slackApp });
    const openai = await FakeOpenAi.start({ apiKey: PLANTED.openai });
    const easel = startMain({
      DISCORD_TOKEN: PLANTED.discord,
      DISCORD_API_BASE: discord.apiBase,
      SLACK_BOT_TOKEN: PLANTED.slackBot,
      SLACK_APP_TOKEN: PLANTED.slackApp,
      SLACK_API_URL: slack.apiUrl,
      OPENAI_API_KEY: PLANTED.openai,
      OPENAI_BASE_URL: openai.baseUrl,
      OPENAI_IMAGE_MODEL: "gpt-image-1",
      OPENAI_MAX_RETRIES: "0",
      OPENAI_MAX_RPM: "1000",
      // Debug: the most output there is (discord.js's REST lines carry interaction URLs, Socket Mode's whole
      // payloads with response_urls, errors their stack frames).
      EASEL_DEBUG: "1",
    });
    try {
      await easel.until(/serving discord and slack/, "easel to start");
      await slack.socketConnected();

      // Discord, the local model, with a 429 on the interaction's callback (its URL holds the token).
      discord.rateLimitNext(/POST \/interactions\//, { retryAfterS: 0.2 });
      const local = discord.slashCommand({
        name: "imagine",
        options: prompt("a lighthouse --size 64x64 --steps 2"),
      });
      await discord.waitForOriginalMessage(local, hasImage, 30_000);
      // discord.js waits a 429 out itself; its debug line names the full URL, interaction token and all.
      await easel.until(
        /discord\.js: .*Encountered unexpected 429 rate limit/,
        "the 429 in the debug output",
      );

      // OpenAI: an image; a 429 (retried by the engine); a 400 whose text echoes the key; a 401 that does.
      const remote = discord.slashCommand({ name: "imagine", options: prompt("a fox --backend openai") });
      await discord.waitForOriginalMessage(remote, hasImage, 30_000);
      openai.script.push(rateLimited());
      const limited = discord.slashCommand({ name: "imagine", options: prompt("a hare --backend openai") });
      await discord.waitForOriginalMessage(limited, hasImage, 30_000);
      await easel.until(
        /openai: generations with gpt-image-1 failed \(provider_unavailable\): HTTP 429/,
        "the 429",
      );
      openai.script.push({ kind: "error", status: 400, message: `bad request from key ${PLANTED.openai}` });
      const echoed = discord.slashCommand({ name: "imagine", options: prompt("a wolf --backend openai") });
      const shown = await discord.waitForOriginalMessage(
        echoed,
        (m) => /refused the request/.test(m.content),
        30_000,
      );
      // What the member saw never had the key either: the echo was redacted before it was shown.
      expect(shown.content).toContain("bad request from key [redacted]");
      await easel.until(/failed \(invalid_argument\): HTTP 400/, "the 400 logged");
      openai.apiKey = `sk-other-${hex(8)}`;
      const refused = discord.slashCommand({ name: "imagine", options: prompt("a crow --backend openai") });
      await discord.waitForOriginalMessage(refused, (m) => /OPENAI_API_KEY/.test(m.content), 30_000);
      await easel.until(/failed \(config\): HTTP 401 invalid_api_key/, "the 401 logged");
      openai.apiKey = PLANTED.openai;

      // Slack over Socket Mode.
      const ack = await slack.slashCommand({ command: "/imagine", text: "from slack --size 64x64 --steps 2" })
        .ack;
      expect(String(ack.payload?.text)).toMatch(/^Queued/);
      await slack.waitFor((c) => c.method === "files.completeUploadExternal" && c.ok, 30_000);

      // An interaction token that dies while its job is queued: the result goes out as a channel message.
      const late = discord.slashCommand({ name: "imagine", options: prompt("late --size 64x64 --steps 2") });
      await discord.waitForCallback(late);
      discordOffset += 16 * 60_000;
      await discord.until(
        () =>
          discord
            .messages(discord.interaction(late).channelId)
            .find((m) => m.attachments.length > 0 && m.webhook_id === undefined),
        30_000,
        "the channel message after the token died",
      );
      // Nothing members were shown holds a secret either.
      expect(JSON.stringify(discord.messages(discord.interaction(late).channelId))).not.toContain(MARK);

      easel.child.kill("SIGTERM");
      expect(await easel.exited()).toBe(0);
    } finally {
      easel.child.kill("SIGKILL");
      await slack.close();
      await discord.close();
      await openai.close();
    }

    const output = easel.text;
    // The debug output really carried what the sink had to redact: interaction URLs, Socket Mode payloads.
    expect(output).toMatch(/discord\.js: .*\/interactions\/\d+\/\[redacted\]\/callback/);
    expect(output).toMatch(/slack .*response_url.*\/response\/T\w+\/\[redacted\]/);
    expectNoSecrets(output, [
      ...discord.interactions.map((i) => i.token),
      ...slack.responseUrlRecords.flatMap((r) => [r.url, r.id]),
    ]);
  });

  it("Slack over HTTP with JSON lines: every line is JSON, a failing response_url is logged, nothing leaked", async () => {
    // Slack's clock can jump past a response_url's 30 minutes.
    let slackOffset = 0;
    const slack = await FakeSlack.start({
      botToken: PLANTED.slackBot,
      signingSecret: PLANTED.signingSecret,
      now: () => Date.now() + slackOffset,
    });
    const port = await freePort();
    const easel = startMain({
      SLACK_BOT_TOKEN: PLANTED.slackBot,
      SLACK_SIGNING_SECRET: PLANTED.signingSecret,
      SLACK_API_URL: slack.apiUrl,
      SLACK_PORT: String(port),
      EASEL_LOG_FORMAT: "json",
      EASEL_DEBUG: "1",
    });
    const url = `http://127.0.0.1:${port}${SLACK_EVENTS_PATH}`;
    const secret = { signingSecret: PLANTED.signingSecret };
    try {
      await easel.until(/serving slack/, "easel to start");
      const forged = await signedPost(
        url,
        "command",
        slack.slashCommandPayload({ command: "/imagine", text: "x" }),
        {
          signingSecret: `${MARK}-not-the-secret`,
        },
      );
      expect(forged.status).toBe(401);
      const good = await signedPost(
        url,
        "command",
        slack.slashCommandPayload({ command: "/imagine", text: "over http --size 64x64 --steps 2" }),
        secret,
      );
      expect(JSON.parse(good.body)).toMatchObject({ text: expect.stringMatching(/^Queued/) });
      await slack.waitFor((c) => c.method === "files.completeUploadExternal" && c.ok, 30_000);

      // A reroll whose response_url has expired by the time easel posts to it: logged, then the bot token.
      const rerollOf = () => slackActionIds(slack, GENERAL).find((id) => id.startsWith("r:"));
      // The result card (with its buttons) replaces the status message once the upload is done.
      await slack.waitFor((c) => c.method === "chat.update" && c.ok && rerollOf() !== undefined, 30_000);
      const reroll = rerollOf();
      const press = slack.blockActionPayload({ actionId: reroll ?? "" });
      slackOffset += 31 * 60_000;
      expect((await signedPost(url, "interactive", press, secret)).status).toBe(200);
      await easel.until(
        /Slack refused a response_url post \(HTTP 404\); using the bot token/,
        "the failed post",
      );
      await slack.waitFor((c) => c.method === "chat.postEphemeral" && c.ok, 30_000);
      const uploads = () => slack.calls.filter((c) => c.method === "files.completeUploadExternal" && c.ok);
      await slack.waitFor(
        (c) => c.method === "files.completeUploadExternal" && c.ok && uploads().length >= 2,
        30_000,
      );

      easel.child.kill("SIGTERM");
      expect(await easel.exited()).toBe(0);
    } finally {
      easel.child.kill("SIGKILL");
      await slack.close();
    }

    // One JSON object per line, stdout and stderr alike: nothing bypasses the sink (the worker's output included).
    const lines = easel.text.split("\n").filter((l) => l !== "");
    expect(lines.length).toBeGreaterThan(5);
    for (const line of lines) {
      const record = JSON.parse(line) as Record<string, unknown>;
      expect(record).toMatchObject({
        level: expect.any(String),
        time: expect.any(String),
        msg: expect.any(String),
      });
    }
    const levels = new Set(lines.map((l) => (JSON.parse(l) as { level: string }).level));
    expect([...levels].sort()).toEqual(expect.arrayContaining(["debug", "info", "warn"]));
    expectNoSecrets(
      easel.text,
      slack.responseUrlRecords.flatMap((r) => [r.url, r.id]),
    );
  });

  it("refused tokens at start: each named by its variable, none printed, also with EASEL_DEBUG=1", async () => {
    const discord = await FakeDiscord.start({ heartbeatIntervalMs: 1_000 });
    const slack = await FakeSlack.start({ botToken: PLANTED.slackBot, appToken: PLANTED.slackApp });
    const openai = await FakeOpenAi.start({ apiKey: PLANTED.openai });
    // OpenAI alone renders (no model folder): nothing heavy loads before the refusal.
    const openAiEnv = {
      OPENAI_API_KEY: PLANTED.openai,
      OPENAI_BASE_URL: openai.baseUrl,
      EASEL_MODELS_DIR: noModels,
    };
    try {
      const runs = [
        startMain({
          ...openAiEnv,
          DISCORD_TOKEN: PLANTED.discordWrong,
          DISCORD_API_BASE: discord.apiBase,
          EASEL_DEBUG: "1",
        }),
        startMain({
          ...openAiEnv,
          SLACK_BOT_TOKEN: PLANTED.slackBotWrong,
          SLACK_APP_TOKEN: PLANTED.slackApp,
          SLACK_API_URL: slack.apiUrl,
        }),
        startMain({
          ...openAiEnv,
          // The fake answers 401 with the whole key it was given in the message.
          OPENAI_API_KEY: PLANTED.openaiWrong,
          DISCORD_TOKEN: PLANTED.discord,
          DISCORD_API_BASE: discord.apiBase,
          EASEL_DEBUG: "1",
        }),
      ];
      expect(await Promise.all(runs.map((r) => r.exited()))).toEqual([1, 1, 1]);
      const [discordRun, slackRun, openaiRun] = runs.map((r) => r.text) as [string, string, string];
      expect(discordRun).toMatch(/^easel cannot start: Discord refused DISCORD_TOKEN/m);
      expect(discordRun).toMatch(/^\s+at .+:\d+:\d+/m);
      expect(slackRun).toMatch(/^easel cannot start: Slack refused SLACK_BOT_TOKEN \(invalid_auth\)/m);
      expect(openaiRun).toMatch(/HTTP 401 invalid_api_key/);
      expect(openaiRun).toMatch(/^easel cannot start: .*OPENAI_API_KEY/m);
      // The fake did see each wrong token: the refusals were real.
      expect(discord.requests.some((r) => r.status === 401)).toBe(true);
      expect(slack.calls.some((c) => c.method === "auth.test" && c.error === "invalid_auth")).toBe(true);
      expect(openai.calls.some((c) => c.status === 401)).toBe(true);
      for (const run of runs) expectNoSecrets(run.text);
    } finally {
      await slack.close();
      await discord.close();
      await openai.close();
    }
  });
});
