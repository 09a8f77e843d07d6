import { readFileSync } from "node:fs";
import { webApi } from "@slack/bolt";
import { afterEach, describe, expect, it } from "vitest";
import { COMMANDS } from "../commands/index.ts";
import type { BotServices } from "../src/core/bot-services.ts";
import { commandLineHelp, parseCommandLine } from "../src/core/command-line.ts";
import type { Delivery, DeliveryLog } from "../src/core/delivery.ts";
import type { Job } from "../src/core/job.ts";
import { PendingStatus } from "../src/core/pending-status.ts";
import {
  type MessageModel,
  presentDone,
  presentFailed,
  presentQueued,
  presentRunning,
} from "../src/core/presenter.ts";
import { redactText as redact } from "../src/logging/redact.ts";
import { escapeMrkdwn, layoutBlocks, toMrkdwn } from "../src/platforms/slack/blocks.ts";
import { SlackOutlet } from "../src/platforms/slack/outlet.ts";
import { RESPONSE_URL_TTL_MS, ReplySender } from "../src/platforms/slack/replies.ts";
import { unescapeSlackText } from "../src/platforms/slack/routes.ts";
import { IMAGINE_THIS_CALLBACK_ID, SLACK_EVENTS_PATH } from "../src/platforms/slack/slack-bot.ts";
import { blockKitErrors, FakeSlack } from "./fakes/fake-slack/index.ts";

/** The Slack adapter's parts that need no engine: the text parser, Block Kit layout, response_url limits. */

describe("the /imagine text", () => {
  const parseSlackCommand = (text: string) => parseCommandLine(COMMANDS, text);
  const helpText = (command: string) => commandLineHelp(COMMANDS, command);
  const leaf = (text: string) => {
    const parsed = parseSlackCommand(text);
    if (parsed.kind !== "leaf") throw new Error(`not a command: ${text}`);
    return { path: parsed.path, raw: parsed.raw };
  };

  it("is a prompt, flags and all, unless it starts with a sub-command in that sub-command's shape", () => {
    expect(leaf("a lighthouse --ar 3:2 --seed 7")).toEqual({
      path: "imagine",
      raw: { prompt: "a lighthouse --ar 3:2 --seed 7" },
    });
    expect(leaf("settings set steps 12")).toEqual({
      path: "settings set",
      raw: { key: "steps", value: "12" },
    });
    expect(leaf("settings set banned-words cats, dogs --scope channel")).toEqual({
      path: "settings set",
      raw: { key: "banned-words", value: "cats, dogs", scope: "channel" },
    });
    expect(leaf("settings")).toEqual({ path: "settings show", raw: {} });
    expect(leaf("queue --all")).toEqual({ path: "queue", raw: { all: true } });
    expect(leaf("cancel k3x9a2")).toEqual({ path: "cancel", raw: { job: "k3x9a2" } });
    expect(leaf("cancel")).toEqual({ path: "cancel", raw: {} });
    expect(leaf("info")).toEqual({ path: "info", raw: {} });
    // Words a sub-command cannot take make the text a prompt.
    expect(leaf("info graphic of a whale")).toEqual({
      path: "imagine",
      raw: { prompt: "info graphic of a whale" },
    });
    expect(leaf("cancel culture in a museum")).toEqual({
      path: "imagine",
      raw: { prompt: "cancel culture in a museum" },
    });
    expect(leaf("queue of people --ar 16:9")).toEqual({
      path: "imagine",
      raw: { prompt: "queue of people --ar 16:9" },
    });
    expect(leaf("settings of a castle")).toEqual({
      path: "imagine",
      raw: { prompt: "settings of a castle" },
    });
    // A positional option with fixed choices takes only one of them (`/imagine top week` would be a command).
    expect(leaf("top dog on a skateboard").path).toBe("imagine");
    expect(leaf("top dog").path).toBe("imagine");
    expect(parseSlackCommand("help")).toEqual({ kind: "help" });
    expect(parseSlackCommand("  ")).toEqual({ kind: "help" });
    expect(leaf("help me draw a horse").path).toBe("imagine");
  });

  it("is unescaped as Slack sends it", () => {
    expect(unescapeSlackText("cats &amp; dogs &lt;3 &gt; <https://example.com|example> <@U1|ann>")).toBe(
      "cats & dogs <3 > example @ann",
    );
  });

  it("has help naming every sub-command as typed", () => {
    const help = helpText("/draw");
    expect(help).toContain("`/draw settings set <key> <value> [--scope server|channel]`");
    expect(help).toContain("`/draw cancel [job]`");
    expect(help).toContain("--seed");
  });
});

