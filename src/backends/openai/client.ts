import { format } from "node:util";
import OpenAI from "openai";
import { redactSecrets } from "./errors.ts";

/**
 * The openai SDK client as easel uses it: every option given explicitly (the SDK would otherwise read
 * OPENAI_BASE_URL, OPENAI_ORG_ID, OPENAI_LOG … from the environment behind config.ts's back), its log lines
 * redacted, its per-attempt timeout and retries from configuration, and Retry-After waits capped.
 */

/** OpenAI's own API, when OPENAI_BASE_URL is unset. */
export const DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1";

/**
 * The longest Retry-After the SDK may wait out inside one attempt. The SDK obeys any Retry-After, however
 * long; a longer one fails the attempt at once ("provider_unavailable") and the engine's own retries take over.
 */
export const MAX_RETRY_AFTER_MS = 30_000;

/** A fetch function as the SDK takes it (tests inject one). */
export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** What the client needs. */
export interface OpenAiClientOptions {
  apiKey: string;
  baseUrl?: string;
  timeoutMs: number;
  maxRetries: number;
  /** Receives the SDK's warnings and errors, already redacted. */
  log: (line: string) => void;
  fetch?: FetchLike;
  maxRetryAfterMs?: number;
}

/** The SDK client for easel's settings. */
export function createOpenAiClient(options: OpenAiClientOptions): OpenAI {
  const secrets = [options.apiKey];
  const line =
    (level: string) =>
    (message: string, ...rest: unknown[]) =>
      options.log(redactSecrets(`openai sdk ${level}: ${format(message, ...rest)}`, secrets));
  return new OpenAI({
    apiKey: options.apiKey,
    baseURL: options.baseUrl ?? DEFAULT_OPENAI_BASE_URL,
    organization: null,
    project: null,
    adminAPIKey: null,
    webhookSecret: null,
    timeout: options.timeoutMs,
    maxRetries: options.maxRetries,
    logLevel: "warn",
    logger: { error: line("error"), warn: line("warn"), info: line("info"), debug: line("debug") },
    fetch: capRetryAfter(options.fetch ?? globalThis.fetch, options.maxRetryAfterMs ?? MAX_RETRY_AFTER_MS),
  });
}

/** Milliseconds a response asks to wait (retry-after-ms, or Retry-After in seconds or as a date). */
export function retryAfterMs(headers: Headers, now = Date.now()): number | undefined {
  const ms = Number.parseFloat(headers.get("retry-after-ms") ?? "");
  if (Number.isFinite(ms)) return ms;
  const value = headers.get("retry-after");
  if (value === null) return undefined;
  const s = Number.parseFloat(value);
  if (Number.isFinite(s)) return s * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : date - now;
}

/** Wraps fetch so that a Retry-After above `maxMs` makes the SDK give up instead of sleeping through it. */
function capRetryAfter(fetchFn: FetchLike, maxMs: number): FetchLike {
  return async (input, init) => {
    const response = await fetchFn(input, init);
    const wait = response.ok ? undefined : retryAfterMs(response.headers);
    if (wait === undefined || wait <= maxMs) return response;
    const headers = new Headers(response.headers);
    headers.set("x-should-retry", "false");
    return new Response(response.body, {
      status: response.status,
      statusText: response.statusText,
      headers,
    });
  };
}
