import {
  App,
  type BlockAction,
  type ButtonAction,
  type Logger,
  LogLevel,
  type MessageShortcut,
  SocketModeReceiver,
  webApi,
} from "@slack/bolt";
import { afterEach, describe, expect, it } from "vitest";
import { makePng } from "./fakes/fake-openai.ts";
import {
  checkResponse,
  FakeSlack,
  type FakeSlackOptions,
  RESPONSE_URL_TTL_MS,
  signedPost,
} from "./fakes/fake-slack/index.ts";

/**
 * The fake Slack against the real, unmodified @slack/bolt 5 (and the @slack/web-api and @slack/socket-mode it
 * ships with): if these pass, the fake speaks the wire protocols bolt speaks. No easel code is involved.
 */

const TS = /^\d{10}\.\d{6}$/;
const GENERAL = "C0123456789";
const RANDOM = "C0987654321";

/** A bolt Logger that keeps lines instead of printing them (bolt logs every reconnect and failed call). */
function quietLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  let level = LogLevel.INFO;
  const keep =
    (tag: string) =>
    (...msg: unknown[]) => {
      lines.push(`${tag} ${msg.map(String).join(" ")}`);
    };
  return {
    lines,
    debug: () => {},
    info: keep("info"),
    warn: keep("warn"),
    error: keep("error"),
    setLevel: (l: LogLevel) => {
      level = l;
    },
    getLevel: () => level,
    setName: () => {},
  };
}

/** Web API retries without p-retry's default one-second backoff (Retry-After is still honoured). */
const FAST_RETRIES = { retries: 2, minTimeout: 0, maxTimeout: 0 };

let fake: FakeSlack | undefined;
const apps: App[] = [];

async function startFake(options: FakeSlackOptions = {}): Promise<FakeSlack> {
  fake = await FakeSlack.start(options);
  return fake;
}

/** A Socket Mode app pointed at the fake: `clientOptions.slackApiUrl` reaches both WebClients. */
function socketApp(f: FakeSlack, logger: Logger = quietLogger()): App {
  const app = new App({
    token: f.botToken,
    appToken: f.appToken,
    socketMode: true,
    logger,
    clientOptions: { slackApiUrl: f.apiUrl, retryConfig: FAST_RETRIES },
  });
  apps.push(app);
  return app;
}

/** A plain WebClient (the one inside bolt) for method-level checks. */
function webClient(f: FakeSlack, options: Partial<webApi.WebClientOptions> = {}, token = f.botToken) {
  return new webApi.WebClient(token, {
    slackApiUrl: f.apiUrl,
    logger: quietLogger(),
    retryConfig: FAST_RETRIES,
    ...options,
  });
}

afterEach(async () => {
  // Apps first: a Socket Mode client that loses its server keeps reconnecting.
  for (const app of apps.splice(0)) await app.stop();
  await fake?.close();
  fake = undefined;
});