describe("Block Kit layout", () => {
  const job = {
    id: "k3x9a2b7",
    eventId: "e",
    state: "rendered",
    attempts: 1,
    createdAt: 0,
    request: {
      prompt: `<!channel> a *bold* & <https://evil.example|link> ${"long ".repeat(400)}`,
      negativePrompt: "",
      seed: 7,
      steps: 4,
      guidance: 7.5,
      sampler: "euler",
      width: 64,
      height: 64,
      count: 4,
      backend: "ldm",
      model: "tiny",
      requester: { platform: "slack", workspaceId: "T1", channelId: "C1", userId: "U0A11CE0001" },
    },
  } as Job;
  const images = [0, 1, 2, 3, 4].map((variant) => ({
    id: `img${variant}`,
    jobId: job.id,
    variant,
    seed: variant === 0 ? null : 7 + variant,
    width: 64,
    height: 64,
    png: new Uint8Array(),
  }));

  it("keeps a four-image result within Slack's limits, with every button and unique action ids", () => {
    const model = presentDone(job, images as never, ["a note"], 1234);
    const { blocks, text } = layoutBlocks(model);
    expect(blockKitErrors(blocks)).toEqual([]);
    expect(text).toContain("<@U0A11CE0001>");
    const ids = blocks.flatMap((b) => (b.type === "actions" ? b.elements.map((e) => e.action_id) : []));
    expect(ids.length).toBeGreaterThanOrEqual(4 + 4 + 3);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toContain("v:k3x9a2b7:4");
    // Member text cannot ping the channel or make links (plain_text shows it as typed; mrkdwn is escaped).
    const mrkdwn = mrkdwnTexts(blocks).join("\n");
    // (the presenter also puts a zero-width space after a typed "<", so it is inert on every platform)
    expect(mrkdwn).toContain("&lt;\u200b!channel&gt;");
    expect(mrkdwn).not.toContain("<!channel>");
    expect(mrkdwn).not.toContain("<https://evil");
  });

  it("cuts long text and too many buttons to Slack's limits", () => {
    const model: MessageModel = {
      content: "x".repeat(5000),
      title: "t".repeat(500),
      fields: Array.from({ length: 30 }, (_, i) => ({
        name: `f${i}`,
        value: "&".repeat(3000),
        inline: i % 2 === 0,
      })),
      images: [],
      buttons: [
        Array.from({ length: 30 }, (_, i) => ({
          id: "r:k3x9a2b7",
          label: `${i}`.repeat(100),
          style: "primary" as const,
        })),
      ],
      footer: "f".repeat(4000),
      tone: "info",
    };
    const { blocks } = layoutBlocks(model);
    expect(blockKitErrors(blocks)).toEqual([]);
    expect(blocks.filter((b) => b.type === "actions")).toHaveLength(2);
  });

  it("escapes member text but keeps easel's mentions, and writes **bold** as Slack's *bold*", () => {
    expect(escapeMrkdwn("<@U0A11CE0001> a <b> & <!here>")).toBe(
      "<@U0A11CE0001> a &lt;b&gt; &amp; &lt;!here&gt;",
    );
    expect(toMrkdwn("**How it was made** (job x)")).toBe("*How it was made* (job x)");
  });
});

describe("response_url limits", () => {
  let fake: FakeSlack | undefined;
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });

  async function setup(now: () => number) {
    fake = await FakeSlack.start({ now });
    const client = new webApi.WebClient(fake.botToken, {
      slackApiUrl: fake.apiUrl,
      retryConfig: { retries: 0 },
    });
    const url = fake.slashCommandPayload({ command: "/imagine", text: "x" }).response_url ?? "";
    return {
      f: fake,
      sender: new ReplySender(client, { now }),
      target: { channelId: "C0123456789", userId: "U0A11CE0001", responseUrl: url, issuedAt: now() },
    };
  }

  it("answers through a response_url five times, then with the bot token", async () => {
    const { f, sender, target } = await setup(Date.now);
    const routes = [];
    for (let i = 1; i <= 6; i++) routes.push(await sender.ephemeral(target, { text: `answer ${i}` }));
    expect(routes).toEqual([
      "response_url",
      "response_url",
      "response_url",
      "response_url",
      "response_url",
      "bot_token",
    ]);
    expect(f.calls.filter((c) => c.method === "response_url").map((c) => c.status)).toEqual([
      200, 200, 200, 200, 200,
    ]);
    expect(f.calls.filter((c) => c.method === "chat.postEphemeral")).toHaveLength(1);
    expect(f.violations).toEqual([]);
  });

  it("uses the bot token once the response_url is near its 30 minutes, and after Slack refused one", async () => {
    let now = Date.UTC(2026, 0, 1, 12);
    const { f, sender, target } = await setup(() => now);
    now += RESPONSE_URL_TTL_MS - 30_000;
    expect(await sender.ephemeral(target, { text: "late" })).toBe("bot_token");
    expect(f.calls.filter((c) => c.method === "response_url")).toEqual([]);

    // A restart lost the count: Slack's refusal (used_url) sends the answer with the bot token, once.
    const url = f.slashCommandPayload({ command: "/imagine", text: "y" }).response_url ?? "";
    for (let i = 0; i < 5; i++)
      await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: '{"text":"x"}',
      });
    const fresh = new ReplySender(new webApi.WebClient(f.botToken, { slackApiUrl: f.apiUrl }), {
      now: () => now,
    });
    const spent = { ...target, responseUrl: url, issuedAt: now };
    expect(await fresh.ephemeral(spent, { text: "after a restart" })).toBe("bot_token");
    expect(await fresh.ephemeral(spent, { text: "again" })).toBe("bot_token");
    expect(f.calls.filter((c) => c.method === "response_url" && c.status === 404)).toHaveLength(1);
  });
});

