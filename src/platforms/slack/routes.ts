import type { App, BlockAction, ButtonAction, MessageShortcut, SlashCommand } from "@slack/bolt";
import { COMMANDS } from "../../../commands/index.ts";
import type { Actor, BotServices } from "../../core/bot-services.ts";
import { answerCommand } from "../../core/command-answer.ts";
import { runLeaf } from "../../core/command-dispatch.ts";
import { commandLineHelp, DEFAULT_COMMAND, parseCommandLine } from "../../core/command-line.ts";
import { isEaselError } from "../../core/errors.ts";
import { type ImagineQueued, imagine } from "../../core/imagine.ts";
import { BOT_MESSAGES, MESSAGES } from "../../core/messages.ts";
import type { PendingStatus } from "../../core/pending-status.ts";
import { presentQueued } from "../../core/presenter.ts";
import { answerPress } from "../../core/press-answers.ts";
import type { StatusHandles } from "../../core/relay.ts";
import type { TallyBoard } from "../../core/vote-tally.ts";
import { toMrkdwn } from "./blocks.ts";
import { describeSlackError, isNotInChannel } from "./errors.ts";
import type { PressedMessage, SlackOutlet, StatusTarget } from "./outlet.ts";
import type { ReplySender, ReplyTarget } from "./replies.ts";
import type { WorkspaceAdmins } from "./workspace-admins.ts";

/**
 * Slack's events routed to core: one slash command carries every command (core/command-line.ts), a message
 * shortcut draws a message's text, and the result's buttons are core's button ids.
 *
 * The ack comes first and stays fast: a slash command is parsed and its job written to SQLite (milliseconds),
 * then acked with the ephemeral "queued #N · ETA"; the channel message, its edits and the upload follow with
 * the bot token. Button presses and shortcuts are acked before anything else. Only commands other than
 * /imagine ask who is a workspace admin before their ack.
 */

/** The callback id of the "Imagine this" message shortcut (slack-app-manifest.yaml). */
export const IMAGINE_THIS_CALLBACK_ID = "imagine_this";
/** A button id: one action letter and a job id (core/buttons.ts); parseButtonId checks the rest. */
const BUTTON_ACTION_ID = /^[a-z]:[0-9a-z]/;

type SlashCommandAck = (response?: string | { response_type?: string; text: string }) => Promise<void>;

export interface SlackRoutesOptions {
  services: BotServices;
  outlet: SlackOutlet;
  replies: ReplySender;
  /** The relay: a new job's status message is bound there once posted. */
  handles: StatusHandles;
  admins: WorkspaceAdmins;
  tallies: TallyBoard;
  log: (line: string) => void;
  now: () => number;
}

export class SlackRoutes {
  constructor(private readonly options: SlackRoutesOptions) {}

  /** Listens on `app` for the slash command, the buttons and the shortcut. */
  register(app: App): void {
    app.command(/.*/, async ({ command, ack }) => {
      let acked = false;
      const once: SlashCommandAck = async (response) => {
        acked = true;
        await (ack as SlashCommandAck)(response);
      };
      try {
        await this.onCommand(command, once);
      } catch (err) {
        this.options.log(`easel: a Slack command failed: ${describeSlackError(err)}`);
        // Slack shows its own error after 3 s without an ack; say something better, at once.
        if (!acked) {
          const text = isEaselError(err) ? err.message : BOT_MESSAGES.commandFailed;
          await once({ response_type: "ephemeral", text: toMrkdwn(text) }).catch(() => undefined);
        }
      }
    });
    app.action<BlockAction<ButtonAction>>(BUTTON_ACTION_ID, async ({ ack, body, action }) => {
      await ack();
      await this.onButton(body, action).catch((err: unknown) => {
        this.options.log(`easel: a Slack button press failed: ${describeSlackError(err)}`);
      });
    });
    app.shortcut<MessageShortcut>(
      { callback_id: IMAGINE_THIS_CALLBACK_ID, type: "message_action" },
      async ({ ack, shortcut }) => {
        await ack();
        await this.onImagineThis(shortcut).catch((err: unknown) => {
          this.options.log(`easel: the Slack "Imagine this" shortcut failed: ${describeSlackError(err)}`);
        });
      },
    );
    app.error(async (err) => {
      this.options.log(`easel: Slack error: ${describeSlackError(err)}`);
    });
  }

