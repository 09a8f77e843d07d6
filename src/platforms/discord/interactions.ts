import {
  ApplicationCommandOptionType,
  type ButtonInteraction,
  type ChatInputCommandInteraction,
  type Interaction,
  type MessageContextMenuCommandInteraction,
  MessageFlags,
  PermissionFlagsBits,
} from "discord.js";
import { COMMANDS, type CommandReply, IMAGINE_THIS } from "../../../commands/index.ts";
import type { Actor, BotServices } from "../../core/bot-services.ts";
import { answerCommand } from "../../core/command-answer.ts";
import { runCommand } from "../../core/command-dispatch.ts";
import { fitToLimit, fullSizeFile } from "../../core/image-files.ts";
import { type ImagineQueued, imagine } from "../../core/imagine.ts";
import { BOT_MESSAGES, MESSAGES } from "../../core/messages.ts";
import type { PendingStatus } from "../../core/pending-status.ts";
import { presentFullSize } from "../../core/presenter.ts";
import { answerPress } from "../../core/press-answers.ts";
import type { StatusHandles } from "../../core/relay.ts";
import type { TallyBoard } from "../../core/vote-tally.ts";
import { layoutMessage, relabelComponents } from "./layout.ts";
import {
  DEFAULT_ATTACHMENT_LIMIT,
  type DiscordOutlet,
  type InteractionReply,
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
    // A group's sub-command is its one option, with the options under it.
    const [first] = interaction.options.data;
    const sub = first?.type === ApplicationCommandOptionType.Subcommand ? first : undefined;
    const options = sub ? (sub.options ?? []) : interaction.options.data;
    const raw = Object.fromEntries(options.map((o) => [o.name, o.value]));
    const reply = await runCommand(COMMANDS, interaction.commandName, sub?.name, raw, {
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

  /** A queued job gets a deferred public reply that becomes its status message; an arena's B, a follow-up. */
  private async answer(interaction: Repliable, reply: CommandReply): Promise<void> {
    // A redelivered /compare: its match already has its messages.
    if (reply.kind === "arena" && reply.sides[0].duplicate) return;
    await answerCommand<StatusTarget>(this.handles, reply, {
      say: (text, ephemeral) => this.say(interaction, text, ephemeral),
      openStatus: (outcome, pending, side) =>
        side === 0
          ? this.replyWithJob(interaction, outcome, pending)
          : this.followUpWithJob(interaction, pending),
      introduce: (text) => this.say(interaction, text, true),
    });
  }

  /** A queued job whose status message is the interaction's deferred reply; its notes follow, to the member. */
  private async replyWithJob(
    interaction: Repliable,
    outcome: ImagineQueued,
    pending: PendingStatus<StatusTarget>,
  ): Promise<void> {
    await pending.post(async () => {
      // On record before the defer: a crash between the two still finds the reply at the next start.
      const target = this.outlet.replyStatus(pending.jobId, this.replyOf(interaction, pending.jobId));
      const response = await interaction.deferReply({ withResponse: true });
      // Discord names the reply's message in the callback's interaction; never record a shared placeholder.
      const messageId = response.interaction.responseMessageId ?? response.resource?.message?.id;
      if (messageId) this.outlet.replyPosted(target, messageId);
      return target;
    });
    if (outcome.notes.length > 0) await this.say(interaction, outcome.notes.join("\n"), true);
  }

  /** A job whose status message is a follow-up of this interaction (upscales, the arena's B side). */
  private async followUpWithJob(
    interaction: Repliable,
    pending: PendingStatus<StatusTarget>,
    content: string = MESSAGES.starting,
  ): Promise<void> {
    const reply = this.replyOf(interaction, pending.jobId);
    await pending.post(() => this.outlet.followUpStatus(pending.jobId, reply, content));
  }

  /** The interaction as the outlet records a reply or follow-up of it. */
  private replyOf(interaction: Repliable, jobId: string): InteractionReply {
    return {
      interactionId: interaction.id,
      channelId: interaction.channelId ?? this.services.jobs.get(jobId)?.request.requester.channelId ?? "",
      token: interaction.token,
      createdAt: interaction.createdTimestamp,
      attachmentLimit: this.attachmentLimit(interaction),
    };
  }

  private attachmentLimit(interaction: Repliable): number {
    return interaction.attachmentSizeLimit || DEFAULT_ATTACHMENT_LIMIT;
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
      tell: (text) => this.say(interaction, text, true),
      // A vote is acknowledged without a new message; the tally on the message follows within 3 s.
      confirmVote: async (text) => {
        await interaction.deferUpdate();
        await this.say(interaction, text, true);
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
        const file = await fullSizeFile(this.services.jobs, job, image);
        const { files } = await fitToLimit(this.services.imaging, [file], this.attachmentLimit(interaction));
        const model = presentFullSize(job, image, interaction.user.id);
        await interaction.editReply({ ...layoutMessage(model, files), allowedMentions: { users: [] } });
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

  /** A text to the member: the interaction's reply, or a follow-up once it has one (deferred or replied). */
  private async say(interaction: Repliable, text: string, ephemeral: boolean): Promise<void> {
    const content = text.slice(0, 2000);
    const flags = ephemeral ? { flags: MessageFlags.Ephemeral as const } : {};
    if (interaction.deferred || interaction.replied) await interaction.followUp({ content, ...flags });
    else await interaction.reply({ content, allowedMentions: { users: [] }, ...flags });
  }
}
