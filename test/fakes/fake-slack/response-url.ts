import { urlToken } from "./ids.ts";
import type { WorkspaceState } from "./state.ts";
import { type MessageContent, messageContent, SlackApiError } from "./web-api.ts";

/**
 * The `response_url`s Slack puts in slash-command and interaction payloads. Each accepts JSON posts
 * (`text`, `blocks`, `response_type: "ephemeral" | "in_channel"`, `replace_original`, `delete_original`,
 * `thread_ts`) and, as Slack documents, works at most five times within 30 minutes of the payload: after that
 * it answers 404 with `{ok:false, error:"used_url"}` or `"expired_url"`. The clock is the fake's injectable
 * `now`, so a test can move past 30 minutes without waiting.
 */

/** Uses one response URL allows. */
export const RESPONSE_URL_MAX_USES = 5;
/** How long a response URL lives. */
export const RESPONSE_URL_TTL_MS = 30 * 60 * 1000;

/** One post to a response URL. */
export interface FakeSlackResponsePost {
  /** Workspace clock (ms). */
  at: number;
  body: unknown;
  status: number;
  error?: string | undefined;
}

/** A response URL the fake issued, and what was posted to it. */
export interface FakeSlackResponseUrl {
  id: string;
  url: string;
  kind: "command" | "interactive";
  channel: string;
  user: string;
  /** The message an interaction came from: what replace_original and delete_original change. */
  messageTs?: string | undefined;
  /** Workspace clock (ms) when the payload carrying it was built. */
  issuedAt: number;
  /** Successful posts so far. */
  uses: number;
  /** Messages posted in answer to this payload (its ack payload, its response URL), oldest first. */
  postedTs: string[];
  posts: FakeSlackResponsePost[];
}

type Json = Record<string, unknown>;

/** The response URLs of one fake workspace. */
export class ResponseUrls {
  readonly byId = new Map<string, FakeSlackResponseUrl>();

  constructor(
    private readonly state: WorkspaceState,
    private readonly baseUrl: string,
    private readonly onBlockKitErrors: (errors: string[]) => void,
  ) {}

  /** Issues a URL for a payload sent from `channel` by `user`. */
  issue(
    kind: FakeSlackResponseUrl["kind"],
    fields: { channel: string; user: string; messageTs?: string | undefined },
  ): FakeSlackResponseUrl {
    const id = `${this.state.config.teamId}/${urlToken()}`;
    const record: FakeSlackResponseUrl = {
      id,
      url: `${this.baseUrl}/response/${id}`,
      kind,
      ...fields,
      issuedAt: this.state.config.now(),
      uses: 0,
      postedTs: [],
      posts: [],
    };
    this.byId.set(id, record);
    return record;
  }

  /** Answers a post to `/response/{id}`: status and JSON body. */
  post(id: string, body: unknown): { status: number; body: Json } {
    const record = this.byId.get(id);
    if (!record) return { status: 404, body: { ok: false, error: "invalid_url" } };
    const at = this.state.config.now();
    const answer = this.answer(record, body, at);
    record.posts.push({
      at,
      body,
      status: answer.status,
      error: answer.body.ok === true ? undefined : String(answer.body.error),
    });
    return answer;
  }

  private answer(record: FakeSlackResponseUrl, body: unknown, at: number): { status: number; body: Json } {
    if (at - record.issuedAt > RESPONSE_URL_TTL_MS)
      return { status: 404, body: { ok: false, error: "expired_url" } };
    if (record.uses >= RESPONSE_URL_MAX_USES) return { status: 404, body: { ok: false, error: "used_url" } };
    if (typeof body !== "object" || body === null || Array.isArray(body))
      return { status: 400, body: { ok: false, error: "invalid_payload" } };
    const params = body as Json;
    try {
      this.apply(record, params);
    } catch (err) {
      if (!(err instanceof SlackApiError)) throw err;
      return {
        status: err.error === "message_not_found" ? 404 : 400,
        body: { ok: false, error: err.error, ...err.extra },
      };
    }
    record.uses++;
    return { status: 200, body: { ok: true } };
  }

  private apply(record: FakeSlackResponseUrl, params: Json): void {
    const { state } = this;
    const original = this.original(record);
    if (params.delete_original === true || params.delete_original === "true") {
      if (!original) throw new SlackApiError("message_not_found");
      original.deleted = true;
      return;
    }
    const content: MessageContent = messageContent(params, this.onBlockKitErrors);
    if ((params.replace_original === true || params.replace_original === "true") && original) {
      state.updateMessage(original, content, "response_url");
      return;
    }
    const inChannel = params.response_type === "in_channel";
    const message = state.addMessage({
      channel: record.channel,
      ...content,
      thread_ts: typeof params.thread_ts === "string" ? params.thread_ts : undefined,
      ephemeral: !inChannel,
      ephemeralUser: inChannel ? undefined : record.user,
      via: "response_url",
    });
    record.postedTs.push(message.ts);
  }

  /**
   * The message replace_original/delete_original act on: the message an interaction came from, or for a slash
   * command the last message its response URL posted.
   */
  private original(record: FakeSlackResponseUrl) {
    if (record.messageTs) return this.state.message(record.channel, record.messageTs);
    const ts = record.postedTs.findLast((t) => this.state.message(record.channel, t) !== undefined);
    return ts === undefined ? undefined : this.state.message(record.channel, ts);
  }
}
