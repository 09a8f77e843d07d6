import { once } from "node:events";
import { inflateSync, constants as zlibConstants } from "node:zlib";
import {
  ActionRowBuilder,
  AttachmentBuilder,
  ButtonBuilder,
  ButtonStyle,
  ChannelType,
  Client,
  DiscordAPIError,
  EmbedBuilder,
  Events,
  GatewayIntentBits,
  type Interaction,
  MessageFlags,
  type RateLimitData,
  RESTEvents,
  Routes,
  type TextChannel,
} from "discord.js";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import {
  DEFAULT_CHANNEL_ID,
  DEFAULT_GUILD_ID,
  DEFAULT_NSFW_CHANNEL_ID,
  FakeDiscord,
  type FakeDiscordOptions,
  MessageFlag,
  validateResponseSchema,
} from "./fakes/fake-discord/index.ts";
import { makePng } from "./fakes/fake-openai.ts";

// These tests drive the unmodified discord.js against the fake: they prove the fake speaks the wire
// protocols discord.js expects, so that easel's Discord adapter can be tested against it with confidence.

const PNG = makePng(64, 48, [200, 40, 90]);

let fake: FakeDiscord | undefined;
let client: Client | undefined;

afterEach(async () => {
  await client?.destroy();
  client = undefined;
  await fake?.close();
  fake = undefined;
});

/** Starts a fake with a fast heartbeat and a clock the test can move. */
async function startFake(options: FakeDiscordOptions = {}) {
  const clock = { now: Date.now() };
  fake = await FakeDiscord.start({ heartbeatIntervalMs: 250, now: () => clock.now, ...options });
  return { fake, clock };
}

/** A discord.js client logged in to the fake and ready (guilds received). */
async function login(f: FakeDiscord, intents = [GatewayIntentBits.Guilds]): Promise<Client> {
  client = new Client({ intents, rest: { api: f.apiBase } });
  const ready = once(client, Events.ClientReady);
  await client.login(f.token);
  await ready;
  return client;
}

/** The next interaction of the client, as discord.js built it. */
function nextInteraction(c: Client): Promise<Interaction> {
  return new Promise((resolve) => c.once(Events.InteractionCreate, resolve));
}

function textChannel(c: Client, id = DEFAULT_CHANNEL_ID): TextChannel {
  const channel = c.channels.cache.get(id);
  if (channel?.type !== ChannelType.GuildText) throw new Error(`no text channel ${id}`);
  return channel;
}

function buttonRow(...ids: string[]) {
  return new ActionRowBuilder<ButtonBuilder>().addComponents(
    ids.map((id) => new ButtonBuilder().setCustomId(id).setLabel(id).setStyle(ButtonStyle.Secondary)),
  );
}

