import type { App, BlockAction, ButtonAction, MessageShortcut, SlashCommand } from "@slack/bolt";
import { type CommandReply, parseArgs } from "../../../commands/index.ts";
import type { Actor, BotServices } from "../../core/bot-services.ts";
import { isEaselError } from "../../core/errors.ts";
import { type ImagineOutcome, imagine } from "../../core/imagine.ts";
import { BOT_MESSAGES, MESSAGES } from "../../core/messages.ts";
import { type PendingStatus, pendingStatusOf } from "../../core/pending-status.ts";
import { presentQueued } from "../../core/presenter.ts";
import { answerPress, type QueuedOutcome } from "../../core/press-answers.ts";
import type { StatusHandles } from "../../core/relay.ts";
import type { TallyBoard } from "../../core/vote-tally.ts";
import { toMrkdwn } from "./blocks.ts";
import { describeSlackError, isNotInChannel } from "./errors.ts";
import type { PressedMessage, SlackOutlet, StatusTarget } from "./outlet.ts";
import type { ReplySender, ReplyTarget } from "./replies.ts";
import { DEFAULT_COMMAND, helpText, parseSlackCommand, unescapeSlackText } from "./text-command.ts";
import type { WorkspaceAdmins } from "./workspace-admins.ts";

/**
 * Slack's events routed to core: one slash command carries every command (see text-command.ts), a message
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

  private get services(): BotServices {
    return this.options.services;
  }

  private get replies(): ReplySender {
    return this.options.replies;
  }

  private log(line: string): void {
    this.options.log(line);
  }

  private now(): number {
    return this.options.now();
  }

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
        this.log(`easel: a Slack command failed: ${describeSlackError(err)}`);
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
        this.log(`easel: a Slack button press failed: ${describeSlackError(err)}`);
      });
    });
    app.shortcut<MessageShortcut>(
      { callback_id: IMAGINE_THIS_CALLBACK_ID, type: "message_action" },
      async ({ ack, shortcut }) => {
        await ack();
        await this.onImagineThis(shortcut).catch((err: unknown) => {
          this.log(`easel: the Slack "Imagine this" shortcut failed: ${describeSlackError(err)}`);
        });
      },
    );
    app.error(async (err) => {
      this.log(`easel: Slack error: ${describeSlackError(err)}`);
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

  // ---- slash command -----------------------------------------------------------------------------------------

  private async onCommand(command: SlashCommand, ack: SlashCommandAck): Promise<void> {
    const parsed = parseSlackCommand(unescapeSlackText(command.text ?? ""));
    if (parsed.kind === "help") {
      await ack({ response_type: "ephemeral", text: toMrkdwn(helpText(command.command || "/imagine")) });
      return;
    }
    let actor = this.actor({
      teamId: command.team_id,
      channelId: command.channel_id,
      userId: command.user_id,
      userName: command.user_name,
    });
    // Only the other commands ask who is an admin; /imagine never waits for users.info before its ack.
    if (parsed.path !== DEFAULT_COMMAND) actor = await this.options.admins.withAdmin(actor);
    const args = parseArgs(parsed.leaf.options, parsed.raw);
    if (!args.ok) {
      await ack({ response_type: "ephemeral", text: toMrkdwn(args.reason) });
      return;
    }
    const handled = parsed.leaf.handle(args.value as never, {
      services: this.services,
      actor,
      eventId: `slack:${command.trigger_id}`,
    });
    const reply: CommandReply = handled instanceof Promise ? await handled : handled;
    if (reply.kind === "text") {
      await ack({
        response_type: reply.ephemeral ? "ephemeral" : "in_channel",
        text: toMrkdwn(reply.text),
      });
      return;
    }
    const replyTarget: ReplyTarget = {
      channelId: command.channel_id,
      userId: command.user_id,
      responseUrl: command.response_url,
      issuedAt: this.now(),
    };
    if (reply.kind === "job" && !reply.outcome.ok) {
      await ack({ response_type: "ephemeral", text: toMrkdwn(reply.outcome.message) });
      return;
    }
    // One queued job, or an arena's two (each gets its own status message, the line introduces them).
    const queued = reply.kind === "job" ? (reply.outcome.ok ? [reply.outcome] : []) : reply.sides;
    const pending = queued.map((q) => pendingStatusOf<StatusTarget>(this.options.handles, q));
    try {
      await ack(
        reply.kind === "job"
          ? {
              response_type: "ephemeral",
              text: toMrkdwn(MESSAGES.queuedWithNotes(queued[0] as QueuedOutcome)),
            }
          : { response_type: "in_channel", text: toMrkdwn(reply.text) },
      );
    } catch (err) {
      for (const p of pending) p?.abandon();
      throw err;
    }
    let opened = 0;
    try {
      for (const [i, q] of queued.entries()) {
        const p = pending[i];
        if (p) await this.openStatus(p, q, replyTarget);
        opened = i + 1;
      }
    } finally {
      // A status message that could not be posted must not leave the arena's other side waiting for its own.
      for (const p of pending.slice(opened + 1)) p?.abandon();
    }
  }

  /**
   * Posts a queued job's status message in its channel. When the bot is not in the channel the job is
   * cancelled (nothing stays queued) and the member is told how to invite it, through the response_url, which
   * works where the bot is not a member.
   */
  private async openStatus(
    pending: PendingStatus<StatusTarget>,
    outcome: QueuedOutcome,
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
      this.services.engine.cancel(outcome.job.id);
      await this.replies.ephemeral(reply, {
        text: toMrkdwn(BOT_MESSAGES.notInChannel),
        replaceOriginal: true,
      });
    }
  }

  // ---- message shortcut ----------------------------------------------------------------------------------------

  private async onImagineThis(shortcut: MessageShortcut): Promise<void> {
    const actor = this.actor({
      teamId: shortcut.team?.id ?? shortcut.user.team_id,
      channelId: shortcut.channel.id,
      userId: shortcut.user.id,
      userName: shortcut.user.username ?? shortcut.user.name,
    });
    const outcome = imagine(this.services, actor, `slack:${shortcut.trigger_id}`, {
      prompt: unescapeSlackText(shortcut.message.text ?? ""),
    });
    const reply: ReplyTarget = {
      channelId: shortcut.channel.id,
      userId: shortcut.user.id,
      responseUrl: shortcut.response_url,
      issuedAt: this.now(),
    };
    await this.answerJob(outcome, reply);
  }

  /** A job queued by a shortcut or a button: the ephemeral "queued", then its status message. */
  private async answerJob(
    outcome: ImagineOutcome,
    reply: ReplyTarget,
    pending = pendingStatusOf<StatusTarget>(this.options.handles, outcome),
  ): Promise<void> {
    if (!outcome.ok) {
      await this.replies.ephemeral(reply, { text: toMrkdwn(outcome.message) });
      return;
    }
    // None for a redelivered event: its job has its status message already.
    if (!pending) return;
    try {
      await this.replies.ephemeral(reply, { text: toMrkdwn(MESSAGES.queuedWithNotes(outcome)) });
    } catch (err) {
      this.log(`easel: could not tell a Slack member their job was queued: ${describeSlackError(err)}`);
    }
    await this.openStatus(pending, outcome, reply);
  }

  // ---- buttons -------------------------------------------------------------------------------------------------

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
    const reply: ReplyTarget = {
      channelId,
      userId: body.user.id,
      responseUrl: body.response_url,
      issuedAt: this.now(),
    };
    const messageTs = body.message?.ts ?? String(body.container.message_ts ?? "");
    const on: PressedMessage = {
      channelId,
      ts: messageTs,
      threadTs: (body.message?.thread_ts as string | undefined) ?? messageTs,
    };
    const tell = async (text: string) => {
      await this.replies.ephemeral(reply, { text: toMrkdwn(text) });
    };
    const message = body.message;
    const blocks = message?.blocks;
    const press = {
      services: this.services,
      handles: this.options.handles,
      tallies: this.options.tallies,
      actor,
      eventId: `slack:${body.trigger_id}`,
      customId: action.value ?? action.action_id,
      now: this.now(),
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
        openStatus: (outcome, pending) => this.answerJob(outcome, reply, pending),
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
