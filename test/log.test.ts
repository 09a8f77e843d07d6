import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.ts";
import { createLogger, type LoggerOptions, loggerFor } from "../src/logging/logger.ts";
import { REDACTED, redactText } from "../src/logging/redact.ts";

/**
 * The log sink (src/logging): what it redacts (by value and by shape) and what it leaves alone, how an error
 * is reduced, the two formats and the levels. test/log-sentinel.test.ts runs the whole bot against it.
 */

function collect(options: LoggerOptions = {}) {
  const out: string[] = [];
  const logger = createLogger({ ...options, write: (text) => out.push(text) });
  return { logger, out, text: () => out.join("") };
}

describe("redaction by value", () => {
  it("removes each configured secret whatever its shape, also URL-encoded, longest first", () => {
    const secrets = ["plain-proxy-key", "a/b+c=d&e", "plain-proxy-key-2"];
    const line = redactText(
      "key plain-proxy-key-2 then plain-proxy-key, in a URL ?x=a%2Fb%2Bc%3Dd%26e and raw a/b+c=d&e",
      secrets,
    );
    expect(line).toBe(`key ${REDACTED} then ${REDACTED}, in a URL ?x=${REDACTED} and raw ${REDACTED}`);
  });

  it("ignores values too short to be secrets, which would blank out ordinary words", () => {
    expect(redactText("none of the jobs failed", ["none", "", "jobs"])).toBe("none of the jobs failed");
  });

  it("takes every token and key from the configuration", () => {
    const config = loadConfig({
      DISCORD_TOKEN: "discord-value-1234",
      SLACK_BOT_TOKEN: "slack-bot-value-1234",
      SLACK_APP_TOKEN: "slack-app-value-1234",
      SLACK_SIGNING_SECRET: "signing-value-1234",
      OPENAI_API_KEY: "openai-value-1234",
      HF_TOKEN: "hub-value-1234",
    });
    const out: string[] = [];
    const logger = loggerFor(config, { write: (text) => out.push(text) });
    const values = [
      "discord-value-1234",
      "slack-bot-value-1234",
      "slack-app-value-1234",
      "signing-value-1234",
      "openai-value-1234",
      "hub-value-1234",
    ];
    for (const value of values) logger.log(`easel: saw ${value} here`);
    expect(out).toEqual(values.map(() => `easel: saw ${REDACTED} here\n`));
  });
});