  private actor(fields: {
    teamId: string | undefined;
    channelId: string;
    userId: string;
    userName: string | undefined;
    isBot?: boolean;
  }): Actor {
    return {
      requester: {
        platform: "slack",
        workspaceId: fields.teamId || "slack",
        channelId: fields.channelId,
        userId: fields.userId,
        ...(fields.userName ? { userName: fields.userName } : {}),
      },
      platformAdmin: this.options.admins.cached(fields.userId),
      memberRoleIds: [],
      channelNsfw: false,
      isBot: fields.isBot === true,
    };
  }

  /** Where an ephemeral answer to the member goes: the event's response_url, issued now. */
  private replyTo(channelId: string, userId: string, responseUrl: string): ReplyTarget {
    return { channelId, userId, responseUrl, issuedAt: this.options.now() };
  }

  private async onCommand(command: SlashCommand, ack: SlashCommandAck): Promise<void> {
    const parsed = parseCommandLine(COMMANDS, unescapeSlackText(command.text ?? ""));
    const say = (text: string, ephemeral: boolean) =>
      ack({ response_type: ephemeral ? "ephemeral" : "in_channel", text: toMrkdwn(text) });
    if (parsed.kind === "help") return say(commandLineHelp(COMMANDS, command.command || "/imagine"), true);
    let actor = this.actor({
      teamId: command.team_id,
      channelId: command.channel_id,
      userId: command.user_id,
      userName: command.user_name,
    });
    // Only the other commands ask who is an admin; /imagine never waits for users.info before its ack.
    if (parsed.path !== DEFAULT_COMMAND) actor = await this.options.admins.withAdmin(actor);
    const reply = await runLeaf(parsed.leaf, parsed.raw, {
      services: this.options.services,
      actor,
      eventId: `slack:${command.trigger_id}`,
    });
    const replyTarget = this.replyTo(command.channel_id, command.user_id, command.response_url);
    await answerCommand<StatusTarget>(this.options.handles, reply, {
      say,
      // The ack: a job's queued line to the member, or the arena's introduction in the channel.
      acknowledge: (queued) =>
        queued.kind === "job"
          ? say(MESSAGES.queuedWithNotes(queued.outcome as ImagineQueued), true)
          : say(queued.text, false),
      openStatus: (outcome, pending) => this.openStatus(pending, outcome, replyTarget),
    });
  }

  /**
   * Posts a queued job's status message in its channel. When the bot is not in the channel the job is
   * cancelled (nothing stays queued) and the member is told how to invite it, through the response_url, which
   * works where the bot is not a member.
   */
  private async openStatus(
    pending: PendingStatus<StatusTarget>,
    outcome: ImagineQueued,
    reply: ReplyTarget,
  ): Promise<void> {
    try {
      await this.options.outlet.openStatus(pending, {
        channelId: reply.channelId,
        model: presentQueued(outcome.job, outcome.position, outcome.etaMs, false),
        reply,
      });
    } catch (err) {
      if (!isNotInChannel(err)) throw err;
      this.options.services.engine.cancel(outcome.job.id);
      await this.options.replies.ephemeral(reply, {
        text: toMrkdwn(BOT_MESSAGES.notInChannel),
        replaceOriginal: true,
      });
    }
  }

  private async onImagineThis(shortcut: MessageShortcut): Promise<void> {
    const actor = this.actor({
      teamId: shortcut.team?.id ?? shortcut.user.team_id,
      channelId: shortcut.channel.id,
      userId: shortcut.user.id,
      userName: shortcut.user.username ?? shortcut.user.name,
    });
    const outcome = imagine(this.options.services, actor, `slack:${shortcut.trigger_id}`, {
      prompt: unescapeSlackText(shortcut.message.text ?? ""),
    });
    const reply = this.replyTo(shortcut.channel.id, shortcut.user.id, shortcut.response_url);
    await answerCommand<StatusTarget>(
      this.options.handles,
      { kind: "job", outcome },
      {
        say: (text) => this.tell(reply, text),
        openStatus: (queued, pending) => this.openQueued(queued, pending, reply),
      },
    );
  }

