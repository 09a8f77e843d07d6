import type { types } from "@slack/bolt";
import type { MessageButton, MessageModel } from "../../core/presenter.ts";
import { cut } from "../../core/presenter.ts";
import type { TallyLabels } from "../../core/vote-tally.ts";

/**
 * The neutral message model laid out as Block Kit: the content line (mentions), the prompt as a header, the
 * settings as section fields, long fields as their own sections, the footer as context, and each button row
 * as an actions block. Slack's limits are applied here: ≤ 50 blocks, header ≤ 150, section text ≤ 3000,
 * ≤ 10 fields of ≤ 2000, ≤ 25 elements per actions block, button text ≤ 75, action_id ≤ 255 and unique in
 * the message. Text that came from members (the prompt, field values) is escaped, so a prompt cannot ping
 * `@channel` or fake a link; easel's own mentions (`<@U…>`, `<#C…>`) are kept.
 */

type Block = types.KnownBlock;

/** A message as chat.postMessage / chat.update take it. */
export interface SlackMessage {
  /** The notification and fallback text. */
  text: string;
  blocks: Block[];
}

export const SLACK_LIMITS = {
  blocks: 50,
  header: 150,
  sectionText: 3000,
  fields: 10,
  fieldText: 2000,
  actionsElements: 25,
  buttonText: 75,
  actionId: 255,
  buttonValue: 2000,
  contextText: 3000,
  /** Slack shows at most this much of `text`; more is refused (msg_too_long at 40,000). */
  fallbackText: 3000,
} as const;

const MENTION = /<[@#][A-Z0-9]+>/g;

/** Escapes Slack's three control characters, keeping easel's own user and channel mentions. */
export function escapeMrkdwn(text: string): string {
  let out = "";
  let last = 0;
  for (const match of text.matchAll(MENTION)) {
    out += escapeAll(text.slice(last, match.index));
    out += match[0];
    last = match.index + match[0].length;
  }
  return out + escapeAll(text.slice(last));
}

function escapeAll(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** easel's messages as Slack mrkdwn: escaped, and Markdown's `**bold**` as Slack's `*bold*`. */
export function toMrkdwn(text: string): string {
  return escapeMrkdwn(text).replace(/\*\*([^*\n]+)\*\*/g, "*$1*");
}

/** Cuts mrkdwn without leaving half an entity (`&am…`) at the end. */
function cutMrkdwn(text: string, max: number): string {
  if (text.length <= max) return text;
  const cutAt = text.slice(0, max - 1).replace(/&[a-z]{0,3}$/, "");
  return `${cutAt}…`;
}

/** Slack has two button styles besides the default; "success" (votes) shows as primary. */
const STYLES: Readonly<Record<string, "primary" | "danger">> = {
  primary: "primary",
  success: "primary",
  danger: "danger",
};

/** Buttons as Block Kit elements; an action_id seen before in the message gets a suffix (the value stays the id). */
function buttonElements(row: readonly MessageButton[], seen: Set<string>): types.Button[] {
  return row.map((b) => {
    let actionId = b.id.slice(0, SLACK_LIMITS.actionId - 4);
    for (let n = 2; seen.has(actionId); n++) actionId = `${b.id.slice(0, SLACK_LIMITS.actionId - 4)}~${n}`;
    seen.add(actionId);
    const style = STYLES[b.style];
    return {
      type: "button",
      action_id: actionId,
      value: b.id.slice(0, SLACK_LIMITS.buttonValue),
      text: { type: "plain_text", text: cut(b.label, SLACK_LIMITS.buttonText), emoji: true },
      ...(style ? { style } : {}),
    };
  });
}

/** The blocks of `model`. */
export function layoutBlocks(model: MessageModel): SlackMessage {
  const blocks: Block[] = [];
  if (model.content.trim() !== "") {
    blocks.push({
      type: "section",
      text: { type: "mrkdwn", text: cutMrkdwn(toMrkdwn(model.content), SLACK_LIMITS.sectionText) },
    });
  }
  if (model.title.trim() !== "") {
    blocks.push({
      type: "header",
      text: { type: "plain_text", text: cut(model.title, SLACK_LIMITS.header), emoji: true },
    });
  }
  if (model.description) {
    blocks.push({
      type: "section",
      text: { type: "mrkdwn", text: cutMrkdwn(toMrkdwn(model.description), SLACK_LIMITS.sectionText) },
    });
  }
  const field = (name: string, value: string, max: number) =>
    cutMrkdwn(`*${escapeMrkdwn(name)}*\n${escapeMrkdwn(value)}`, max);
  let inline: types.MrkdwnElement[] = [];
  const flush = () => {
    if (inline.length > 0) blocks.push({ type: "section", fields: inline });
    inline = [];
  };
  for (const f of model.fields) {
    if (f.inline) {
      inline.push({ type: "mrkdwn", text: field(f.name, f.value, SLACK_LIMITS.fieldText) });
      if (inline.length === SLACK_LIMITS.fields) flush();
      continue;
    }
    flush();
    blocks.push({
      type: "section",
      text: { type: "mrkdwn", text: field(f.name, f.value, SLACK_LIMITS.sectionText) },
    });
  }
  flush();
  if (model.footer) {
    blocks.push({
      type: "context",
      elements: [{ type: "mrkdwn", text: cutMrkdwn(escapeMrkdwn(model.footer), SLACK_LIMITS.contextText) }],
    });
  }
  const seen = new Set<string>();
  for (const row of model.buttons) {
    for (let i = 0; i < row.length; i += SLACK_LIMITS.actionsElements) {
      const elements = buttonElements(row.slice(i, i + SLACK_LIMITS.actionsElements), seen);
      if (elements.length > 0) blocks.push({ type: "actions", elements });
    }
  }
  // Buttons matter more than the last fields: when over the limit, drop blocks before the actions.
  let shown = blocks;
  if (blocks.length > SLACK_LIMITS.blocks) {
    const actions = blocks.filter((b) => b.type === "actions").slice(0, SLACK_LIMITS.blocks);
    const rest = blocks.filter((b) => b.type !== "actions").slice(0, SLACK_LIMITS.blocks - actions.length);
    shown = [...rest, ...actions];
  }
  return { text: fallbackText(model), blocks: shown };
}

/** The plain text Slack shows in notifications and where blocks cannot be shown. */
export function fallbackText(model: MessageModel): string {
  const parts = [model.content, model.title].filter((p) => p.trim() !== "");
  return cutMrkdwn(escapeMrkdwn(parts.join(" · ")), SLACK_LIMITS.fallbackText);
}

/** A posted message's blocks for chat.update, each button `labels` names (by its value) relabelled. */
export function relabelBlocks(blocks: readonly unknown[], labels: TallyLabels): Block[] {
  return (blocks as { type: string; elements?: Record<string, unknown>[] }[]).map((block) => {
    if (block.type !== "actions" || !block.elements) return block;
    return {
      ...block,
      elements: block.elements.map((element) => {
        const label = typeof element.value === "string" ? labels(element.value) : undefined;
        return label === undefined
          ? element
          : { ...element, text: { type: "plain_text", text: label, emoji: true } };
      }),
    };
  }) as Block[];
}