describe("redaction by shape", () => {
  const interaction = `aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDEyMzQ1Njc4OnRva2VuLXBhcnQ${"x".repeat(40)}`;
  const cases: [string, string, string][] = [
    [
      "a Discord bot token",
      "login with MTEwMDAwMDAwMDAwMDAwMDAwMQ.GfAkE0.abcdefghijklmnopqrstuvwxyz0123456789 failed",
      `login with ${REDACTED} failed`,
    ],
    [
      "discord.js's starred-out token",
      "Provided token: MTEwMDAwMDAwMDAwMDAwMDAwMQ.GfAkE0.************************************",
      `Provided token: ${REDACTED}`,
    ],
    ["an interaction token alone", `token ${interaction} expired`, `token ${REDACTED} expired`],
    [
      "the interaction webhook in a URL",
      "PATCH http://127.0.0.1:5/api/v10/webhooks/1100000000000000001/tok.en-part_1/messages/@original",
      `PATCH http://127.0.0.1:5/api/v10/webhooks/1100000000000000001/${REDACTED}/messages/@original`,
    ],
    [
      "the interaction callback",
      "POST /api/v10/interactions/1200000000000000001/some-token/callback",
      `POST /api/v10/interactions/1200000000000000001/${REDACTED}/callback`,
    ],
    ["a Slack bot token", "auth with xoxb-123-456-abcdefgh", `auth with ${REDACTED}`],
    ["a Slack user token", "xoxp-1-2-3-abcdef0123", REDACTED],
    ["a Slack app token", "xapp-1-A1-2-deadbeef", REDACTED],
    [
      "a Slack response_url",
      "posting to https://hooks.slack.com/commands/T0123/456/AbC123 failed",
      `posting to https://hooks.slack.com/${REDACTED} failed`,
    ],
    [
      "a response_url path on another host",
      `{"response_url":"http://127.0.0.1:9/actions/T0123456789/2/AbC"}`,
      `{"response_url":"http://127.0.0.1:9/actions/T0123456789/${REDACTED}"}`,
    ],
    [
      "the local fake's response_url",
      "http://127.0.0.1:9/response/T0123456789/Zm9vYmFy",
      `http://127.0.0.1:9/response/T0123456789/${REDACTED}`,
    ],
    [
      "a Slack upload URL",
      "https://files.slack.com/upload/v1/CwABAAAAXgoAAe",
      `https://files.slack.com/upload/v1/${REDACTED}`,
    ],
    [
      "a Socket Mode ticket",
      "wss://wss-primary.slack.com/link/?ticket=abc-123&app_id=A1",
      `wss://wss-primary.slack.com/link/?ticket=${REDACTED}&app_id=A1`,
    ],
    [
      "an OpenAI key, also masked",
      "Incorrect API key provided: sk-proj-abcd****wxyz.",
      `Incorrect API key provided: ${REDACTED}.`,
    ],
    ["a Hugging Face token", "hub said hf_abcdefghijKLMNOP0123 is gated", `hub said ${REDACTED} is gated`],
    ["a bearer token", "sent Bearer abc.def-ghi", `sent Bearer ${REDACTED}`],
    ["an Authorization header", "Authorization: Bot abc.def.ghi", `Authorization: ${REDACTED}`],
    ["a header in JSON", `{"authorization":"Bearer abcdefgh"}`, `{"authorization":"${REDACTED}"}`],
    [
      "a token field of a dumped object",
      "{ token: 'abc123', ok: false }",
      `{ token: '${REDACTED}', ok: false }`,
    ],
  ];
  for (const [what, text, expected] of cases) {
    it(`removes ${what}`, () => {
      expect(redactText(text)).toBe(expected);
    });
  }

  it("leaves what an operator needs alone: variable names, hints, ids, prompts", () => {
    const lines = [
      "easel cannot start: Slack refused SLACK_BOT_TOKEN (invalid_auth): use the Bot User OAuth Token (xoxb-…) of the installed app",
      "easel cannot start: Discord refused DISCORD_TOKEN (TokenInvalid: Discord does not accept this token): copy the bot token again",
      "easel: could not post the result of job 01HZX4 in channel C0123456789: not_in_channel",
      "openai: generations with gpt-image-1 failed (provider_unavailable): HTTP 429 rate_limit_exceeded request req_1: Rate limit reached",
      "a desk-lamp in a skiff, 7 CLIP tokens --size 64x64 --steps 3",
      "easel: Discord rate limit on PATCH /webhooks/:id/:token/messages/@original: waiting 200 ms",
    ];
    for (const line of lines) expect(redactText(line)).toBe(line);
  });
});