describe("fake Slack in Socket Mode with bolt", () => {
  it("connects, acks /imagine, posts, updates and uploads a PNG into the thread", async () => {
    const f = await startFake();
    const app = socketApp(f);
    const png = makePng(64, 48, [200, 120, 40]);
    const failures: unknown[] = [];
    /** files.uploadV2's answer: one files.completeUploadExternal answer per destination (typed loosely by web-api). */
    let uploaded: { files?: { files?: { id?: string }[] }[] } | undefined;
    let handled = () => {};
    const handlerDone = new Promise<void>((resolve) => {
      handled = resolve;
    });
    app.command("/imagine", async ({ command, ack, client }) => {
      await ack();
      try {
        const posted = await client.chat.postMessage({
          channel: command.channel_id,
          text: `Rendering “${command.text}”…`,
          blocks: [{ type: "section", text: { type: "mrkdwn", text: `Rendering *${command.text}*…` } }],
        });
        const ts = posted.ts ?? "";
        await client.chat.update({ channel: command.channel_id, ts, text: "Done: 1 image" });
        uploaded = (await client.files.uploadV2({
          channel_id: command.channel_id,
          thread_ts: ts,
          file: Buffer.from(png),
          filename: "lighthouse.png",
          initial_comment: "seed 42",
        })) as typeof uploaded;
      } catch (err) {
        failures.push(err);
      }
      handled();
    });
    await app.start();
    expect(f.socketConnects).toBe(1);

    const sent = f.slashCommand({ command: "/imagine", text: "a lighthouse in a storm" });
    const ack = await sent.ack;
    expect(ack.envelopeId).toBe(sent.envelopeId);
    expect(ack.receivedAt).toBeGreaterThan(sent.sentAt);
    // Within Slack's 3 s: how much faster is a speed figure (npm run bench: slack_ack_p99_ms).
    expect(ack.late).toBe(false);

    await handlerDone;
    expect(failures).toEqual([]);

    const [parent, fileMessage, ...rest] = f.messages(GENERAL);
    expect(rest).toEqual([]);
    expect(parent?.ts).toMatch(TS);
    expect(parent?.text).toBe("Done: 1 image");
    expect(parent?.updates.map((u) => u.text)).toEqual(["Rendering “a lighthouse in a storm”…"]);
    expect(parent?.bot_id).toBe(f.config.botId);
    expect(fileMessage?.thread_ts).toBe(parent?.ts);
    expect(fileMessage?.text).toBe("seed 42");
    expect(fileMessage && fileMessage.ts > (parent?.ts ?? "")).toBe(true);

    const [file] = f.files;
    expect(file?.id).toMatch(/^F[A-Z0-9]{10}$/);
    expect(fileMessage?.files).toEqual([file?.id]);
    expect(file?.mimetype).toBe("image/png");
    expect(f.fileBytes(file?.id ?? "")).toEqual(png);
    expect(file?.shares).toEqual([{ channel: GENERAL, ts: fileMessage?.ts, thread_ts: parent?.ts }]);
    expect(uploaded?.files?.[0]?.files?.[0]?.id).toBe(file?.id);

    // Who called what, with which token: bolt's auth.test and the socket client's apps.connections.open.
    const methods = f.calls.map((c) => `${c.method}:${c.tokenKind}:${c.status}`);
    expect(methods).toEqual([
      "auth.test:bot:200",
      "apps.connections.open:app:200",
      "chat.postMessage:bot:200",
      "chat.update:bot:200",
      "files.getUploadURLExternal:bot:200",
      "upload:bot:200",
      "files.completeUploadExternal:bot:200",
    ]);
    expect(f.violations).toEqual([]);
  });

  it("delivers a button press and a message shortcut, both acked in time", async () => {
    const f = await startFake();
    const app = socketApp(f);
    const pressed: {
      actionId: string;
      value: string | undefined;
      blockId: string;
      messageTs: string | undefined;
    }[] = [];
    const shortcuts: { callbackId: string; text: string | undefined }[] = [];
    app.action<BlockAction<ButtonAction>>("reroll", async ({ ack, action, body, respond }) => {
      await ack();
      pressed.push({
        actionId: action.action_id,
        value: action.value,
        blockId: action.block_id,
        messageTs: body.message?.ts,
      });
      await respond({ replace_original: true, text: "Rerolling…" });
    });
    app.shortcut<MessageShortcut>("imagine_from_message", async ({ ack, shortcut }) => {
      await ack();
      shortcuts.push({ callbackId: shortcut.callback_id, text: shortcut.message.text });
    });
    await app.start();

    const posted = await app.client.chat.postMessage({
      channel: GENERAL,
      text: "1 image",
      blocks: [
        { type: "section", text: { type: "mrkdwn", text: "*a lighthouse*" } },
        {
          type: "actions",
          elements: [
            { type: "button", action_id: "reroll", value: "job-7", text: { type: "plain_text", text: "🔄" } },
          ],
        },
      ],
    });
    const press = f.blockAction({ actionId: "reroll" });
    expect((await press.ack).late).toBe(false);
    await f.waitFor((c) => c.method === "response_url");
    // The fake found the button in the bot's message and reported it as Slack does.
    const blockId = (f.messages(GENERAL)[0]?.blocks?.[1] as { block_id?: string } | undefined)?.block_id;
    expect(blockId).toMatch(/^[A-Za-z0-9]{5}$/);
    expect(pressed).toEqual([{ actionId: "reroll", value: "job-7", blockId, messageTs: posted.ts }]);
    expect(f.messages(GENERAL)[0]?.text).toBe("Rerolling…");

    const source = f.addUserMessage(GENERAL, { text: "a cat in a hat" });
    const shortcut = f.messageShortcut({
      callbackId: "imagine_from_message",
      message: { text: source.text, ts: source.ts, user: source.user },
    });
    await shortcut.ack;
    expect(shortcuts).toEqual([{ callbackId: "imagine_from_message", text: "a cat in a hat" }]);
    expect(f.acks.map((a) => a.type)).toEqual(["interactive", "interactive"]);
    expect(f.violations).toEqual([]);
  });

  it("shows a slash command's ack payload to the user, ephemeral unless in_channel", async () => {
    const f = await startFake();
    const app = socketApp(f);
    app.command("/imagine", async ({ ack, command }) => {
      await ack(
        command.text === "loud"
          ? { response_type: "in_channel", text: "Queued!" }
          : "Queued (only you see this)",
      );
    });
    await app.start();
    expect((await f.slashCommand({ command: "/imagine", text: "quiet" }).ack).payload).toEqual({
      text: "Queued (only you see this)",
    });
    await f.slashCommand({ command: "/imagine", text: "loud" }).ack;
    const [quiet, loud] = f.messages(GENERAL);
    expect(quiet).toMatchObject({
      text: "Queued (only you see this)",
      ephemeral: true,
      ephemeralUser: "U0A11CE0001",
    });
    expect(loud).toMatchObject({ text: "Queued!", ephemeral: false });
  });

  it("lets a response_url be used five times and refuses the sixth with used_url", async () => {
    const f = await startFake();
    const app = socketApp(f);
    const outcomes: (number | string)[] = [];
    app.command("/imagine", async ({ ack, respond }) => {
      await ack();
      for (let i = 1; i <= 6; i++) {
        try {
          await respond({ text: `progress ${i}` });
          outcomes.push(200);
        } catch (err) {
          outcomes.push(`${(err as { code?: string }).code}:${(err as { statusCode?: number }).statusCode}`);
        }
      }
    });
    await app.start();
    f.slashCommand({ command: "/imagine", text: "x" });
    await f.waitFor((c) => c.method === "response_url" && c.status === 404);
    await expect.poll(() => outcomes.length).toBe(6);
    expect(outcomes).toEqual([200, 200, 200, 200, 200, "slack_bolt_respond_error:404"]);
    const calls = f.calls.filter((c) => c.method === "response_url");
    expect(calls.map((c) => c.error ?? "ok")).toEqual(["ok", "ok", "ok", "ok", "ok", "used_url"]);
    expect(f.messages(GENERAL).filter((m) => m.via === "response_url" && m.ephemeral)).toHaveLength(5);
  });

  it("expires a response_url after 30 minutes on the fake's clock", async () => {
    let now = Date.UTC(2026, 0, 1, 12);
    const f = await startFake({ now: () => now });
    const url = f.slashCommandPayload({ command: "/imagine", text: "x" }).response_url ?? "";
    const post = () =>
      fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: '{"text":"hi"}' });
    expect((await post()).status).toBe(200);
    now += RESPONSE_URL_TTL_MS + 1;
    const late = await post();
    expect(late.status).toBe(404);
    expect(await late.json()).toEqual({ ok: false, error: "expired_url" });
  });

  it("reconnects after the socket drops, abruptly or by Slack's refresh request", async () => {
    const f = await startFake();
    const logger = quietLogger();
    // The reconnect delay is clientPingTimeout × attempts (5 s by default); only a receiver of one's own can set it.
    const receiver = new SocketModeReceiver({
      appToken: f.appToken,
      logger,
      clientPingTimeout: 300,
      installerOptions: { clientOptions: { slackApiUrl: f.apiUrl } },
    });
    const app = new App({ token: f.botToken, receiver, logger, clientOptions: { slackApiUrl: f.apiUrl } });
    apps.push(app);
    let commands = 0;
    app.command("/imagine", async ({ ack }) => {
      commands++;
      await ack();
    });
    await app.start();

    f.dropSocket();
    await f.socketConnected();
    expect(f.socketConnects).toBe(2);
    await f.slashCommand({ command: "/imagine", text: "after a drop" }).ack;

    f.dropSocket({ graceful: true });
    await f.socketConnected();
    expect(f.socketConnects).toBe(3);
    await f.slashCommand({ command: "/imagine", text: "after a refresh" }).ack;

    expect(commands).toBe(2);
    expect(f.calls.filter((c) => c.method === "apps.connections.open" && c.ok)).toHaveLength(3);
  });
});