  /** A job queued by a shortcut or a button: the ephemeral "queued", then its status message. */
  private async openQueued(
    outcome: ImagineQueued,
    pending: PendingStatus<StatusTarget>,
    reply: ReplyTarget,
  ): Promise<void> {
    await this.tell(reply, MESSAGES.queuedWithNotes(outcome)).catch((err: unknown) => {
      this.options.log(
        `easel: could not tell a Slack member their job was queued: ${describeSlackError(err)}`,
      );
    });
    await this.openStatus(pending, outcome, reply);
  }

  /** An ephemeral answer to the member. */
  private async tell(reply: ReplyTarget, text: string): Promise<void> {
    await this.options.replies.ephemeral(reply, { text: toMrkdwn(text) });
  }

  /** A press: core decides the answer (core/press-answers.ts); these are Slack's calls for each. */
  private async onButton(body: BlockAction<ButtonAction>, action: ButtonAction): Promise<void> {
    const channelId = body.channel?.id ?? String(body.container.channel_id ?? "");
    const actor = await this.options.admins.withAdmin(
      this.actor({
        teamId: body.team?.id ?? body.user.team_id,
        channelId,
        userId: body.user.id,
        userName: body.user.username ?? body.user.name,
        isBot: (body.user as { is_bot?: boolean }).is_bot === true,
      }),
    );
    const reply = this.replyTo(channelId, body.user.id, body.response_url);
    const messageTs = body.message?.ts ?? String(body.container.message_ts ?? "");
    const on: PressedMessage = {
      channelId,
      ts: messageTs,
      threadTs: (body.message?.thread_ts as string | undefined) ?? messageTs,
    };
    const tell = (text: string) => this.tell(reply, text);
    const message = body.message;
    const blocks = message?.blocks;
    const press = {
      services: this.options.services,
      handles: this.options.handles,
      tallies: this.options.tallies,
      actor,
      eventId: `slack:${body.trigger_id}`,
      customId: action.value ?? action.action_id,
      now: this.options.now(),
    };
    try {
      await answerPress<StatusTarget>(press, {
        tell,
        confirmVote: tell,
        ...(message?.ts && Array.isArray(blocks)
          ? {
              tally: {
                messageKey: message.ts,
                relabel: (labels) => this.options.outlet.relabel(on, { text: message.text, blocks }, labels),
              },
            }
          : {}),
        openStatus: (outcome, pending) => this.openQueued(outcome, pending, reply),
        remove: () => this.options.outlet.remove(on),
        showFullSize: (job, image) => this.options.outlet.postFullSize(job, image, body.user.id, on),
        // Files cannot be ephemeral: the animation and its story go into the result's thread.
        explain: (job, { text, animation }) =>
          animation ? this.options.outlet.postExplanation(job, { text, animation }, on) : tell(text),
      });
    } catch (err) {
      // The bot was removed from the channel (or never invited): the presser is told how to fix it.
      if (!isNotInChannel(err)) throw err;
      await tell(BOT_MESSAGES.notInChannel);
    }
  }
}

/**
 * Slack escapes `&`, `<` and `>` in slash-command and message text; the engine wants what the member typed.
 * Links and mentions keep their label (`<https://x|x>` → `x`, `<@U1|ann>` → `@ann`).
 */
export function unescapeSlackText(text: string): string {
  return text
    .replace(/<([@#!]?)([^<>|]+)\|([^<>]+)>/g, (_m, sigil: string, _id: string, label: string) =>
      sigil === "@" || sigil === "#" ? `${sigil}${label}` : label,
    )
    .replace(/<(https?:\/\/[^<>|]+)>/g, "$1")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");
}