describe("the sink", () => {
  it("writes the message alone, one line per event, with control characters escaped", () => {
    const { logger, out } = collect();
    logger.log("easel: Discord ready as Easel#0001");
    logger.log("a prompt with\na forged line\r and \u001b[31mcolour");
    expect(out).toEqual([
      "easel: Discord ready as Easel#0001\n",
      "a prompt with\\na forged line\\r and \\u001b[31mcolour\n",
    ]);
  });

  it("writes JSON lines with the level, an ISO time and the message; a line about a failure is a warning", () => {
    const { logger, out } = collect({ format: "json" });
    logger.log("easel: Slack ready (Socket Mode)");
    logger.log("easel: could not update a vote tally: ratelimited");
    logger.error("easel cannot start: xoxb-123-456-abcdefgh refused");
    const records = out.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(records.map((r) => [r.level, r.msg])).toEqual([
      ["info", "easel: Slack ready (Socket Mode)"],
      ["warn", "easel: could not update a vote tally: ratelimited"],
      ["error", `easel cannot start: ${REDACTED} refused`],
    ]);
    for (const r of records) expect(String(r.time)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(out.every((line) => line.endsWith("}\n") && !line.slice(0, -1).includes("\n"))).toBe(true);
  });

  it("writes debug lines only with EASEL_DEBUG", () => {
    const quiet = collect();
    quiet.logger.debug("discord.js: heartbeat");
    expect(quiet.out).toEqual([]);
    expect(quiet.logger.debugEnabled).toBe(false);
    const verbose = collect({ debug: true });
    verbose.logger.debug("discord.js: heartbeat");
    expect(verbose.out).toEqual(["discord.js: heartbeat\n"]);
  });

  it("reduces an error to its name and message: never its request, headers or body", () => {
    const err = Object.assign(new Error("Request failed with status 401"), {
      name: "HTTPError",
      request: { url: "https://example.test/v1", body: "PRIVATE-BODY" },
      headers: { "x-private": "PRIVATE-HEADER" },
    });
    const { logger, out } = collect({ format: "json" });
    logger.error("easel: a request failed", err);
    const record = JSON.parse(out[0] ?? "{}") as { error?: unknown };
    expect(record.error).toEqual({ type: "HTTPError", message: "Request failed with status 401" });
    expect(out.join("")).not.toMatch(/PRIVATE|example\.test/);
    const human = collect();
    human.logger.error("easel: a request failed", err);
    expect(human.out).toEqual(["easel: a request failed\n"]);
  });

  it("adds the stack frames and the causes, redacted, only with EASEL_DEBUG", () => {
    const cause = new Error("login with xapp-1-A1-2-deadbeef refused");
    const err = new Error("Slack refused SLACK_APP_TOKEN", { cause });
    const { logger, text } = collect({ debug: true });
    logger.error("easel cannot start: Slack refused SLACK_APP_TOKEN", err);
    const lines = text().split("\n");
    expect(lines[0]).toBe("easel cannot start: Slack refused SLACK_APP_TOKEN");
    expect(lines[1]).toMatch(/^\s+at .+:\d+:\d+\)?$/);
    expect(text()).toContain(`  caused by Error: login with ${REDACTED} refused\n`);
    expect(text()).not.toContain("deadbeef");
    const plain = collect();
    plain.logger.error("easel cannot start: Slack refused SLACK_APP_TOKEN", err);
    expect(plain.text()).toBe("easel cannot start: Slack refused SLACK_APP_TOKEN\n");
  });

  it("describes a thrown non-Error by its message alone", () => {
    const { logger, out } = collect({ format: "json" });
    logger.warn("easel: odd failure", { message: "boom", config: { headers: { authorization: "x" } } });
    logger.warn("easel: odd failure", "a string");
    expect(out.map((l) => (JSON.parse(l) as { error: unknown }).error)).toEqual([
      { type: "object", message: "boom" },
      { type: "string", message: "a string" },
    ]);
  });
});

describe("EASEL_LOG_FORMAT", () => {
  it("is human by default, json on request, and anything else is refused by name", () => {
    expect(loadConfig({}).logFormat).toBe("human");
    expect(loadConfig({ EASEL_LOG_FORMAT: "json" }).logFormat).toBe("json");
    expect(() => loadConfig({ EASEL_LOG_FORMAT: "xml" })).toThrow(/EASEL_LOG_FORMAT must be human or json/);
    // The CLI does not log through the sink: a bad value must not stop `easel generate`.
    expect(loadConfig({ EASEL_LOG_FORMAT: "xml" }, { scope: "cli" }).logFormat).toBe("human");
  });
});
