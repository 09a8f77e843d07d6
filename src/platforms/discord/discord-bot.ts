import {
  type ButtonInteraction,
  type ChatInputCommandInteraction,
  Client,
  type CommandInteractionOption,
  Events,
  GatewayIntentBits,
  type Interaction,
  type MessageContextMenuCommandInteraction,
  MessageFlags,
  PermissionFlagsBits,
} from "discord.js";
import { COMMANDS, type CommandReply, IMAGINE_THIS, isGroup, parseArgs } from "../../../commands/index.ts";
import { type ContestClock, castVote, closeDeletedBallot } from "../../core/ballots.ts";
import type { Actor, BotServices } from "../../core/bot-services.ts";
import { type PressOutcome, pressButton } from "../../core/button-press.ts";
import { parseButtonId } from "../../core/buttons.ts";
import { explainJob } from "../../core/explain.ts";
import { type ImagineOutcome, imagine } from "../../core/imagine.ts";
import { BOT_MESSAGES, MESSAGES } from "../../core/messages.ts";
import { voteRow } from "../../core/presenter.ts";
import type { JobRelay } from "../../core/relay.ts";
import { startupFailure } from "../../core/startup.ts";
import { KeyedThrottle } from "../../core/throttle.ts";
import { discordCommandData } from "./command-data.ts";
import { layoutMessage } from "./layout.ts";
import { DEFAULT_ATTACHMENT_LIMIT, DiscordOutlet, isDeadToken } from "./outlet.ts";

/**
 * easel on Discord: a gateway client with the one intent slash commands need (Guilds: the channel and role
 * caches), commands registered from the neutral definitions, and interactions turned into engine requests.
 * Every interaction is answered well inside Discord's 3 seconds: the job row is written (milliseconds), then
 * the reply is deferred; everything slow happens after the acknowledgement.
 */

export interface DiscordOptions {
  token: string;
  /** Register commands in this guild only (instant, for development); else globally. */
  guildId?: string;
  /** REST base URL override (DISCORD_API_BASE); the gateway URL then comes from that server. */
  apiBase?: string;
  /** Operator log lines: the composition root's sink (src/logging), which redacts them. */
  log: (line: string) => void;
  /** discord.js's own debug output (gateway, REST), given only with EASEL_DEBUG=1. */
  debug?: (line: string) => void;
}

/** The interactions easel answers with a message. */
type Repliable = ChatInputCommandInteraction | MessageContextMenuCommandInteraction | ButtonInteraction;

/** Vote tallies: at most one edit per message this often (the issue's rule; Discord allows more). */
const TALLY_EDIT_INTERVAL_MS = 3_000;

/** Members with Administrator or Manage Server are easel admins in their guild. */
const ADMIN_PERMISSIONS = PermissionFlagsBits.Administrator | PermissionFlagsBits.ManageGuild;

export class DiscordBot {
  readonly client: Client;
  private readonly outlet: DiscordOutlet;
  private readonly log: (line: string) => void;

  /** Vote tallies are edited at most once per 3 s per ballot, with the latest press's token. */
  private readonly tallies: KeyedThrottle;

  constructor(
    private readonly services: BotServices,
    relay: JobRelay,
    contests: ContestClock,
    private readonly options: DiscordOptions,
  ) {
    this.log = options.log;
    this.client = new Client({
      intents: [GatewayIntentBits.Guilds],
      ...(options.apiBase ? { rest: { api: options.apiBase } } : {}),
    });
    this.client.on(Events.Warn, (message) => this.log(`easel: Discord warning: ${message}`));
    const debug = options.debug;
    if (debug) {
      // Gateway and REST chatter; the REST lines carry full URLs (interaction tokens): the sink redacts them.
      this.client.on(Events.Debug, (message) => debug(`discord.js: ${message}`));
      this.client.rest.on("restDebug", (message) => debug(`discord.js: ${message}`));
    }
    this.outlet = new DiscordOutlet(this.client, services, {
      applicationId: () => this.client.application?.id ?? this.client.user?.id ?? "",
      ...(options.apiBase ? { apiBase: options.apiBase } : {}),
      handles: relay,
      log: this.log,
    });
    relay.register("discord", this.outlet);
    contests.register("discord", this.outlet);
    this.tallies = new KeyedThrottle(TALLY_EDIT_INTERVAL_MS, (err) =>
      this.log(`easel: could not update a vote tally: ${describe(err)}`),
    );
    this.client.on(Events.InteractionCreate, (interaction) => {
      this.onInteraction(interaction).catch((err: unknown) => {
        this.log(`easel: a Discord interaction failed: ${describe(err)}`);
      });
    });
    this.client.on(Events.Error, (err) => this.log(`easel: Discord client error: ${describe(err)}`));
  }

