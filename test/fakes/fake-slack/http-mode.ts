import { createHmac } from "node:crypto";

/**
 * Slack's HTTP delivery, for apps that run bolt's HTTPReceiver or ExpressReceiver instead of Socket Mode:
 * Slack POSTs a form body (a slash command's fields, or `payload=<JSON>` for interactions) signed with the
 * app's signing secret: `X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:{timestamp}:{raw body}">` and
 * `X-Slack-Request-Timestamp` in Unix seconds. Bolt refuses, with 401, a bad signature or a timestamp more
 * than five minutes from its clock.
 */

/** What Slack delivers: a slash command or an interaction (block action, shortcut…). */
export type DeliveryKind = "command" | "interactive";

/** Options for {@link signedPost}. */
export interface SignedPostOptions {
  signingSecret: string;
  /** Unix seconds to sign with (default: now by the real clock, which is the one bolt checks against). */
  timestamp?: number;
  /** Change the body after signing, so the signature no longer matches. */
  tamper?: boolean;
}

/** The receiver's answer. */
export interface SignedPostResult {
  status: number;
  body: string;
  headers: Headers;
}

/** Slack's request signature for a raw body. */
export function slackSignature(signingSecret: string, timestamp: number, body: string): string {
  return `v0=${createHmac("sha256", signingSecret).update(`v0:${timestamp}:${body}`).digest("hex")}`;
}

/** The form body Slack sends for a payload: command fields as they are, interactions as `payload=<JSON>`. */
export function deliveryBody(kind: DeliveryKind, payload: Record<string, unknown>): string {
  if (kind === "interactive") return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
  const form = new URLSearchParams();
  for (const [key, value] of Object.entries(payload)) {
    if (value !== undefined && value !== null) form.append(key, String(value));
  }
  return form.toString();
}

/** POSTs a payload to a bolt HTTP receiver as Slack would, signed (or mis-signed, or stale), and returns the answer. */
export async function signedPost(
  url: string,
  kind: DeliveryKind,
  payload: Record<string, unknown>,
  options: SignedPostOptions,
): Promise<SignedPostResult> {
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  const body = deliveryBody(kind, payload);
  const signature = slackSignature(options.signingSecret, timestamp, body);
  const response = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      "user-agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
      "x-slack-request-timestamp": String(timestamp),
      "x-slack-signature": signature,
    },
    body: options.tamper ? `${body}&tampered=1` : body,
  });
  return { status: response.status, body: await response.text(), headers: response.headers };
}