describe("fake Discord with discord.js", () => {
  it("logs a client in: READY and GUILD_CREATE fill the guild and channel caches", async () => {
    const { fake } = await startFake();
    const c = await login(fake, [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages]);

    expect(c.user?.id).toBe(fake.applicationId);
    expect(c.application?.id).toBe(fake.applicationId);
    const guild = c.guilds.cache.get(DEFAULT_GUILD_ID);
    expect(guild?.name).toBe("Easel Test Guild");
    expect(guild?.members.me?.id).toBe(fake.botUser.id);
    expect(textChannel(c).name).toBe("general");
    expect(textChannel(c).nsfw).toBe(false);
    expect(textChannel(c, DEFAULT_NSFW_CHANNEL_ID).nsfw).toBe(true);
    expect(fake.identifies).toHaveLength(1);
    expect(fake.identifies[0]).toMatchObject({ tokenValid: true, intents: 1 | 512, compress: false });
    // discord.js 14.28 without zlib-sync asks for plain JSON frames.
    expect(fake.gatewayConnections[0]?.query).toEqual({ v: "10", encoding: "json" });
    const gatewayBot = fake.requests.find((r) => r.route === "/gateway/bot");
    expect(gatewayBot).toMatchObject({ method: "GET", status: 200, authorized: true });
  });

  it("acknowledges heartbeats so that discord.js measures a ping", async () => {
    const { fake } = await startFake({ heartbeatIntervalMs: 60 });
    const c = await login(fake);
    await fake.until(() => fake.heartbeats.length >= 2, 3_000, "two heartbeats");
    await fake.until(() => c.ws.ping >= 0, 3_000, "a measured ping");
    expect(c.ws.ping).toBeGreaterThanOrEqual(0);
  });

  it("refuses a wrong bot token on REST with 401 and discord.js reports an invalid token", async () => {
    const { fake } = await startFake();
    client = new Client({ intents: [GatewayIntentBits.Guilds], rest: { api: fake.apiBase } });
    await expect(client.login("bm90LXRoZS10b2tlbg.GfAkE0.wrong")).rejects.toMatchObject({
      code: "TokenInvalid",
    });
    expect(fake.requests[0]).toMatchObject({ route: "/gateway/bot", status: 401, authorized: false });
  });

  it("stores global and guild commands and refuses an invalid command name", async () => {
    const { fake } = await startFake();
    const c = await login(fake);
    const imagine = {
      name: "imagine",
      description: "Render a prompt",
      options: [{ type: 3, name: "prompt", description: "What to draw", required: true, max_length: 1500 }],
      default_member_permissions: null,
    };
    const global = await c.application?.commands.set([imagine]);
    expect(global?.first()?.name).toBe("imagine");
    expect(fake.commands()[0]?.id).toBe(global?.first()?.id);

    const settings = { name: "settings", description: "Admin settings", default_member_permissions: "32" };
    const guild = await c.application?.commands.set([settings], DEFAULT_GUILD_ID);
    expect(guild?.first()?.guildId).toBe(DEFAULT_GUILD_ID);
    expect(fake.commands(DEFAULT_GUILD_ID)[0]).toMatchObject({
      name: "settings",
      default_member_permissions: "32",
    });
    // Re-registering keeps the command's id, as Discord does.
    const again = await c.application?.commands.set([imagine]);
    expect(again?.first()?.id).toBe(global?.first()?.id);
    expect(fake.violations).toEqual([]);

    const bad = c.application?.commands.set([{ name: "Imagine Now", description: "bad" }]);
    await expect(bad).rejects.toMatchObject({ status: 400, code: 50035 });
    expect(fake.violations).toHaveLength(1);
    expect(fake.violations[0]?.errors.join()).toContain("0.name");
  });

  it("runs a slash command: deferReply, editReply with a PNG + embed + buttons, then a follow-up", async () => {
    const { fake } = await startFake();
    const c = await login(fake);
    let prompt: string | null = null;
    c.on(Events.InteractionCreate, async (interaction) => {
      if (!interaction.isChatInputCommand()) return;
      prompt = interaction.options.getString("prompt");
      await interaction.deferReply();
      await interaction.editReply({
        content: "a lighthouse",
        embeds: [
          new EmbedBuilder()
            .setTitle("a lighthouse")
            .setImage("attachment://grid.png")
            .setFooter({ text: "seed 42" }),
        ],
        files: [new AttachmentBuilder(Buffer.from(PNG), { name: "grid.png" })],
        components: [buttonRow("reroll", "v1", "v2"), buttonRow("u1", "u2")],
      });
      await interaction.followUp({ content: "done in 1.2 s" });
    });

    const handle = fake.slashCommand({
      name: "imagine",
      options: [{ name: "prompt", value: "a lighthouse" }],
    });
    const callback = await fake.waitForCallback(handle);
    expect(callback).toMatchObject({ type: 5, status: 204, withResponse: false });
    expect(callback.receivedAt).toBeGreaterThan(handle.sentAt);
    expect(prompt).toBe("a lighthouse");

    const original = await fake.waitForOriginalMessage(handle);
    expect(original).toMatchObject({
      channel_id: DEFAULT_CHANNEL_ID,
      content: "a lighthouse",
      webhook_id: fake.applicationId,
      application_id: fake.applicationId,
      type: 20,
      interaction_metadata: { id: handle.id, type: 2 },
    });
    expect(original.author).toMatchObject({ id: fake.botUser.id, bot: true });
    const attachment = original.attachments[0];
    expect(attachment).toMatchObject({
      filename: "grid.png",
      content_type: "image/png",
      width: 64,
      height: 48,
    });
    expect(attachment?.size).toBe(PNG.length);
    expect(original.embeds[0]?.image).toMatchObject({ url: attachment?.url, width: 64, height: 48 });
    expect(original.components).toHaveLength(2);
    expect(Buffer.from(fake.attachmentBytes(original.id, 0)).equals(Buffer.from(PNG))).toBe(true);
    // The attachment URL serves the bytes, query string (CDN signature) and all.
    const downloaded = Buffer.from(await (await fetch(attachment?.url ?? "")).arrayBuffer());
    expect(downloaded.equals(Buffer.from(PNG))).toBe(true);
    expect(fake.messages(DEFAULT_CHANNEL_ID).map((m) => m.id)).toContain(original.id);

    await fake.until(() => fake.followUps(handle).length === 1, 3_000, "the follow-up");
    expect(fake.followUps(handle)[0]).toMatchObject({
      content: "done in 1.2 s",
      interaction_metadata: { original_response_message_id: original.id },
    });
    const edit = fake.requests.find((r) => r.method === "PATCH" && r.route?.endsWith("@original"));
    expect(edit?.files.map((f) => [f.name, f.filename, f.contentType])).toEqual([
      ["files[0]", "grid.png", "image/png"],
    ]);
    expect(fake.violations).toEqual([]);
    expect(validateResponseSchema("MessageResponse", original)).toEqual([]);
    expect(validateResponseSchema("MessageResponse", fake.followUps(handle)[0])).toEqual([]);
  });

  it("answers button presses: update edits the message, deferUpdate then editReply edits it too", async () => {
    const { fake } = await startFake();
    // With GUILD_MESSAGES the fake also sends MESSAGE_CREATE/UPDATE for the bot's own messages.
    const c = await login(fake, [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages]);
    const created = once(c, Events.MessageCreate);
    const sent = await textChannel(c).send({
      content: "pick one",
      components: [buttonRow("vote:1", "vote:2")],
    });
    expect(((await created)[0] as { id: string }).id).toBe(sent.id);
    expect(fake.message(sent.id)).toMatchObject({ content: "pick one", author: { id: fake.botUser.id } });

    const first = nextInteraction(c);
    const press = fake.pressButton({ messageId: sent.id, customId: "vote:1", userId: "1300000000000000001" });
    const button = await first;
    if (!button.isButton()) throw new Error("expected a button interaction");
    expect(button.customId).toBe("vote:1");
    expect(button.message.id).toBe(sent.id);
    expect(button.user.id).toBe("1300000000000000001");
    await button.update({ content: "1 vote", components: [buttonRow("vote:1", "vote:2")] });
    expect(fake.callback(press)).toMatchObject({ type: 7, status: 204 });
    await fake.until(
      () => textChannel(c).messages.cache.get(sent.id)?.content === "1 vote",
      2_000,
      "the update",
    );
    expect(fake.message(sent.id)?.content).toBe("1 vote");

    const second = nextInteraction(c);
    const press2 = fake.pressButton({ messageId: sent.id, customId: "vote:2", bot: true });
    const button2 = await second;
    if (!button2.isButton()) throw new Error("expected a button interaction");
    expect(button2.user.bot).toBe(true);
    await button2.deferUpdate();
    await button2.editReply({ content: "2 votes" });
    expect(fake.callback(press2)?.type).toBe(6);
    expect(fake.originalMessage(press2)?.id).toBe(sent.id);
    expect(fake.message(sent.id)?.content).toBe("2 votes");
    expect(fake.violations).toEqual([]);
  });

  it("sends member permissions discord.js reads: regular, manager, admin", async () => {
    const { fake } = await startFake();
    const c = await login(fake);
    const seen: [boolean, boolean][] = [];
    c.on(Events.InteractionCreate, (i) => {
      seen.push([
        i.memberPermissions?.has("Administrator") ?? false,
        i.memberPermissions?.has("ManageGuild") ?? false,
      ]);
    });
    fake.slashCommand({ name: "settings" });
    fake.slashCommand({ name: "settings", manager: true, userId: "1300000000000000002" });
    fake.slashCommand({ name: "settings", admin: true, userId: "1300000000000000003" });
    await fake.until(() => seen.length === 3, 3_000, "three interactions");
    expect(seen).toEqual([
      [false, false],
      [false, true],
      [true, true],
    ]);
  });

  it("sends subcommands and attachment options that discord.js resolves", async () => {
    const { fake } = await startFake();
    const c = await login(fake);
    const next = nextInteraction(c);
    fake.slashCommand({
      name: "imagine",
      options: [
        {
          name: "vary",
          options: [
            { name: "prompt", value: "a fox" },
            { name: "steps", value: 20 },
            { name: "image", value: { filename: "init.png", bytes: PNG } },
          ],
        },
      ],
    });
    const interaction = await next;
    if (!interaction.isChatInputCommand()) throw new Error("expected a slash command");
    expect(interaction.options.getSubcommand()).toBe("vary");
    expect(interaction.options.getString("prompt")).toBe("a fox");
    expect(interaction.options.getInteger("steps")).toBe(20);
    const image = interaction.options.getAttachment("image");
    expect(image).toMatchObject({ name: "init.png", contentType: "image/png", width: 64, height: 48 });
    const bytes = Buffer.from(await (await fetch(image?.url ?? "")).arrayBuffer());
    expect(bytes.equals(Buffer.from(PNG))).toBe(true);
  });

  it("replies ephemerally to a message context menu command", async () => {
    const { fake } = await startFake();
    const c = await login(fake);
    const next = nextInteraction(c);
    const handle = fake.messageContextMenu({ name: "Vary", targetMessage: { content: "a cat, seed 7" } });
    const interaction = await next;
    if (!interaction.isMessageContextMenuCommand()) throw new Error("expected a message context menu");
    expect(interaction.targetMessage.content).toBe("a cat, seed 7");
    await interaction.reply({ content: "varying…", flags: MessageFlags.Ephemeral, withResponse: true });
    expect(fake.callback(handle)).toMatchObject({ type: 4, status: 200, withResponse: true });
    expect(fake.originalMessage(handle)).toMatchObject({ type: 23, flags: MessageFlag.Ephemeral });
  });

  it("refuses a second callback (40060) and one after 3 s (10062)", async () => {
    const { fake, clock } = await startFake();
    const c = await login(fake);
    const first = fake.slashCommand({ name: "imagine" });
    const route = Routes.interactionCallback(first.id, first.token);
    await c.rest.post(route, { body: { type: 5 }, auth: false });
    await expect(c.rest.post(route, { body: { type: 5 }, auth: false })).rejects.toMatchObject({
      status: 400,
      code: 40060,
    });

    const late = fake.slashCommand({ name: "imagine" });
    clock.now += 3_001;
    const lateRoute = Routes.interactionCallback(late.id, late.token);
    await expect(c.rest.post(lateRoute, { body: { type: 5 }, auth: false })).rejects.toMatchObject({
      status: 404,
      code: 10062,
    });
    expect(fake.interaction(late).callbackAttempts.map((a) => a.status)).toEqual([404]);
  });

  it("expires interaction tokens after 15 minutes: editReply throws DiscordAPIError 50027", async () => {
    const { fake, clock } = await startFake();
    const c = await login(fake);
    const next = nextInteraction(c);
    fake.slashCommand({ name: "imagine" });
    const interaction = await next;
    if (!interaction.isChatInputCommand()) throw new Error("expected a slash command");
    await interaction.deferReply();
    clock.now += 15 * 60 * 1000 + 1;
    const error = await interaction.editReply("too late").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DiscordAPIError);
    expect(error).toMatchObject({ status: 401, code: 50027 });
    // Webhook-token routes carry no bot token, so discord.js keeps its own and bot routes still work.
    await expect(textChannel(c).send("still here")).resolves.toMatchObject({ content: "still here" });
  });

  it("refuses an upload over the interaction's attachment_size_limit with 413", async () => {
    const { fake } = await startFake();
    const c = await login(fake);
    const next = nextInteraction(c);
    fake.slashCommand({ name: "imagine", attachmentSizeLimit: 100 });
    const interaction = await next;
    if (!interaction.isChatInputCommand()) throw new Error("expected a slash command");
    expect(interaction.attachmentSizeLimit).toBe(100);
    const error = await interaction
      .reply({ files: [new AttachmentBuilder(Buffer.from(PNG), { name: "big.png" })] })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 413, code: 40005 });
    expect(fake.violations).toEqual([]);
  });

  it("lets discord.js' REST queue wait out a scripted 429 and retry", async () => {
    const { fake } = await startFake();
    const c = await login(fake);
    const limited: RateLimitData[] = [];
    c.rest.on(RESTEvents.RateLimited, (info) => limited.push(info));
    fake.rateLimitNext("POST /channels/{channel_id}/messages", { retryAfterS: 0.05 });
    const message = await textChannel(c).send("after the limit");
    expect(message.content).toBe("after the limit");
    const posts = fake.requests.filter((r) => r.route === "/channels/{channel_id}/messages");
    expect(posts.map((r) => r.status)).toEqual([429, 200]);
    expect((posts[1]?.receivedAt ?? 0) - (posts[0]?.receivedAt ?? 0)).toBeGreaterThanOrEqual(45);
    expect(limited[0]).toMatchObject({ global: false, scope: "user" });
    expect(posts[0]?.response).toMatchObject({ retry_after: 0.05, global: false });
  });

  it("refuses invalid bodies with 400 Invalid Form Body and records each violation", async () => {
    const { fake } = await startFake();
    const c = await login(fake);
    const rows = Array.from({ length: 6 }, (_, i) => buttonRow(`row${i}`));
    const tooManyRows = await textChannel(c)
      .send({ content: "six rows", components: rows })
      .catch((e: unknown) => e);
    expect(tooManyRows).toMatchObject({ status: 400, code: 50035 });
    expect((tooManyRows as DiscordAPIError).rawError).toMatchObject({
      errors: { components: { _errors: [{ code: "BASE_TYPE_MAX_LENGTH" }] } },
    });
    expect(fake.violations[0]?.errors).toEqual([
      "components: Must be 5 or fewer in length. (BASE_TYPE_MAX_LENGTH)",
    ]);

    const longTitle = await textChannel(c)
      .send({ embeds: [{ title: "t".repeat(257) }] })
      .catch((e: unknown) => e);
    expect(longTitle).toMatchObject({ status: 400, code: 50035 });
    expect(fake.violations[1]?.errors.join()).toContain("embeds.0.title");
    expect(fake.messages(DEFAULT_CHANNEL_ID)).toEqual([]);
  });

  it("resumes after a dropped gateway connection and replays what the client missed", async () => {
    const { fake } = await startFake();
    const c = await login(fake);
    const resumed = once(c, Events.ShardResume);
    fake.dropGateway(4000);
    await fake.until(() => !fake.gatewayConnected, 2_000, "the drop");
    // Dispatched while the client is away: Discord keeps it for the resume.
    const next = nextInteraction(c);
    const handle = fake.slashCommand({ name: "imagine" });
    await resumed;
    const interaction = await next;
    expect(interaction.id).toBe(handle.id);
    expect(fake.resumes[0]).toMatchObject({ resumed: true, replayed: 1 });
    expect(fake.gatewayConnections[1]?.url).toMatch(/^\/gateway\/resume\?v=10&encoding=json/);
    expect(fake.identifies).toHaveLength(1);
  });

  it("speaks zlib-stream transport compression to clients that ask for it", async () => {
    const { fake } = await startFake();
    const ws = new WebSocket(`${fake.gatewayUrl}?v=10&encoding=json&compress=zlib-stream`);
    const frames: Buffer[] = [];
    ws.on("message", (data: Buffer) => frames.push(data));
    await fake.until(() => frames.length >= 1, 2_000, "HELLO");
    ws.send(JSON.stringify({ op: 2, d: { token: fake.token, intents: 1, properties: {} } }));
    await fake.until(() => frames.length >= 3, 2_000, "READY and GUILD_CREATE");
    ws.close(1000);
    // One zlib context for the whole connection; every frame ends with the sync-flush marker 00 00 ff ff.
    for (const frame of frames) expect([...frame.subarray(-4)]).toEqual([0x00, 0x00, 0xff, 0xff]);
    const text = inflateSync(Buffer.concat(frames), { finishFlush: zlibConstants.Z_SYNC_FLUSH }).toString();
    const payloads = text
      .split(/(?<=\})(?=\{"op")/)
      .map((p) => JSON.parse(p) as { op: number; t: string | null });
    expect(payloads.map((p) => [p.op, p.t])).toEqual([
      [10, null],
      [0, "READY"],
      [0, "GUILD_CREATE"],
    ]);
  });

  it("closes the gateway with 4004 on a wrong token in IDENTIFY", async () => {
    const { fake } = await startFake();
    const ws = new WebSocket(`${fake.gatewayUrl}?v=10&encoding=json`);
    await once(ws, "message");
    ws.send(JSON.stringify({ op: 2, d: { token: "wrong", intents: 1, properties: {} } }));
    const [code] = (await once(ws, "close")) as [number];
    expect(code).toBe(4004);
    expect(fake.identifies[0]?.tokenValid).toBe(false);
  });
});