  /** Logs in, waits for READY and registers the commands. */
  /** Logs in and registers the commands; a refused token or an unreachable Discord is one clear error. */
  async start(): Promise<void> {
    try {
      const ready = new Promise<void>((resolve) => this.client.once(Events.ClientReady, () => resolve()));
      await this.client.login(this.options.token);
      await ready;
      const data = discordCommandData();
      const application = this.client.application;
      if (!application) throw new Error("Discord did not say which application this bot is");
      if (this.options.guildId) await application.commands.set(data, this.options.guildId);
      else await application.commands.set(data);
    } catch (err) {
      throw startupFailure(
        err,
        {
          service: "Discord",
          endpoint: this.options.apiBase ?? DEFAULT_DISCORD_API,
          baseVariable: "DISCORD_API_BASE",
          tokenVariable: "DISCORD_TOKEN",
        },
        discordRefusal,
      );
    }
    this.log(
      `easel: Discord ready as ${this.client.user?.tag ?? "?"}; commands registered ${
        this.options.guildId ? `in guild ${this.options.guildId}` : "globally"
      }`,
    );
  }

  async stop(): Promise<void> {
    this.tallies.clear();
    this.outlet.destroy();
    await this.client.destroy();
  }

  private async onInteraction(interaction: Interaction): Promise<void> {
    if (interaction.isChatInputCommand()) return this.onCommand(interaction);
    if (interaction.isMessageContextMenuCommand()) return this.onImagineThis(interaction);
    if (interaction.isButton()) return this.onButton(interaction);
  }

  private actor(interaction: Interaction): Actor {
    const member = interaction.member;
    const roles = member ? (Array.isArray(member.roles) ? member.roles : [...member.roles.cache.keys()]) : [];
    const channel = interaction.channel;
    return {
      requester: {
        platform: "discord",
        workspaceId: interaction.guildId ?? "dm",
        channelId: interaction.channelId ?? "",
        userId: interaction.user.id,
        userName: interaction.user.username,
      },
      platformAdmin: interaction.memberPermissions?.any(ADMIN_PERMISSIONS) ?? false,
      memberRoleIds: roles,
      channelNsfw: channel !== null && "nsfw" in channel && channel.nsfw === true,
      isBot: interaction.user.bot,
    };
  }

  private async onCommand(interaction: ChatInputCommandInteraction): Promise<void> {
    const definition = COMMANDS.find((c) => c.name === interaction.commandName);
    if (!definition) {
      await this.ephemeral(interaction, BOT_MESSAGES.unknownCommand(interaction.commandName));
      return;
    }
    let options: readonly CommandInteractionOption[] = interaction.options.data;
    let leaf = definition;
    if (isGroup(definition)) {
      const sub = options[0];
      const found = definition.subcommands.find((s) => s.name === sub?.name);
      if (!found || !sub) {
        await this.ephemeral(
          interaction,
          BOT_MESSAGES.unknownCommand(`${definition.name} ${sub?.name ?? ""}`),
        );
        return;
      }
      leaf = found;
      options = sub.options ?? [];
    }
    if (isGroup(leaf)) return;
    const raw = Object.fromEntries(options.map((o) => [o.name, o.value]));
    const args = parseArgs(leaf.options, raw);
    if (!args.ok) {
      await this.ephemeral(interaction, args.reason);
      return;
    }
    const reply = await leaf.handle(args.value as never, {
      services: this.services,
      actor: this.actor(interaction),
      eventId: interaction.id,
    });
    await this.answer(interaction, reply);
  }

  private async onImagineThis(interaction: MessageContextMenuCommandInteraction): Promise<void> {
    if (interaction.commandName !== IMAGINE_THIS) return;
    const outcome = imagine(this.services, this.actor(interaction), interaction.id, {
      prompt: interaction.targetMessage.content,
    });
    await this.answer(interaction, { kind: "job", outcome });
  }

