/**
 * Block Kit limits that Slack enforces on messages and that its 2020 OpenAPI spec leaves out (there `blocks`
 * is only "an array of objects with a type"). Slack refuses a message that breaks one with
 * `{ok:false, error:"invalid_blocks", errors:[…]}`, each error ending in `[json-pointer:/blocks/…]`; the
 * messages below copy that wording so that a failing test reads like a real Slack answer.
 *
 * Limits (docs.slack.dev, Block Kit reference): ≤ 50 blocks in a message; block_id ≤ 255 and unique;
 * section text ≤ 3000, ≤ 10 fields of ≤ 2000; header plain_text ≤ 150; actions 1–25 elements; context 1–10
 * elements; image alt_text ≤ 2000, image_url ≤ 3000; button text plain_text ≤ 75, action_id ≤ 255 and unique
 * in its block, value ≤ 2000, url ≤ 3000, style primary|danger; markdown block text ≤ 12000.
 */

/** The most blocks one message may carry. */
export const MAX_MESSAGE_BLOCKS = 50;

const BLOCK_TYPES = new Set([
  "actions",
  "context",
  "divider",
  "file",
  "header",
  "image",
  "input",
  "markdown",
  "rich_text",
  "section",
  "video",
]);

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

class Collector {
  readonly errors: string[] = [];
  add(message: string, pointer: string): void {
    this.errors.push(`${message} [json-pointer:${pointer}]`);
  }
  /** Slack counts characters, as JavaScript's string length does (UTF-16 units), and says "less than N+1". */
  maxLength(value: unknown, max: number, pointer: string): void {
    if (typeof value === "string" && value.length > max)
      this.add(`must be less than ${max + 1} characters`, pointer);
  }
  maxItems(value: unknown[], max: number, pointer: string): void {
    if (value.length > max) this.add(`no more than ${max} items allowed`, pointer);
  }
  required(parent: Json, field: string, pointer: string): boolean {
    if (parent[field] === undefined || parent[field] === null) {
      this.add(`missing required field: ${field}`, pointer);
      return false;
    }
    return true;
  }
}

/** Every way `blocks` breaks Slack's message limits, as Slack words them; empty when the blocks are fine. */
export function blockKitErrors(blocks: unknown, pointer = "/blocks"): string[] {
  const c = new Collector();
  if (!Array.isArray(blocks)) {
    c.add("must be an array", pointer);
    return c.errors;
  }
  c.maxItems(blocks, MAX_MESSAGE_BLOCKS, pointer);
  const blockIds = new Set<string>();
  blocks.forEach((block, i) => {
    const at = `${pointer}/${i}`;
    if (!isObject(block)) {
      c.add("must be an object", at);
      return;
    }
    if (typeof block.type !== "string" || !BLOCK_TYPES.has(block.type)) {
      c.add(`unsupported type: ${String(block.type)}`, `${at}/type`);
      return;
    }
    if (block.block_id !== undefined) {
      if (typeof block.block_id !== "string") c.add("must be a string", `${at}/block_id`);
      else {
        c.maxLength(block.block_id, 255, `${at}/block_id`);
        if (blockIds.has(block.block_id)) c.add("duplicate block_id", `${at}/block_id`);
        blockIds.add(block.block_id);
      }
    }
    checkBlock(c, block, at);
  });
  return c.errors;
}

