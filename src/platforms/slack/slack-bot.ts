import {
  App,
  type BlockAction,
  type ButtonAction,
  HTTPReceiver,
  type Logger,
  LogLevel,
  type MessageShortcut,
  type Receiver,
  type SlashCommand,
  SocketModeReceiver,
  type webApi,
} from "@slack/bolt";
import { type CommandReply, parseArgs } from "../../../commands/index.ts";
import { type ContestClock, castVote, closeDeletedBallot } from "../../core/ballots.ts";
import type { Actor, BotServices } from "../../core/bot-services.ts";
import { type PressOutcome, pressButton } from "../../core/button-press.ts";
import { parseButtonId } from "../../core/buttons.ts";
import { EaselError, isEaselError } from "../../core/errors.ts";
import { explainJob } from "../../core/explain.ts";
import { type ImagineOutcome, imagine } from "../../core/imagine.ts";
import { BOT_MESSAGES, MESSAGES } from "../../core/messages.ts";
import { presentQueued, voteRow } from "../../core/presenter.ts";
import type { JobRelay } from "../../core/relay.ts";
import { startupFailure } from "../../core/startup.ts";
import { KeyedThrottle } from "../../core/throttle.ts";
import { toMrkdwn } from "./blocks.ts";
import { isNotInChannel, type PendingStatus, SlackOutlet, slackErrorCode } from "./outlet.ts";
import { ReplySender, type ReplyTarget } from "./replies.ts";
import { DEFAULT_COMMAND, helpText, parseSlackCommand, unescapeSlackText } from "./text-command.ts";

/**
 * easel on Slack: one bolt App whose receiver is Socket Mode when an app-level token is configured (the
 * self-hosting default: no public URL) and the HTTP receiver otherwise (every request verified with the
 * signing secret over its raw body; a bad signature or a timestamp over 5 minutes away gets 401 and runs
 * nothing). One slash command carries every command (see text-command.ts), a message shortcut draws a
 * message's text, and the result's buttons are the core's button ids.
 *
 * The ack comes first and stays fast: a slash command is parsed and its job written to SQLite (milliseconds),
 * then acked with the ephemeral "queued #N · ETA"; the channel message, its edits and the upload follow with
 * the bot token. Button presses and shortcuts are acked before anything else. Slack has no roles: a member is an
 * admin when users.info says they administer or own the workspace (cached), or by EASEL_ADMIN_IDS.
 */

export interface SlackOptions {
  /** SLACK_BOT_TOKEN (xoxb-…). */
  botToken: string;
  /** SLACK_APP_TOKEN (xapp-…): Socket Mode. */
  appToken?: string;
  /** SLACK_SIGNING_SECRET: the HTTP receiver (when there is no app token). */
  signingSecret?: string;
  /** SLACK_API_URL: Web API base (tests, proxies). */
  apiUrl?: string;
  /** SLACK_PORT: where the HTTP receiver listens. */
  port: number;
  /** Operator log lines: the composition root's sink (src/logging), which redacts them. */
  log: (line: string) => void;
  /** bolt's, the Web API's and Socket Mode's own debug output, given only with EASEL_DEBUG=1. */
  debug?: (line: string) => void;
  /** Socket Mode ping timeout, also the step of its reconnect back-off (default 5000 ms). */
  clientPingTimeoutMs?: number;
  now?: () => number;
}

/** The callback id of the "Imagine this" message shortcut (slack-app-manifest.yaml). */
export const IMAGINE_THIS_CALLBACK_ID = "imagine_this";
/** Where the HTTP receiver takes commands and interactions (the manifest's request URLs end with it). */
export const SLACK_EVENTS_PATH = "/slack/events";

/** Web API retries: a few, with back-off; 429s are waited out by the client (Retry-After) within them. */
const RETRY_CONFIG = { retries: 3, factor: 2, minTimeout: 500, maxTimeout: 5_000 };
/** How long users.info may take before a member is treated as not a workspace admin. */
const ADMIN_LOOKUP_TIMEOUT_MS = 1_500;
const ADMIN_CACHE_MS = 5 * 60_000;
/** How long stop() waits for the Socket Mode connection to close. */
const SOCKET_CLOSE_WAIT_MS = 2_000;
/** A button id: one action letter and a job id (core/buttons.ts); parseButtonId checks the rest. */
const BUTTON_ACTION_ID = /^[a-z]:[0-9a-z]/;