  /** Lays out a command's reply: a queued job gets a deferred public reply that becomes its status message. */
  private async answer(interaction: Repliable, reply: CommandReply): Promise<void> {
    if (reply.kind === "text") {
      await interaction.reply({
        content: reply.text.slice(0, 2000),
        allowedMentions: { users: [] },
        ...(reply.ephemeral ? { flags: MessageFlags.Ephemeral } : {}),
      });
      return;
    }
    if (reply.kind === "arena") {
      // A redelivered /compare: its match already has its messages.
      if (reply.sides[0].duplicate) return;
      // A's status message is the reply; B's is a follow-up; both become the blind results.
      const b = reply.sides[1].job.id;
      try {
        await this.replyWithJob(interaction, reply.sides[0]);
      } catch (err) {
        // B's status message will never be posted: the relay stops holding B's statuses.
        this.outlet.binder(b)(undefined);
        throw err;
      }
      await this.followUpWithJob(interaction, b);
      await interaction.followUp({ content: reply.text, flags: MessageFlags.Ephemeral });
      return;
    }
    await this.replyWithJob(interaction, reply.outcome);
  }

  private async replyWithJob(interaction: Repliable, outcome: ImagineOutcome): Promise<void> {
    if (!outcome.ok) {
      await this.ephemeral(interaction, outcome.message);
      return;
    }
    if (outcome.duplicate) {
      // A redelivered interaction: its job already has a status message.
      return;
    }
    await this.bindStatus(interaction, outcome.job.id, async () => {
      const response = await interaction.deferReply({ withResponse: true });
      // Discord names the reply's message in the callback's interaction; never record a shared placeholder.
      return (
        response.interaction.responseMessageId ??
        response.resource?.message?.id ??
        (await interaction.fetchReply()).id
      );
    });
    if (outcome.notes.length > 0) {
      await interaction.followUp({
        content: outcome.notes.join("\n").slice(0, 2000),
        flags: MessageFlags.Ephemeral,
      });
    }
  }

  /** A job whose status message is a follow-up of this interaction (upscales, the arena's B side). */
  private async followUpWithJob(
    interaction: Repliable,
    jobId: string,
    content: string = MESSAGES.starting,
  ): Promise<void> {
    await this.outlet.followUpStatus(
      jobId,
      {
        interactionId: interaction.id,
        channelId: interaction.channelId ?? this.services.jobs.get(jobId)?.request.requester.channelId ?? "",
        token: interaction.token,
        createdAt: interaction.createdTimestamp,
        attachmentLimit: interaction.attachmentSizeLimit || DEFAULT_ATTACHMENT_LIMIT,
      },
      content,
    );
  }

  /** Posts a job's status message with `post` (which returns its id) and binds the job to it (or gives up). */
  private async bindStatus(
    interaction: Repliable,
    jobId: string,
    post: () => Promise<string>,
  ): Promise<void> {
    const bind = this.outlet.binder(jobId);
    try {
      const messageId = await post();
      bind({
        channelId: interaction.channelId ?? this.services.jobs.get(jobId)?.request.requester.channelId ?? "",
        messageId,
        token: interaction.token,
        createdAt: interaction.createdTimestamp,
        attachmentLimit: interaction.attachmentSizeLimit || DEFAULT_ATTACHMENT_LIMIT,
      });
    } catch (err) {
      bind(undefined);
      throw err;
    }
  }

  /** A vote: acknowledged without a new message; the tally on the message follows within 3 s. */
  private async onVote(interaction: ButtonInteraction, ballotId: string, choice: number): Promise<void> {
    const vote = castVote(this.services, this.actor(interaction), ballotId, choice, Date.now());
    if (!vote.ok) {
      await this.ephemeral(interaction, vote.message);
      return;
    }
    await interaction.deferUpdate();
    const arena = vote.ballot.kind === "arena";
    const name = arena ? (choice === 1 ? "A" : "B") : `image ${choice}`;
    await interaction.followUp({
      content: BOT_MESSAGES.voted(vote.change, name),
      flags: MessageFlags.Ephemeral,
    });
    // The arena shows no counts until the reveal, so that they cannot sway the vote.
    if (arena) return;
    this.tallies.schedule(`${interaction.message.id}`, async () => {
      const tally = this.services.votes.tally(ballotId);
      const rows = interaction.message.components.map(
        (row) => row.toJSON() as { components?: { custom_id?: string }[] },
      );
      const updated = rows.map((row) => ({
        ...row,
        components: (row.components ?? []).map((c) => {
          const id = c.custom_id ? parseButtonId(c.custom_id) : undefined;
          if (!id?.ok || id.value.action !== "vote" || id.value.variant === undefined) return c;
          const [button] = voteRow(ballotId, [String(id.value.variant)], {
            ...tally,
            counts: [tally.counts[id.value.variant - 1] ?? 0],
          });
          return { ...c, label: button?.label };
        }),
      }));
      await interaction.editReply({ components: updated as never });
    });
  }