function checkBlock(c: Collector, block: Json, at: string): void {
  switch (block.type) {
    case "section": {
      if (block.text === undefined && block.fields === undefined) {
        c.add("must provide either text or fields", at);
      }
      if (block.text !== undefined) checkText(c, block.text, 3000, `${at}/text`);
      if (block.fields !== undefined) {
        if (!Array.isArray(block.fields)) c.add("must be an array", `${at}/fields`);
        else {
          c.maxItems(block.fields, 10, `${at}/fields`);
          block.fields.forEach((field, i) => {
            checkText(c, field, 2000, `${at}/fields/${i}`);
          });
        }
      }
      if (block.accessory !== undefined) checkElement(c, block.accessory, `${at}/accessory`, new Set());
      return;
    }
    case "header":
      if (c.required(block, "text", at)) checkText(c, block.text, 150, `${at}/text`, "plain_text");
      return;
    case "actions": {
      if (!Array.isArray(block.elements)) {
        c.add("missing required field: elements", at);
        return;
      }
      if (block.elements.length === 0) c.add("must have at least 1 item", `${at}/elements`);
      c.maxItems(block.elements, 25, `${at}/elements`);
      const actionIds = new Set<string>();
      block.elements.forEach((element, i) => {
        checkElement(c, element, `${at}/elements/${i}`, actionIds);
      });
      return;
    }
    case "context": {
      if (!Array.isArray(block.elements)) {
        c.add("missing required field: elements", at);
        return;
      }
      if (block.elements.length === 0) c.add("must have at least 1 item", `${at}/elements`);
      c.maxItems(block.elements, 10, `${at}/elements`);
      block.elements.forEach((element, i) => {
        const elementAt = `${at}/elements/${i}`;
        if (isObject(element) && element.type === "image") checkImage(c, element, elementAt);
        else checkText(c, element, 3000, elementAt);
      });
      return;
    }
    case "image":
      checkImage(c, block, at);
      if (block.title !== undefined) checkText(c, block.title, 2000, `${at}/title`, "plain_text");
      return;
    case "markdown":
      if (typeof block.text !== "string") c.add("missing required field: text", at);
      else c.maxLength(block.text, 12000, `${at}/text`);
      return;
    default:
      // divider, rich_text, input, file and video: accepted as they are (easel does not send them).
      return;
  }
}

function checkText(c: Collector, text: unknown, max: number, at: string, only?: "plain_text"): void {
  if (!isObject(text)) {
    c.add("must be a text object", at);
    return;
  }
  if (text.type !== "plain_text" && text.type !== "mrkdwn") {
    c.add("must be one of plain_text, mrkdwn", `${at}/type`);
    return;
  }
  if (only && text.type !== only) c.add(`must be ${only}`, `${at}/type`);
  if (typeof text.text !== "string") {
    c.add("missing required field: text", at);
    return;
  }
  if (text.text.length === 0) c.add("must be more than 0 characters", `${at}/text`);
  c.maxLength(text.text, max, `${at}/text`);
}

function checkImage(c: Collector, image: Json, at: string): void {
  if (image.image_url === undefined && image.slack_file === undefined)
    c.add("must provide either image_url or slack_file", at);
  c.maxLength(image.image_url, 3000, `${at}/image_url`);
  if (c.required(image, "alt_text", at)) c.maxLength(image.alt_text, 2000, `${at}/alt_text`);
}

function checkElement(c: Collector, element: unknown, at: string, actionIds: Set<string>): void {
  if (!isObject(element)) {
    c.add("must be an object", at);
    return;
  }
  if (element.type === "image") {
    checkImage(c, element, at);
    return;
  }
  if (element.action_id !== undefined) {
    if (typeof element.action_id !== "string") c.add("must be a string", `${at}/action_id`);
    else {
      c.maxLength(element.action_id, 255, `${at}/action_id`);
      if (actionIds.has(element.action_id)) c.add("duplicate action_id", `${at}/action_id`);
      actionIds.add(element.action_id);
    }
  }
  if (element.type === "button") {
    if (c.required(element, "text", at)) checkText(c, element.text, 75, `${at}/text`, "plain_text");
    c.maxLength(element.value, 2000, `${at}/value`);
    c.maxLength(element.url, 3000, `${at}/url`);
    if (element.style !== undefined && element.style !== "primary" && element.style !== "danger")
      c.add("must be one of primary, danger", `${at}/style`);
  }
}

/** Visits every interactive element (`{action_id, …}`) with the block that holds it. */
export function* interactiveElements(
  blocks: readonly unknown[] | undefined,
): Generator<{ block: Json; element: Json }> {
  for (const block of blocks ?? []) {
    if (!isObject(block)) continue;
    if (isObject(block.accessory)) yield { block, element: block.accessory };
    if (Array.isArray(block.elements))
      for (const element of block.elements) if (isObject(element)) yield { block, element };
  }
}