type SlashCommandAck = (response?: string | { response_type?: string; text: string }) => Promise<void>;

/** Vote tallies: at most one edit per message this often. */
const TALLY_EDIT_INTERVAL_MS = 3_000;

export class SlackBot {
  readonly app: App;
  private readonly receiver: SocketModeReceiver | HTTPReceiver;
  private readonly outlet: SlackOutlet;
  private readonly replies: ReplySender;
  private readonly log: (line: string) => void;
  private readonly admins = new Map<string, { admin: boolean; at: number }>();
  private readonly mode: "socket" | "http";

  /** Vote tallies: at most one chat.update per message every 3 s, the latest counts winning. */
  private readonly tallies: KeyedThrottle;

  constructor(
    private readonly services: BotServices,
    relay: JobRelay,
    contests: ContestClock,
    private readonly options: SlackOptions,
  ) {
    this.log = options.log;
    const logger = boltLogger(this.log, options.debug);
    const clientOptions: webApi.WebClientOptions = {
      retryConfig: RETRY_CONFIG,
      ...(options.apiUrl ? { slackApiUrl: options.apiUrl } : {}),
    };
    if (options.appToken) {
      this.mode = "socket";
      this.receiver = new SocketModeReceiver({
        appToken: options.appToken,
        logger,
        // The Socket Mode client's own WebClient (apps.connections.open) would otherwise retry 100 times.
        installerOptions: { clientOptions },
        ...(options.clientPingTimeoutMs ? { clientPingTimeout: options.clientPingTimeoutMs } : {}),
      });
    } else if (options.signingSecret) {
      this.mode = "http";
      this.receiver = new HTTPReceiver({
        signingSecret: options.signingSecret,
        endpoints: SLACK_EVENTS_PATH,
        logger,
        processBeforeResponse: false,
      });
    } else {
      throw new EaselError(
        "config",
        "Slack needs SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP)",
      );
    }
    this.app = new App({
      token: options.botToken,
      receiver: this.receiver as Receiver,
      logger,
      clientOptions,
      // auth.test runs in start(), where a refused token becomes an error naming the variable.
      deferInitialization: true,
    });
    this.replies = new ReplySender(this.app.client, {
      log: this.log,
      ...(options.now ? { now: options.now } : {}),
    });
    this.outlet = new SlackOutlet(this.app.client, services, this.replies, { log: this.log, handles: relay });
    relay.register("slack", this.outlet);
    contests.register("slack", this.outlet);
    this.tallies = new KeyedThrottle(TALLY_EDIT_INTERVAL_MS, (err) =>
      this.log(`easel: could not update a vote tally: ${describe(err)}`),
    );

    this.app.command(/.*/, async ({ command, ack }) => {
      let acked = false;
      const once: SlashCommandAck = async (response) => {
        acked = true;
        await (ack as SlashCommandAck)(response);
      };
      try {
        await this.onCommand(command, once);
      } catch (err) {
        this.log(`easel: a Slack command failed: ${describe(err)}`);
        // Slack shows its own error after 3 s without an ack; say something better, at once.
        if (!acked) {
          const text = isEaselError(err) ? err.message : BOT_MESSAGES.commandFailed;
          await once({ response_type: "ephemeral", text: toMrkdwn(text) }).catch(() => undefined);
        }
      }
    });
    this.app.action<BlockAction<ButtonAction>>(BUTTON_ACTION_ID, async ({ ack, body, action }) => {
      await ack();
      await this.onButton(body, action).catch((err: unknown) => {
        this.log(`easel: a Slack button press failed: ${describe(err)}`);
      });
    });
    this.app.shortcut<MessageShortcut>(
      { callback_id: IMAGINE_THIS_CALLBACK_ID, type: "message_action" },
      async ({ ack, shortcut }) => {
        await ack();
        await this.onImagineThis(shortcut).catch((err: unknown) => {
          this.log(`easel: the Slack "Imagine this" shortcut failed: ${describe(err)}`);
        });
      },
    );
    this.app.error(async (err) => {
      this.log(`easel: Slack error: ${describe(err)}`);
    });
  }

  /** The outlet (tests and restarts look at its targets). */
  get jobOutlet(): SlackOutlet {
    return this.outlet;
  }

