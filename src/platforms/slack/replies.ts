import type { types, webApi } from "@slack/bolt";
import { ReplyTokenUses } from "../../core/reply-token-uses.ts";

/**
 * Ephemeral answers to one member after the ack. Slack gives each command and interaction a response_url that
 * needs no bot token and works even where the bot is not a member, but only 5 times within 30 minutes. easel
 * counts the uses of each URL in this process and stops a minute early (core/reply-token-uses.ts); past its
 * limits, or when Slack refuses a post (used_url, expired_url, a restart lost the count), the answer goes out
 * with the bot token (chat.postEphemeral) instead, once, never in a retry loop. An answer that must show at most
 * once (a failure, recorded before it is shown) goes through a client that does not retry a lost answer either.
 */

/** Uses Slack allows one response_url. */
export const RESPONSE_URL_MAX_USES = 5;
/** How long a response_url works. */
export const RESPONSE_URL_TTL_MS = 30 * 60_000;
/** Stop using a response_url this long before it dies, so a post never races its expiry. */
const RESPONSE_URL_MARGIN_MS = 60_000;
/** One post to a response_url may take this long. */
const RESPONSE_URL_TIMEOUT_MS = 10_000;
/** At most this many URLs are tracked: only a burst of this many commands within 30 minutes gets there. */
export const RESPONSE_URL_MAX_TRACKED = 10_000;

/** Where an answer to one member goes. */
export interface ReplyTarget {
  channelId: string;
  userId: string;
  /** The payload's response_url, when there is one, and when it was issued (ms). */
  responseUrl?: string;
  issuedAt?: number;
}

/** How an answer goes out. */
export interface ReplyOptions {
  /** Never repeated, even when Slack's answer to the bot-token post is lost (an ephemeral cannot be looked up). */
  atMostOnce?: boolean;
}

export interface ReplySenderOptions {
  now?: () => number;
  log?: (line: string) => void;
  /** The client for answers that must show at most once: it must not retry on its own (default: `client`). */
  once?: webApi.WebClient;
}

/** What to show. */
export interface ReplyContent {
  text: string;
  blocks?: types.KnownBlock[];
  /** Replace the message the response_url belongs to (the command's ephemeral ack, the pressed message). */
  replaceOriginal?: boolean;
  /** In the thread of this message (bot-token fallback only; response_url answers go where Slack puts them). */
  threadTs?: string;
}

/** The response_urls seen in this process and their uses, bounded (core/reply-token-uses.ts). */
export class ReplySender {
  private readonly urls: ReplyTokenUses;

  constructor(
    private readonly client: webApi.WebClient,
    private readonly options: ReplySenderOptions = {},
  ) {
    const limits = {
      maxUses: RESPONSE_URL_MAX_USES,
      lifetimeMs: RESPONSE_URL_TTL_MS,
      marginMs: RESPONSE_URL_MARGIN_MS,
      maxTracked: RESPONSE_URL_MAX_TRACKED,
    };
    this.urls = new ReplyTokenUses(limits, () => (this.options.now ?? Date.now)());
  }

  /** Whether `target`'s response_url may still be used (uses and age). */
  usable(target: ReplyTarget): boolean {
    return target.responseUrl ? this.urls.usable(target.responseUrl, target.issuedAt) : false;
  }

  /** Uses of `target`'s response_url so far in this process. */
  uses(target: ReplyTarget): number {
    return target.responseUrl ? this.urls.uses(target.responseUrl) : 0;
  }

  /** How many response_urls are tracked: for tests and metrics. */
  get tracked(): number {
    return this.urls.tracked;
  }

  /**
   * Shows `content` to the member only: through the response_url while it lasts, else chat.postEphemeral.
   * Returns how it went out.
   */
  async ephemeral(
    target: ReplyTarget,
    content: ReplyContent,
    how: ReplyOptions = {},
  ): Promise<"response_url" | "bot_token"> {
    if (this.usable(target) && (await this.post(target, content))) return "response_url";
    const client = how.atMostOnce ? (this.options.once ?? this.client) : this.client;
    await client.chat.postEphemeral({
      channel: target.channelId,
      user: target.userId,
      text: content.text,
      ...(content.blocks ? { blocks: content.blocks } : {}),
      ...(content.threadTs ? { thread_ts: content.threadTs } : {}),
    });
    return "bot_token";
  }

  /** One post to the response_url; false when Slack refused it (the caller falls back to the bot token). */
  private async post(target: ReplyTarget, content: ReplyContent): Promise<boolean> {
    const use = this.urls.spend(target.responseUrl as string, target.issuedAt);
    try {
      const response = await fetch(target.responseUrl as string, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          response_type: "ephemeral",
          text: content.text,
          ...(content.blocks ? { blocks: content.blocks } : {}),
          ...(content.replaceOriginal ? { replace_original: true } : { replace_original: false }),
        }),
        signal: AbortSignal.timeout(RESPONSE_URL_TIMEOUT_MS),
      });
      await response.text().catch(() => "");
      if (response.ok) return true;
      // 404 used_url / expired_url (or a post Slack could not apply): the URL is spent.
      use.dead = true;
      this.options.log?.(
        `easel: Slack refused a response_url post (HTTP ${response.status}); using the bot token`,
      );
      return false;
    } catch (err) {
      use.dead = true;
      this.options.log?.(
        `easel: a response_url post failed (${err instanceof Error ? err.name : "error"}); using the bot token`,
      );
      return false;
    }
  }
}