describe("fake Slack Web API errors through @slack/web-api", () => {
  it("surfaces not_in_channel, channel_not_found, message_not_found and invalid_auth as platform errors", async () => {
    const f = await startFake();
    const client = webClient(f);
    const platformError = (error: string) => ({
      code: "slack_webapi_platform_error",
      data: { ok: false, error },
    });
    await expect(client.chat.postMessage({ channel: RANDOM, text: "hi" })).rejects.toMatchObject(
      platformError("not_in_channel"),
    );
    await expect(client.chat.postMessage({ channel: "C0NOSUCH000", text: "hi" })).rejects.toMatchObject(
      platformError("channel_not_found"),
    );
    await expect(
      client.chat.update({ channel: GENERAL, ts: "1700000000.000100", text: "x" }),
    ).rejects.toMatchObject(platformError("message_not_found"));
    await expect(webClient(f, {}, "xoxb-wrong").auth.test()).rejects.toMatchObject(
      platformError("invalid_auth"),
    );
    await expect(
      webClient(f, {}, f.appToken).chat.postMessage({ channel: GENERAL, text: "x" }),
    ).rejects.toMatchObject(platformError("not_allowed_token_type"));
    // Joining the channel makes the same post work.
    f.setMember(RANDOM, true);
    expect((await client.chat.postMessage({ channel: RANDOM, text: "hi" })).channel).toBe(RANDOM);
    expect(f.violations).toEqual([]);
  });

  it("refuses Block Kit beyond Slack's limits with invalid_blocks, and text beyond 40,000 with msg_too_long", async () => {
    const f = await startFake();
    const client = webClient(f);
    const divider = { type: "divider" };
    const button = (over: Record<string, unknown>) => ({
      type: "actions",
      elements: [{ type: "button", action_id: "a", text: { type: "plain_text", text: "ok" }, ...over }],
    });
    const cases: [string, unknown[]][] = [
      ["no more than 50 items allowed [json-pointer:/blocks]", Array(51).fill(divider)],
      [
        "must be less than 3001 characters [json-pointer:/blocks/0/text/text]",
        [{ type: "section", text: { type: "mrkdwn", text: "x".repeat(3001) } }],
      ],
      [
        "no more than 25 items allowed [json-pointer:/blocks/0/elements]",
        [
          {
            type: "actions",
            elements: Array.from({ length: 26 }, (_, i) => ({
              type: "button",
              action_id: `b${i}`,
              text: { type: "plain_text", text: "x" },
            })),
          },
        ],
      ],
      [
        "must be less than 76 characters [json-pointer:/blocks/0/elements/0/text/text]",
        [button({ text: { type: "plain_text", text: "x".repeat(76) } })],
      ],
      [
        "must be less than 256 characters [json-pointer:/blocks/0/elements/0/action_id]",
        [button({ action_id: "x".repeat(256) })],
      ],
      [
        "must be less than 2001 characters [json-pointer:/blocks/0/elements/0/value]",
        [button({ value: "x".repeat(2001) })],
      ],
      [
        "must be less than 151 characters [json-pointer:/blocks/0/text/text]",
        [{ type: "header", text: { type: "plain_text", text: "x".repeat(151) } }],
      ],
    ];
    for (const [message, blocks] of cases) {
      await expect(
        client.chat.postMessage({ channel: GENERAL, text: "t", blocks: blocks as [] }),
      ).rejects.toMatchObject({ data: { error: "invalid_blocks", errors: [message] } });
    }
    expect(f.violations.map((v) => v.messages)).toEqual(cases.map(([message]) => [message]));
    await expect(
      client.chat.postMessage({ channel: GENERAL, text: "x".repeat(40_001) }),
    ).rejects.toMatchObject({
      data: { error: "msg_too_long" },
    });
    expect(f.messages(GENERAL)).toEqual([]);
  });

  it("answers 429 with Retry-After, and the WebClient waits that long and retries", async () => {
    const f = await startFake();
    const client = webClient(f);
    f.rateLimitNext("chat.postMessage", { retryAfterS: 1 });
    const res = await client.chat.postMessage({ channel: GENERAL, text: "after a rate limit" });
    expect(res.ok).toBe(true);
    const posts = f.calls.filter((c) => c.method === "chat.postMessage");
    expect(posts.map((c) => c.error ?? c.status)).toEqual(["ratelimited", 200]);
    expect((posts[1]?.receivedAt ?? 0) - (posts[0]?.receivedAt ?? 0)).toBeGreaterThanOrEqual(950);
    expect(f.messages(GENERAL)).toHaveLength(1);

    // With rejectRateLimitedCalls the client gives up at once and reports the wait.
    f.rateLimitNext("chat.postMessage", { retryAfterS: 7 });
    await expect(
      webClient(f, { rejectRateLimitedCalls: true }).chat.postMessage({ channel: GENERAL, text: "x" }),
    ).rejects.toMatchObject({ code: "slack_webapi_rate_limited_error", retryAfter: 7 });
  });

  it("refuses a request that breaks Slack's spec with invalid_arguments and records it", async () => {
    const f = await startFake();
    const client = webClient(f);
    await expect(client.apiCall("chat.postMessage", { text: "where to?" })).rejects.toMatchObject({
      data: {
        error: "invalid_arguments",
        response_metadata: { messages: ["[ERROR] missing required field: channel"] },
      },
    });
    await expect(
      client.apiCall("files.completeUploadExternal", { files: [{ title: "no id" }] }),
    ).rejects.toMatchObject({ data: { error: "invalid_arguments" } });
    expect(f.violations.map((v) => `${v.method}:${v.kind}`)).toEqual([
      "chat.postMessage:spec",
      "files.completeUploadExternal:contract",
    ]);
  });

  it("notes parameters Slack ignores: web-api 8 sends alt_text where files.getUploadURLExternal reads alt_txt", async () => {
    const f = await startFake();
    await webClient(f).files.uploadV2({
      channel_id: GENERAL,
      file: Buffer.from("hello"),
      filename: "hello.txt",
      alt_text: "a greeting",
    });
    const call = f.calls.find((c) => c.method === "files.getUploadURLExternal");
    expect(call?.unknownParams).toEqual(["alt_text"]);
    expect(f.files[0]?.altText).toBeUndefined();
  });

  it("answers in the shapes of Slack's response schemas", async () => {
    const f = await startFake();
    const client = webClient(f);
    await client.auth.test();
    await client.conversations.info({ channel: GENERAL });
    const posted = await client.chat.postMessage({ channel: GENERAL, text: "hello" });
    await client.chat.postEphemeral({ channel: GENERAL, user: "U0A11CE0001", text: "psst" });
    await client.chat.delete({ channel: GENERAL, ts: posted.ts ?? "" });
    const problems = f.calls.map((c) => {
      // response_metadata is not in the 2020 schemas (additionalProperties:false); app_id on messages is newer too.
      const { response_metadata: _ignored, ...body } = c.response as Record<string, unknown>;
      if (typeof body.message === "object" && body.message !== null) {
        const { app_id: _newer, ...message } = body.message as Record<string, unknown>;
        body.message = message;
      }
      return [c.method, checkResponse(c.method, body)];
    });
    expect(problems).toEqual([
      ["auth.test", []],
      ["conversations.info", []],
      ["chat.postMessage", []],
      ["chat.postEphemeral", []],
      ["chat.delete", []],
    ]);
  });
});