  /** Checks the bot token (auth.test), then connects (Socket Mode) or listens on SLACK_PORT (HTTP). */
  /** Checks the bot token and connects; a refused token and an unreachable Slack are told apart. */
  async start(): Promise<void> {
    const where = {
      service: "Slack",
      endpoint: this.options.apiUrl ?? DEFAULT_SLACK_API,
      baseVariable: "SLACK_API_URL",
    };
    try {
      await this.app.init();
    } catch (err) {
      throw startupFailure(err, { ...where, tokenVariable: "SLACK_BOT_TOKEN" }, slackRefusal);
    }
    if (this.mode === "socket") {
      try {
        await this.app.start();
      } catch (err) {
        throw startupFailure(err, { ...where, tokenVariable: "SLACK_APP_TOKEN" }, slackRefusal);
      }
    } else {
      try {
        await (this.receiver as HTTPReceiver).start(this.options.port);
      } catch (err) {
        throw new EaselError(
          "config",
          `Slack HTTP mode could not listen on SLACK_PORT=${this.options.port} (${describe(err)})`,
          { cause: err },
        );
      }
    }
    this.log(
      this.mode === "socket"
        ? "easel: Slack ready (Socket Mode)"
        : `easel: Slack ready (HTTP on port ${this.options.port}, request URL …${SLACK_EVENTS_PATH})`,
    );
  }