  private async onButton(interaction: ButtonInteraction): Promise<void> {
    const parsed = parseButtonId(interaction.customId);
    if (parsed.ok && parsed.value.action === "vote" && parsed.value.variant !== undefined) {
      return this.onVote(interaction, parsed.value.jobId, parsed.value.variant);
    }
    const outcome: PressOutcome = await pressButton(
      this.services,
      this.actor(interaction),
      interaction.id,
      interaction.customId,
    );
    // A new job's status message is bound once posted (the relay holds its statuses until then); if the press
    // fails before it is posted, the relay is told there will be none.
    const queued =
      outcome.kind === "job" ? outcome.outcome : outcome.kind === "upscale" ? outcome.upscale : undefined;
    try {
      await this.answerPress(interaction, outcome);
    } catch (err) {
      if (queued?.ok && !queued.duplicate) this.outlet.binder(queued.job.id)(undefined);
      throw err;
    }
  }

  private async answerPress(interaction: ButtonInteraction, outcome: PressOutcome): Promise<void> {
    switch (outcome.kind) {
      case "refused":
        return this.ephemeral(interaction, outcome.message);
      case "cancel":
        return this.ephemeral(interaction, outcome.message);
      case "job":
        return this.replyWithJob(interaction, outcome.outcome);
      case "delete":
        closeDeletedBallot(this.services, outcome.job, Date.now());
        await interaction.deferUpdate();
        await interaction.deleteReply().catch(async (err: unknown) => {
          if (!isDeadToken(err)) throw err;
          await interaction.message.delete();
        });
        return;
      case "upscale": {
        // Acknowledge first: the upload can take longer than Discord's 3 seconds on a slow uplink.
        await interaction.deferReply();
        const limit = interaction.attachmentSizeLimit || DEFAULT_ATTACHMENT_LIMIT;
        const stored =
          outcome.image.png.length > 0
            ? outcome.image.png
            : await this.services.jobs.imageBytes(outcome.image.id);
        const bytes = stored.length > limit ? await this.services.imaging.fit(stored, limit) : stored;
        const name = `easel-${outcome.job.id}-${outcome.image.variant}.png`;
        const payload = layoutMessage(
          {
            content: `<@${interaction.user.id}> ${BOT_MESSAGES.imageAtFullSize(outcome.image.variant)}`,
            title: outcome.job.request.prompt.slice(0, 256) || "(empty prompt)",
            fields: [],
            images: [],
            buttons: [],
            footer: `Job ${outcome.job.id} · ${outcome.image.width}×${outcome.image.height}`,
            tone: "success",
          },
          [{ name, bytes }],
        );
        await interaction.editReply({ ...payload, allowedMentions: { users: [] } });
        if (!outcome.upscale.ok) {
          await interaction.followUp({ content: outcome.upscale.message, flags: MessageFlags.Ephemeral });
          return;
        }
        // The upscale job's status message is a follow-up, edited through the same token.
        await this.followUpWithJob(interaction, outcome.upscale.job.id, BOT_MESSAGES.upscaleQueued);
        return;
      }
      case "explain": {
        await interaction.deferReply({ flags: MessageFlags.Ephemeral });
        const animation = await this.services.imaging.animation?.(outcome.job.id);
        const tokens = await this.services.tokenCount?.(outcome.job);
        const text = explainJob(outcome.job, tokens, animation?.frames ?? 0);
        await interaction.editReply({
          content: text.slice(0, 2000),
          files: animation
            ? [{ attachment: Buffer.from(animation.gif), name: `easel-${outcome.job.id}-denoising.gif` }]
            : [],
        });
        return;
      }
    }
  }

  private async ephemeral(interaction: Repliable, text: string): Promise<void> {
    await interaction.reply({ content: text.slice(0, 2000), flags: MessageFlags.Ephemeral });
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/** Where discord.js talks to unless DISCORD_API_BASE says otherwise. */
const DEFAULT_DISCORD_API = "https://discord.com/api";

/** Why Discord refused the token, when that is what `err` says (a 401, or discord.js's TokenInvalid). */
function discordRefusal(err: unknown): string | undefined {
  const { code, status } = err as { code?: unknown; status?: unknown };
  if (code === "TokenInvalid") return "TokenInvalid: Discord does not accept this token";
  if (status === 401) return "401 Unauthorized";
  return undefined;
}
