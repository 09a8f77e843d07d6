import { DeliveryError } from "../../core/delivery-error.ts";
import { BOT_MESSAGES } from "../../core/messages.ts";
import { deliveryErrorOf, errorText } from "../../core/platform-errors.ts";

/** @slack/web-api's errors, translated once: Slack's error codes, what they mean for a post, and for a token. */

/** A Slack error code (`not_in_channel`, `channel_not_found`, …) of a Web API failure, if it is one. */
export function slackErrorCode(err: unknown): string | undefined {
  const source = err instanceof DeliveryError ? err.cause : err;
  const data = (source as { data?: { error?: unknown } } | undefined)?.data;
  return typeof data?.error === "string" ? data.error : undefined;
}

/** The bot cannot post in the channel: it is not a member (a private channel it is not in is invisible). */
export function isNotInChannel(err: unknown): boolean {
  const code = slackErrorCode(err);
  return code === "not_in_channel" || code === "channel_not_found" || code === "is_archived";
}

/** Slack's answers that no retry can change, with what the requester is told. */
const PERMANENT_CODES: ReadonlyMap<string, string> = new Map([
  ["not_in_channel", BOT_MESSAGES.deliveryNotInChannel],
  ["channel_not_found", BOT_MESSAGES.deliveryChannelGone],
  ["is_archived", BOT_MESSAGES.deliveryArchived],
  ["restricted_action", BOT_MESSAGES.deliveryNoAccess],
  ["missing_scope", BOT_MESSAGES.deliveryNoAccess],
  ["account_inactive", BOT_MESSAGES.deliveryBotRemoved],
  ["token_revoked", BOT_MESSAGES.deliveryBotRemoved],
  ["invalid_auth", BOT_MESSAGES.deliveryBotRemoved],
  ["team_access_not_granted", BOT_MESSAGES.deliveryBotRemoved],
]);

/** @slack/web-api's error as the delivery machine's: permanent for the codes above, transient otherwise. */
export function classify(err: unknown): DeliveryError {
  const codes = {
    service: "Slack",
    codeOf: slackErrorCode,
    permanent: PERMANENT_CODES,
    describe: describeSlackError,
  };
  return deliveryErrorOf(codes, err);
}

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
export function slackRefusal(err: unknown): string | undefined {
  const code = slackErrorCode(err);
  return code !== undefined && TOKEN_REFUSALS.has(code) ? code : undefined;
}

/** An error as one log line: Slack's code when it has one. */
export function describeSlackError(err: unknown): string {
  return slackErrorCode(err) || errorText(err);
}