describe("log redaction", () => {
  it("removes Slack tokens by value and by shape, and response URLs", () => {
    const line = redact(
      "failed with xoxb-123-456-abcdefgh and xapp-1-A1-2-deadbeef and https://hooks.slack.com/actions/T1/2/abc and s3cretvalue",
      ["s3cretvalue"],
    );
    expect(line).not.toMatch(/xoxb-1|xapp-1|actions\/T1|s3cretvalue/);
  });
});

/** Every mrkdwn text in some blocks. */
function mrkdwnTexts(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(mrkdwnTexts);
  if (typeof value !== "object" || value === null) return [];
  const o = value as Record<string, unknown>;
  const own = o.type === "mrkdwn" && typeof o.text === "string" ? [o.text] : [];
  return [...own, ...Object.values(o).flatMap(mrkdwnTexts)];
}

describe("slack-app-manifest.yaml", () => {
  it("creates the command, the shortcut easel listens for, interactivity and Socket Mode", () => {
    const manifest = readFileSync("slack-app-manifest.yaml", "utf8");
    expect(manifest).toContain("command: /imagine");
    expect(manifest).toContain(`callback_id: ${IMAGINE_THIS_CALLBACK_ID}`);
    expect(manifest).toMatch(/interactivity:\n\s+is_enabled: true/);
    expect(manifest).toContain("socket_mode_enabled: true");
    expect(manifest).toContain(`${SLACK_EVENTS_PATH}`);
  });
});

describe("the Slack outlet", () => {
  let fake: FakeSlack | undefined;
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });

  /** A DeliveryLog in memory (the store's own is tested with the store). */
  function memoryDeliveries(): DeliveryLog {
    const rows: Delivery[] = [];
    return {
      recordDelivery(input) {
        const row: Delivery = { ...input, id: rows.length + 1, createdAt: 0, updatedAt: 0 };
        rows.push(row);
        return row;
      },
      updateDelivery(id, patch) {
        const row = rows.find((r) => r.id === id) as Delivery;
        if (patch.messageId) row.messageId = patch.messageId;
        return row;
      },
      deliveriesForJob: (jobId, kind) => rows.filter((r) => r.jobId === jobId && (!kind || r.kind === kind)),
      findDeliveryByMessage: (platform, channelId, messageId) =>
        rows.find((r) => r.platform === platform && r.channelId === channelId && r.messageId === messageId),
    };
  }

  it("turns the status message into the failure and tells the requester once, through the response_url", async () => {
    fake = await FakeSlack.start();
    const f = fake;
    const client = new webApi.WebClient(f.botToken, { slackApiUrl: f.apiUrl, retryConfig: { retries: 0 } });
    const job = {
      id: "k3x9a2b7",
      eventId: "e",
      state: "running",
      attempts: 1,
      createdAt: 0,
      request: {
        prompt: "a lighthouse",
        negativePrompt: "",
        seed: 7,
        steps: 4,
        guidance: 7.5,
        sampler: "euler",
        width: 64,
        height: 64,
        count: 1,
        backend: "ldm",
        model: "tiny",
        requester: { platform: "slack", workspaceId: "T1", channelId: "C0123456789", userId: "U0A11CE0001" },
      },
    } as Job;
    const services = { deliveries: memoryDeliveries(), jobs: { get: () => job } } as unknown as BotServices;
    const bound: unknown[] = [];
    const handles = { bind: (_: string, handle: unknown) => void bound.push(handle), unbound: () => {} };
    const outlet = new SlackOutlet(client, services, new ReplySender(client), { log: () => {} });
    const url = f.slashCommandPayload({ command: "/imagine", text: "x" }).response_url ?? "";
    const target = await outlet.openStatus(new PendingStatus(handles, job.id), {
      channelId: "C0123456789",
      model: presentQueued(job, 1, 1000, false),
      reply: { channelId: "C0123456789", userId: "U0A11CE0001", responseUrl: url, issuedAt: Date.now() },
    });
    // The posted message is handed to the relay, which edits it from then on.
    expect(bound).toEqual([target]);
    await outlet.status(job, target, presentRunning(job));
    const failed = presentFailed(job, "The renderer stopped.");
    await outlet.failure(job, target, failed);
    await outlet.failure(job, target, failed);

    const [message, ...others] = f.messages("C0123456789").filter((m) => !m.ephemeral);
    expect(others).toEqual([]);
    expect(message?.ts).toBe(target.ts);
    expect(message?.updates.map((u) => u.text)).toEqual([
      expect.stringMatching(/^Queued/),
      expect.stringMatching(/^Starting/),
    ]);
    expect(message?.text).toContain("The renderer stopped.");
    expect(JSON.stringify(message?.blocks)).toContain(`r:${job.id}`);
    const record = f.responseUrlRecords.find((r) => r.url === url);
    expect(record?.posts.map((p) => p.status)).toEqual([200]);
    expect(f.violations).toEqual([]);
  });
});