  /** Disconnects (Socket Mode: waits for the socket to close) or stops listening (HTTP). */
  async stop(): Promise<void> {
    this.tallies.clear();
    if (this.receiver instanceof SocketModeReceiver) {
      const client = this.receiver.client;
      const closed = new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, SOCKET_CLOSE_WAIT_MS);
        client.once("disconnected", () => {
          clearTimeout(timer);
          resolve();
        });
      });
      await this.app.stop().catch(() => undefined);
      await closed;
      return;
    }
    await this.app.stop().catch(() => undefined);
  }

  // ---- actors ------------------------------------------------------------------------------------------------

  private actor(fields: {
    teamId: string | undefined;
    channelId: string;
    userId: string;
    userName: string | undefined;
    isBot?: boolean;
  }): Actor {
    const cached = this.admins.get(fields.userId);
    return {
      requester: {
        platform: "slack",
        workspaceId: fields.teamId || "slack",
        channelId: fields.channelId,
        userId: fields.userId,
        ...(fields.userName ? { userName: fields.userName } : {}),
      },
      platformAdmin: cached !== undefined && this.now() - cached.at < ADMIN_CACHE_MS ? cached.admin : false,
      memberRoleIds: [],
      channelNsfw: false,
      isBot: fields.isBot === true,
    };
  }

  /** Workspace admins and owners are easel admins (users.info, cached); false when Slack does not answer in time. */
  private async withAdmin(actor: Actor): Promise<Actor> {
    const userId = actor.requester.userId;
    const cached = this.admins.get(userId);
    if (cached && this.now() - cached.at < ADMIN_CACHE_MS) return { ...actor, platformAdmin: cached.admin };
    try {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("users.info took too long")), ADMIN_LOOKUP_TIMEOUT_MS);
      });
      const answer = await Promise.race([this.app.client.users.info({ user: userId }), timeout]).finally(() =>
        clearTimeout(timer),
      );
      const user = answer.user;
      const admin = user?.is_admin === true || user?.is_owner === true || user?.is_primary_owner === true;
      // Bounded: entries are re-inserted on each lookup, so the map is in lookup order and the expired ones
      // (no use after 5 minutes) are at its front and go here; past 1000 members looked up within 5 minutes
      // the oldest go too (they are simply looked up again).
      this.admins.delete(userId);
      for (const [id, entry] of this.admins) {
        if (this.admins.size < 1_000 && this.now() - entry.at < ADMIN_CACHE_MS) break;
        this.admins.delete(id);
      }
      this.admins.set(userId, { admin, at: this.now() });
      return { ...actor, platformAdmin: admin, isBot: actor.isBot || user?.is_bot === true };
    } catch (err) {
      this.log(`easel: could not look up Slack user ${userId}: ${describe(err)}`);
      return actor;
    }
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
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
    if (parsed.path !== DEFAULT_COMMAND) actor = await this.withAdmin(actor);
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
    const pending = queued.map((q) => (q.duplicate ? undefined : this.outlet.opening(q.job.id)));
    try {
      await ack(
        reply.kind === "job"
          ? { response_type: "ephemeral", text: toMrkdwn(queuedText(queued[0] as QueuedOutcome)) }
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
    pending: PendingStatus,
    outcome: QueuedOutcome,
    reply: ReplyTarget,
  ): Promise<void> {
    try {
      await pending.open({
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
    pending?: PendingStatus,
  ): Promise<void> {
    if (!outcome.ok) {
      await this.replies.ephemeral(reply, { text: toMrkdwn(outcome.message) });
      return;
    }
    if (outcome.duplicate) return;
    const status = pending ?? this.outlet.opening(outcome.job.id);
    try {
      await this.replies.ephemeral(reply, { text: toMrkdwn(queuedText(outcome)) });
    } catch (err) {
      this.log(`easel: could not tell a Slack member their job was queued: ${describe(err)}`);
    }
    await this.openStatus(status, outcome, reply);
  }

  // ---- buttons -------------------------------------------------------------------------------------------------

  /** A vote: a private confirmation; the counts on the message follow within 3 s (none in the arena). */
  private async onVote(
    body: BlockAction<ButtonAction>,
    actor: Actor,
    reply: ReplyTarget,
    ballotId: string,
    choice: number,
  ): Promise<void> {
    const vote = castVote(this.services, actor, ballotId, choice, this.now());
    if (!vote.ok) {
      await this.replies.ephemeral(reply, { text: toMrkdwn(vote.message) });
      return;
    }
    const arena = vote.ballot.kind === "arena";
    const name = arena ? (choice === 1 ? "A" : "B") : `image ${choice}`;
    await this.replies.ephemeral(reply, { text: toMrkdwn(BOT_MESSAGES.voted(vote.change, name)) });
    const message = body.message;
    const ts = message?.ts;
    if (arena || !ts || !Array.isArray(message.blocks)) return;
    this.tallies.schedule(ts, async () => {
      const tally = this.services.votes.tally(ballotId);
      const blocks = (message.blocks as { type: string; elements?: Record<string, unknown>[] }[]).map(
        (block) => {
          if (block.type !== "actions" || !block.elements) return block;
          return {
            ...block,
            elements: block.elements.map((element) => {
              const id = typeof element.value === "string" ? parseButtonId(element.value) : undefined;
              if (!id?.ok || id.value.action !== "vote" || id.value.variant === undefined) return element;
              const n = id.value.variant;
              const [button] = voteRow(ballotId, [String(n)], {
                ...tally,
                counts: [tally.counts[n - 1] ?? 0],
              });
              return { ...element, text: { type: "plain_text", text: button?.label ?? "", emoji: true } };
            }),
          };
        },
      );
      await this.app.client.chat.update({
        channel: reply.channelId,
        ts,
        text: typeof message.text === "string" ? message.text : "",
        blocks: blocks as never,
      });
    });
  }

  private async onButton(body: BlockAction<ButtonAction>, action: ButtonAction): Promise<void> {
    const channelId = body.channel?.id ?? String(body.container.channel_id ?? "");
    const actor = await this.withAdmin(
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
    const customId = action.value ?? action.action_id;
    const vote = parseButtonId(customId);
    if (vote.ok && vote.value.action === "vote" && vote.value.variant !== undefined) {
      await this.onVote(body, actor, reply, vote.value.jobId, vote.value.variant);
      return;
    }
    const outcome: PressOutcome = await pressButton(
      this.services,
      actor,
      `slack:${body.trigger_id}`,
      customId,
    );
    // The new job's status message: posted below (the relay holds its statuses until then), or given up.
    const queued =
      outcome.kind === "job" ? outcome.outcome : outcome.kind === "upscale" ? outcome.upscale : undefined;
    const pending = queued?.ok && !queued.duplicate ? this.outlet.opening(queued.job.id) : undefined;
    const messageTs = body.message?.ts ?? String(body.container.message_ts ?? "");
    const threadTs = (body.message?.thread_ts as string | undefined) ?? messageTs;

    switch (outcome.kind) {
      case "refused":
      case "cancel":
        await this.replies.ephemeral(reply, { text: toMrkdwn(outcome.message) });
        return;
      case "job":
        await this.answerJob(outcome.outcome, reply, pending);
        return;
      case "delete":
        closeDeletedBallot(this.services, outcome.job, this.now());
        try {
          await this.app.client.chat.delete({ channel: channelId, ts: messageTs });
        } catch (err) {
          this.log(`easel: could not delete a Slack message: ${describe(err)}`);
        }
        return;
      case "upscale": {
        const { image, job } = outcome;
        try {
          const bytes = image.png.length > 0 ? image.png : await this.services.jobs.imageBytes(image.id);
          await this.app.client.files.uploadV2({
            channel_id: channelId,
            thread_ts: threadTs,
            initial_comment: toMrkdwn(`<@${body.user.id}> ${BOT_MESSAGES.imageAtFullSize(image.variant)}`),
            file_uploads: [{ file: Buffer.from(bytes), filename: `easel-${job.id}-${image.variant}.png` }],
          });
        } catch (err) {
          pending?.abandon();
          if (pending && queued?.ok) this.services.engine.cancel(queued.job.id);
          if (isNotInChannel(err)) {
            await this.replies.ephemeral(reply, { text: toMrkdwn(BOT_MESSAGES.notInChannel) });
            return;
          }
          throw err;
        }
        await this.answerJob(outcome.upscale, reply, pending);
        return;
      }
      case "explain": {
        const animation = await this.services.imaging.animation?.(outcome.job.id);
        const tokens = await this.services.tokenCount?.(outcome.job);
        const text = toMrkdwn(explainJob(outcome.job, tokens, animation?.frames ?? 0));
        if (!animation) {
          await this.replies.ephemeral(reply, { text });
          return;
        }
        // Files cannot be ephemeral: the animation and its story go into the result's thread.
        await this.app.client.files.uploadV2({
          channel_id: channelId,
          thread_ts: threadTs,
          initial_comment: text,
          file_uploads: [
            { file: Buffer.from(animation.gif), filename: `easel-${outcome.job.id}-denoising.gif` },
          ],
        });
        return;
      }
      default: {
        // An outcome this adapter does not lay out yet: its message, if it has one, to the presser.
        const message = (outcome as { message?: unknown }).message;
        if (typeof message === "string") await this.replies.ephemeral(reply, { text: toMrkdwn(message) });
      }
    }
  }
}

type QueuedOutcome = Extract<ImagineOutcome, { ok: true }>;

/** The ephemeral answer to a queued job: place, ETA and what was adjusted. */
function queuedText(outcome: QueuedOutcome): string {
  return [MESSAGES.queued(outcome.position, outcome.etaMs), ...outcome.notes].join("\n");
}

/**
 * bolt's logger into easel's log: warnings and errors always, debug and info only into `debug` (EASEL_DEBUG=1;
 * Socket Mode's debug lines hold whole payloads, response_urls included, which the sink redacts). An Error is
 * its message, never the object.
 */
function boltLogger(log: (line: string) => void, debug?: (line: string) => void): Logger {
  let level = debug ? LogLevel.DEBUG : LogLevel.WARN;
  let name = "bolt";
  const text = (msg: unknown[]) => msg.map((m) => (m instanceof Error ? m.message : String(m))).join(" ");
  const line =
    (tag: string) =>
    (...msg: unknown[]) =>
      log(`easel: Slack ${name} ${tag}: ${text(msg)}`);
  const verbose = (tag: string) =>
    debug ? (...msg: unknown[]) => debug(`slack ${name} ${tag}: ${text(msg)}`) : () => {};
  return {
    debug: verbose("debug"),
    info: verbose("info"),
    warn: line("warning"),
    error: line("error"),
    setLevel: (l: LogLevel) => {
      level = l;
    },
    getLevel: () => level,
    setName: (n: string) => {
      name = n;
    },
  };
}

/**
 * The sink (src/logging) redacts every line, Slack's tokens, signing secret, response and upload URLs
 * included; this name stays for test/slack-adapter.test.ts, which still imports it from here.
 */
export { redactText as redact } from "../../logging/redact.ts";

function describe(err: unknown): string {
  const code = slackErrorCode(err);
  if (code) return code;
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/** Where the Web API is unless SLACK_API_URL says otherwise. */
const DEFAULT_SLACK_API = "https://slack.com/api/";

/** Slack's answers that mean "this token is not accepted" (as opposed to a network failure). */
const TOKEN_REFUSALS = new Set([
  "invalid_auth",
  "not_authed",
  "account_inactive",
  "token_revoked",
  "token_expired",
  "not_allowed_token_type",
  "missing_scope",
]);

/** Slack's error code when it refused the token; undefined for anything else. */
function slackRefusal(err: unknown): string | undefined {
  const code = slackErrorCode(err);
  return code !== undefined && TOKEN_REFUSALS.has(code) ? code : undefined;
}