describe("fake Slack HTTP delivery to bolt's HTTPReceiver", () => {
  it("accepts a well-signed command and refuses a bad signature or a stale timestamp with 401", async () => {
    const f = await startFake();
    const app = new App({
      token: f.botToken,
      signingSecret: f.signingSecret,
      logger: quietLogger(),
      clientOptions: { slackApiUrl: f.apiUrl },
    });
    const seen: string[] = [];
    app.command("/imagine", async ({ command, ack }) => {
      seen.push(command.text);
      await ack("Queued");
    });
    app.action("reroll", async ({ ack }) => {
      seen.push("reroll");
      await ack();
    });
    const server = await app.start({ port: 0, host: "127.0.0.1" });
    apps.push(app);
    const address = server.address();
    const url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}/slack/events`;
    const secret = { signingSecret: f.signingSecret };

    const good = await signedPost(
      url,
      "command",
      f.slashCommandPayload({ command: "/imagine", text: "good" }),
      secret,
    );
    expect(good.status).toBe(200);
    expect(good.body).toBe("Queued");

    const tampered = f.slashCommandPayload({ command: "/imagine", text: "tampered" });
    expect((await signedPost(url, "command", tampered, { ...secret, tamper: true })).status).toBe(401);
    const wrongSecret = f.slashCommandPayload({ command: "/imagine", text: "wrong secret" });
    expect((await signedPost(url, "command", wrongSecret, { signingSecret: "not-the-secret" })).status).toBe(
      401,
    );
    const stale = f.slashCommandPayload({ command: "/imagine", text: "stale" });
    const fiveMinutesAgo = Math.floor(Date.now() / 1000) - 5 * 60 - 1;
    expect((await signedPost(url, "command", stale, { ...secret, timestamp: fiveMinutesAgo })).status).toBe(
      401,
    );

    const press = f.blockActionPayload({ actionId: "reroll", value: "job-1" });
    expect((await signedPost(url, "interactive", press, secret)).status).toBe(200);
    expect(seen).toEqual(["good", "reroll"]);
  });
});
