import { EaselError } from "./errors.ts";

/**
 * Start-up failures told to the operator in one line that names the variable and the cause. Two causes need
 * opposite fixes and must never be confused: the service refused a token (fix the variable) and the service
 * could not be reached (fix the network, or the base-URL variable). Platforms translate their SDK's errors
 * with these at the edge; the stack trace stays behind unless EASEL_DEBUG=1.
 */

/** Node's and undici's codes for "the request never got an answer". */
const NETWORK_CODES = new Set([
  "ENOTFOUND",
  "EAI_AGAIN",
  "EAI_FAIL",
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENETUNREACH",
  "ENETDOWN",
  "EPIPE",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
  "CERT_HAS_EXPIRED",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/** How deep causes are followed: SDKs wrap a network error two or three times. */
const MAX_CAUSE_DEPTH = 6;

/** The errors an error was caused by: `cause`, Slack's `original`, an AggregateError's `errors`. */
function causesOf(err: object): unknown[] {
  const e = err as { cause?: unknown; original?: unknown; errors?: unknown };
  return [e.cause, e.original, ...(Array.isArray(e.errors) ? e.errors : [])].filter(
    (c) => typeof c === "object" && c !== null,
  );
}

/**
 * When `err`, or an error it wraps, is a network failure: its one-line description ("getaddrinfo ENOTFOUND
 * discord.com", "connect ECONNREFUSED 127.0.0.1:9"); else undefined.
 */
export function networkFailure(err: unknown, depth = 0): string | undefined {
  if (typeof err !== "object" || err === null || depth > MAX_CAUSE_DEPTH) return undefined;
  const { code, message, name } = err as { code?: unknown; message?: unknown; name?: unknown };
  if (typeof code === "string" && NETWORK_CODES.has(code))
    return typeof message === "string" && message !== "" ? firstLine(message) : code;
  if (name === "TimeoutError") return "no answer in time";
  for (const cause of causesOf(err)) {
    const found = networkFailure(cause, depth + 1);
    if (found) return found;
  }
  return undefined;
}

const firstLine = (text: string): string => (text.split("\n")[0] ?? text).slice(0, 200);

/** "cannot reach Discord at https://…: getaddrinfo ENOTFOUND discord.com (check the network or DISCORD_API_BASE)". */
export function unreachableError(
  service: string,
  endpoint: string,
  detail: string,
  baseVariable: string,
  cause: unknown,
): EaselError {
  return new EaselError(
    "config",
    `cannot reach ${service} at ${endpoint}: ${detail} (check the network, or ${baseVariable})`,
    { cause },
  );
}

/** "Discord refused DISCORD_TOKEN (TokenInvalid): …" — the token is wrong, not the network. */
export function refusedError(service: string, variable: string, detail: string, cause: unknown): EaselError {
  return new EaselError(
    "config",
    `${service} refused ${variable} (${firstLine(detail)}): ${fixFor(variable)}`,
    {
      cause,
    },
  );
}

function fixFor(variable: string): string {
  if (variable === "DISCORD_TOKEN")
    return "copy the bot token again from the Developer Portal (Bot → Reset Token)";
  if (variable === "SLACK_APP_TOKEN")
    return "use the app-level token (xapp-…) with the connections:write scope";
  if (variable.startsWith("SLACK_")) return "use the Bot User OAuth Token (xoxb-…) of the installed app";
  return `check ${variable}`;
}

/**
 * Translates a failure while connecting to a service at start-up: unreachable when the network failed, else
 * refused (the token) unless `isRefusal` says the error is something else, which is then kept as it is.
 */
export function startupFailure(
  err: unknown,
  where: { service: string; endpoint: string; baseVariable: string; tokenVariable: string },
  isRefusal: (err: unknown) => string | undefined,
): unknown {
  const network = networkFailure(err);
  if (network) return unreachableError(where.service, where.endpoint, network, where.baseVariable, err);
  const refusal = isRefusal(err);
  if (refusal) return refusedError(where.service, where.tokenVariable, refusal, err);
  return err;
}

/** One line for the operator: the message of a known error, else its name and message; the stack only on request. */
export function describeStartupError(err: unknown, debug: boolean): string {
  if (debug && err instanceof Error && err.stack) return err.stack;
  if (err instanceof EaselError) return err.message;
  if (err instanceof Error)
    return `${err.name}: ${firstLine(err.message)} (set EASEL_DEBUG=1 for the stack trace)`;
  return String(err);
}
