import {
  type ButtonInteraction,
  type ChatInputCommandInteraction,
  type CommandInteractionOption,
  type Interaction,
  type MessageContextMenuCommandInteraction,
  MessageFlags,
  PermissionFlagsBits,
} from "discord.js";
import { COMMANDS, type CommandReply, IMAGINE_THIS, isGroup, parseArgs } from "../../../commands/index.ts";
import type { Actor, BotServices } from "../../core/bot-services.ts";
import { fullSizeFile } from "../../core/image-files.ts";
import { type ImagineOutcome, imagine } from "../../core/imagine.ts";
import { BOT_MESSAGES, MESSAGES } from "../../core/messages.ts";
import { PendingStatus, pendingStatusOf } from "../../core/pending-status.ts";
import { presentFullSize } from "../../core/presenter.ts";
import { answerPress } from "../../core/press-answers.ts";
import type { StatusHandles } from "../../core/relay.ts";
import type { TallyBoard } from "../../core/vote-tally.ts";
import { layoutMessage, relabelComponents } from "./layout.ts";
import {
  DEFAULT_ATTACHMENT_LIMIT,
  type DiscordOutlet,
  fitToLimit,
  isDeadToken,
  type StatusTarget,
} from "./outlet.ts";

/**
 * Discord's interactions turned into core's calls, and core's answers into Discord's replies: slash commands
 * (from the neutral definitions), the "Imagine this" message menu, and the result's buttons. Every interaction
 * is answered well inside Discord's 3 seconds: the job row is written (milliseconds), then the reply is
 * deferred; everything slow happens after the acknowledgement.
 */

/** The interactions easel answers with a message. */
type Repliable = ChatInputCommandInteraction | MessageContextMenuCommandInteraction | ButtonInteraction;

/** Members with Administrator or Manage Server are easel admins in their guild. */
const ADMIN_PERMISSIONS = PermissionFlagsBits.Administrator | PermissionFlagsBits.ManageGuild;

export class DiscordInteractions {
  constructor(
    private readonly services: BotServices,
    private readonly outlet: DiscordOutlet,
    /** The relay: a new job's status message is bound there once posted. */
    private readonly handles: StatusHandles,
    private readonly tallies: TallyBoard,
  ) {}

  async handle(interaction: Interaction): Promise<void> {
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
      const b = new PendingStatus<StatusTarget>(this.handles, reply.sides[1].job.id);
      try {
        await this.replyWithJob(interaction, reply.sides[0]);
      } catch (err) {
        // B's status message will never be posted: the relay stops holding B's statuses.
        b.abandon();
        throw err;
      }
      await this.followUpWithJob(interaction, b);
      await interaction.followUp({ content: reply.text, flags: MessageFlags.Ephemeral });
      return;
    }
    await this.replyWithJob(interaction, reply.outcome);
  }

  private async replyWithJob(
    interaction: Repliable,
    outcome: ImagineOutcome,
    pending = pendingStatusOf<StatusTarget>(this.handles, outcome),
  ): Promise<void> {
    if (!outcome.ok) {
      await this.ephemeral(interaction, outcome.message);
      return;
    }
    // None for a redelivered interaction: its job already has a status message.
    if (!pending) return;
    await pending.post(async () => {
      // On record before the defer: a crash between the two still finds the reply at the next start.
      const target = this.outlet.replyStatus(pending.jobId, {
        channelId: this.channelOf(interaction, pending.jobId),
        token: interaction.token,
        createdAt: interaction.createdTimestamp,
        attachmentLimit: interaction.attachmentSizeLimit || DEFAULT_ATTACHMENT_LIMIT,
      });
      const response = await interaction.deferReply({ withResponse: true });
      // Discord names the reply's message in the callback's interaction; never record a shared placeholder.
      const messageId = response.interaction.responseMessageId ?? response.resource?.message?.id;
      if (messageId) this.outlet.replyPosted(target, messageId);
      return target;
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
    pending: PendingStatus<StatusTarget>,
    content: string = MESSAGES.starting,
  ): Promise<void> {
    await pending.post(() =>
      this.outlet.followUpStatus(
        pending.jobId,
        {
          interactionId: interaction.id,
          channelId: this.channelOf(interaction, pending.jobId),
          token: interaction.token,
          createdAt: interaction.createdTimestamp,
          attachmentLimit: interaction.attachmentSizeLimit || DEFAULT_ATTACHMENT_LIMIT,
        },
        content,
      ),
    );
  }

  private channelOf(interaction: Repliable, jobId: string): string {
    return interaction.channelId ?? this.services.jobs.get(jobId)?.request.requester.channelId ?? "";
  }

  /** A press: core decides the answer (core/press-answers.ts); these are Discord's calls for each. */
  private async onButton(interaction: ButtonInteraction): Promise<void> {
    const press = {
      services: this.services,
      handles: this.handles,
      tallies: this.tallies,
      actor: this.actor(interaction),
      eventId: interaction.id,
      customId: interaction.customId,
      now: Date.now(),
    };
    await answerPress<StatusTarget>(press, {
      // After a deferred answer (U), what is left to say is a follow-up.
      tell: (text) =>
        interaction.deferred || interaction.replied
          ? interaction
              .followUp({ content: text.slice(0, 2000), flags: MessageFlags.Ephemeral })
              .then(() => {})
          : this.ephemeral(interaction, text),
      // A vote is acknowledged without a new message; the tally on the message follows within 3 s.
      confirmVote: async (text) => {
        await interaction.deferUpdate();
        await interaction.followUp({ content: text, flags: MessageFlags.Ephemeral });
      },
      tally: {
        messageKey: interaction.message.id,
        relabel: async (labels) => {
          await interaction.editReply({ components: relabelComponents(interaction.message, labels) });
        },
      },
      openStatus: (outcome, pending, upscale) =>
        upscale
          ? // The upscale job's status message is a follow-up, edited through the same token.
            this.followUpWithJob(interaction, pending, BOT_MESSAGES.upscaleQueued)
          : this.replyWithJob(interaction, outcome, pending),
      remove: async () => {
        await interaction.deferUpdate();
        await interaction.deleteReply().catch(async (err: unknown) => {
          if (!isDeadToken(err)) throw err;
          await interaction.message.delete();
        });
      },
      showFullSize: async (job, image) => {
        // Acknowledge first: the upload can take longer than Discord's 3 seconds on a slow uplink.
        await interaction.deferReply();
        const limit = interaction.attachmentSizeLimit || DEFAULT_ATTACHMENT_LIMIT;
        const file = await fullSizeFile(this.services.jobs, job, image);
        const { fitted } = await fitToLimit(this.services.imaging, [file], limit);
        const model = presentFullSize(job, image, interaction.user.id);
        await interaction.editReply({ ...layoutMessage(model, fitted), allowedMentions: { users: [] } });
      },
      explain: async (_job, { text, animation }) => {
        await interaction.deferReply({ flags: MessageFlags.Ephemeral });
        await interaction.editReply({
          content: text.slice(0, 2000),
          files: animation ? [{ attachment: Buffer.from(animation.bytes), name: animation.filename }] : [],
        });
      },
    });
  }

  private async ephemeral(interaction: Repliable, text: string): Promise<void> {
    await interaction.reply({ content: text.slice(0, 2000), flags: MessageFlags.Ephemeral });
  }
}
