import { interactiveElements } from "./block-kit.ts";
import { formatTs, triggerId } from "./ids.ts";
import type { ResponseUrls } from "./response-url.ts";
import type { FakeSlackMessage, WorkspaceState } from "./state.ts";

/**
 * The payloads Slack sends an app, built field for field as Slack sends them (the same objects travel in a
 * Socket Mode envelope and, encoded, in an HTTP request): slash commands (form fields, all strings),
 * `block_actions` (a button press on a message) and `message_action` (a message shortcut). Each gets a fresh
 * response URL that points at the fake and a fresh trigger id.
 */

type Json = Record<string, unknown>;

/** A slash command a user types. */
export interface SlashCommandOptions {
  /** e.g. "/imagine". */
  command: string;
  text?: string;
  userId?: string;
  userName?: string;
  channelId?: string;
  teamId?: string;
}

/** A button press. */
export interface BlockActionOptions {
  actionId: string;
  /** Default: the pressed button's value in the message. */
  value?: string;
  /** Default: the block holding the button in the message. */
  blockId?: string;
  userId?: string;
  /** Default: the channel of the message found. */
  channelId?: string;
  /**
   * The message the button is on. Default: the newest message the fake holds with an element of this
   * action_id (so a test can press a button the bot posted without looking it up).
   */
  messageTs?: string;
  /** A message to report instead of one the fake holds. */
  message?: Json;
}

/** A message shortcut (the "…" menu on a message). */
export interface MessageShortcutOptions {
  callbackId: string;
  message: { text: string; ts: string; user: string };
  userId?: string;
  channelId?: string;
}

/** What the builders need from the fake. */
export interface PayloadContext {
  state: WorkspaceState;
  responseUrls: ResponseUrls;
}

function defaultUser(ctx: PayloadContext): string {
  return ctx.state.users.keys().next().value ?? "U0123ABCDEF";
}

function defaultChannel(ctx: PayloadContext): string {
  return ctx.state.channels.keys().next().value ?? "C0123456789";
}

/** An `action_ts`: now, in the ts format. */
const actionTs = (ctx: PayloadContext): string => formatTs(Math.floor(ctx.state.config.now() * 1000));

function userObject(ctx: PayloadContext, userId: string): Json {
  const name = ctx.state.userName(userId);
  return { id: userId, username: name, name, team_id: ctx.state.config.teamId };
}

/** A slash command payload (form fields; Slack sends every value as a string). */
export function slashCommandPayload(ctx: PayloadContext, o: SlashCommandOptions): Record<string, string> {
  const { config } = ctx.state;
  const userId = o.userId ?? defaultUser(ctx);
  const channelId = o.channelId ?? defaultChannel(ctx);
  const responseUrl = ctx.responseUrls.issue("command", { channel: channelId, user: userId });
  return {
    token: config.verificationToken,
    team_id: o.teamId ?? config.teamId,
    team_domain: config.teamDomain,
    channel_id: channelId,
    channel_name: ctx.state.channelName(channelId),
    user_id: userId,
    user_name: o.userName ?? ctx.state.userName(userId),
    command: o.command,
    text: o.text ?? "",
    api_app_id: config.appId,
    is_enterprise_install: "false",
    response_url: responseUrl.url,
    trigger_id: triggerId(),
  };
}

/** The message holding a button: the one named, or the newest with that action_id. */
function findSource(ctx: PayloadContext, o: BlockActionOptions): FakeSlackMessage | undefined {
  const { state } = ctx;
  if (o.messageTs !== undefined) {
    return state.messages.find(
      (m) => m.ts === o.messageTs && !m.deleted && (o.channelId === undefined || m.channel === o.channelId),
    );
  }
  return state.messages.findLast(
    (m) =>
      !m.deleted &&
      (o.channelId === undefined || m.channel === o.channelId) &&
      [...interactiveElements(m.blocks)].some(({ element }) => element.action_id === o.actionId),
  );
}

/** A `block_actions` payload for a button press. */
export function blockActionPayload(ctx: PayloadContext, o: BlockActionOptions): Json {
  const { state } = ctx;
  const { config } = state;
  const source = o.message ? undefined : findSource(ctx, o);
  const messageObject = o.message ?? (source ? state.messageObject(source) : undefined);
  const blocks = (messageObject?.blocks as unknown[] | undefined) ?? undefined;
  const found = [...interactiveElements(blocks)].find(({ element }) => element.action_id === o.actionId);
  const channelId = o.channelId ?? source?.channel ?? defaultChannel(ctx);
  const userId = o.userId ?? defaultUser(ctx);
  const messageTs = (messageObject?.ts as string | undefined) ?? o.messageTs ?? state.mint.ts();
  const ephemeral = source?.ephemeral ?? false;
  const responseUrl = ctx.responseUrls.issue("interactive", { channel: channelId, user: userId, messageTs });
  const element = found?.element ?? {};
  return {
    type: "block_actions",
    user: userObject(ctx, userId),
    api_app_id: config.appId,
    token: config.verificationToken,
    container: { type: "message", message_ts: messageTs, channel_id: channelId, is_ephemeral: ephemeral },
    trigger_id: triggerId(),
    team: { id: config.teamId, domain: config.teamDomain },
    enterprise: null,
    is_enterprise_install: false,
    channel: { id: channelId, name: state.channelName(channelId) },
    // Slack leaves the message out when the button was on an ephemeral message.
    ...(ephemeral ? {} : { message: messageObject ?? { type: "message", ts: messageTs, text: "" } }),
    state: { values: {} },
    response_url: responseUrl.url,
    actions: [
      {
        action_id: o.actionId,
        block_id: o.blockId ?? (found?.block.block_id as string | undefined) ?? "fake-block",
        text: element.text ?? { type: "plain_text", text: o.actionId, emoji: true },
        ...((o.value ?? element.value) !== undefined ? { value: o.value ?? element.value } : {}),
        ...(element.style !== undefined ? { style: element.style } : {}),
        type: (element.type as string | undefined) ?? "button",
        action_ts: actionTs(ctx),
      },
    ],
  };
}

/** A `message_action` payload (a message shortcut). */
export function messageShortcutPayload(ctx: PayloadContext, o: MessageShortcutOptions): Json {
  const { config } = ctx.state;
  const userId = o.userId ?? defaultUser(ctx);
  const channelId = o.channelId ?? defaultChannel(ctx);
  const responseUrl = ctx.responseUrls.issue("interactive", {
    channel: channelId,
    user: userId,
    messageTs: o.message.ts,
  });
  return {
    type: "message_action",
    token: config.verificationToken,
    action_ts: actionTs(ctx),
    team: { id: config.teamId, domain: config.teamDomain },
    user: userObject(ctx, userId),
    channel: { id: channelId, name: ctx.state.channelName(channelId) },
    is_enterprise_install: false,
    enterprise: null,
    callback_id: o.callbackId,
    trigger_id: triggerId(),
    response_url: responseUrl.url,
    message_ts: o.message.ts,
    message: {
      type: "message",
      user: o.message.user,
      ts: o.message.ts,
      text: o.message.text,
      team: config.teamId,
    },
  };
}
