import {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
  OpenAIError,
} from "openai";
import { EaselError } from "../../core/errors.ts";
import { MESSAGES, OPENAI_MESSAGES } from "../../core/messages.ts";

/**
 * The one place the openai SDK's errors become EaselErrors: content-policy refusals, the key or model being
 * wrong, rate limits, outages and timeouts each get their code (which decides whether the engine retries) and
 * a sentence a member can read. Provider text is redacted (the API key by value and by shape) and the SDK
 * error is not kept as the cause: some servers echo the key they were given, and a cause gets logged.
 */

/** Error codes OpenAI uses for a prompt or image its safety system refused. */
export const CONTENT_POLICY_CODES: ReadonlySet<string> = new Set([
  "content_policy_violation",
  "moderation_blocked",
]);

/** Error codes that mean the account, not the request, is out of credit: retrying does not help. */
const QUOTA_CODES: ReadonlySet<string> = new Set(["insufficient_quota", "billing_hard_limit_reached"]);

/** What the translation needs to say what went wrong. */
export interface OpenAiErrorContext {
  model: string;
  /** Host of the API server, for messages ("api.openai.com"). */
  host: string;
  /** Per-attempt timeout and retries, for the timeout message. */
  timeoutMs: number;
  maxRetries: number;
  /** Values that must never appear in a message (the API key). */
  secrets: readonly string[];
}

/** What is kept of a provider failure as an EaselError's cause: redacted, with no headers or request. */
export interface OpenAiFailureSummary {
  provider: "openai";
  status?: number;
  code?: string;
  type?: string;
  requestId?: string;
  message: string;
}

/** Shapes of credentials: OpenAI keys (sk-…, sk-proj-…) and bearer tokens. */
const SECRET_SHAPES: readonly RegExp[] = [/\bsk-[A-Za-z0-9_*-]{6,}/g, /\bBearer\s+[A-Za-z0-9._~+/=-]{6,}/gi];

/** `text` with each secret (by value, and anything shaped like an API key) replaced by "[redacted]". */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= 4) out = out.split(secret).join("[redacted]");
  }
  for (const shape of SECRET_SHAPES) out = out.replace(shape, "[redacted]");
  return out;
}

/** A redacted, length-capped provider message, for the operator's log and for invalid-request texts. */
function providerText(text: string | undefined, ctx: OpenAiErrorContext): string {
  const clean = redactSecrets(text ?? "", ctx.secrets)
    .replace(/\s+/g, " ")
    .trim();
  return clean.length > 300 ? `${clean.slice(0, 299)}…` : clean;
}

/** The redacted summary of any error the SDK (or fetch under it) threw. */
export function summarizeOpenAiError(err: unknown, ctx: OpenAiErrorContext): OpenAiFailureSummary {
  const summary: OpenAiFailureSummary = {
    provider: "openai",
    message: providerText(err instanceof Error ? err.message : String(err), ctx),
  };
  if (err instanceof APIError) {
    if (typeof err.status === "number") summary.status = err.status;
    if (typeof err.code === "string") summary.code = err.code;
    if (typeof err.type === "string") summary.type = err.type;
    if (typeof err.requestID === "string") summary.requestId = err.requestID;
    const body = err.error as { message?: unknown } | undefined;
    if (typeof body?.message === "string") summary.message = providerText(body.message, ctx);
  }
  return summary;
}

/** One log line for the operator: status, code, request id, redacted provider message. */
export function describeFailure(summary: OpenAiFailureSummary): string {
  const parts = [
    summary.status === undefined ? "no response" : `HTTP ${summary.status}`,
    ...(summary.code ? [summary.code] : []),
    ...(summary.requestId ? [`request ${summary.requestId}`] : []),
  ];
  return `${parts.join(" ")}: ${summary.message || "(no message)"}`;
}

/** Whether a provider failure is a content-policy refusal. */
export function isContentPolicyRefusal(err: unknown): boolean {
  if (!(err instanceof APIError) || err.status !== 400) return false;
  if (typeof err.code === "string" && CONTENT_POLICY_CODES.has(err.code)) return true;
  // Older servers say so only in words ("…rejected as a result of our safety system").
  return /safety system/i.test(err.message);
}

/** Whether a provider failure says the model does not exist (retired, misspelt, or not on this server). */
export function isModelNotFound(err: unknown): boolean {
  if (!(err instanceof APIError) || err.status !== 404) return false;
  return err.code === "model_not_found" || /model\b.*\b(does not exist|not found)/i.test(err.message);
}

const seconds = (ms: number): string => `${Math.round(ms / 100) / 10} s`;

/**
 * Translates whatever the SDK threw into an EaselError. Transient failures (429, 5xx, resets, timeouts) arrive
 * here after the SDK's own retries, and become "provider_unavailable" or "timeout" so that the engine retries
 * them up to its cap; everything else is final.
 */
export function translateOpenAiError(err: unknown, ctx: OpenAiErrorContext): EaselError {
  if (err instanceof EaselError) return err;
  const summary = summarizeOpenAiError(err, ctx);
  const make = (code: ConstructorParameters<typeof EaselError>[0], message: string) =>
    new EaselError(code, message, { cause: summary });
  const tries = OPENAI_MESSAGES.tries(ctx.maxRetries + 1);
  const say = OPENAI_MESSAGES;

  if (err instanceof APIUserAbortError) return make("cancelled", MESSAGES.cancelled);
  if (err instanceof APIConnectionTimeoutError)
    return make("timeout", say.timedOut(seconds(ctx.timeoutMs), tries));
  if (err instanceof APIConnectionError)
    return make("provider_unavailable", say.unreachable(ctx.host, tries));
  if (err instanceof APIError) {
    const status = err.status ?? 0;
    const code = summary.code ?? "";
    if (isContentPolicyRefusal(err)) return make("content_policy", MESSAGES.contentPolicy);
    if (status === 401) return make("config", say.keyRefused(ctx.host));
    if (status === 404 && isModelNotFound(err)) return make("config", say.modelMissing(ctx.model, ctx.host));
    if (status === 403)
      return make("config", say.modelForbidden(ctx.model, ctx.host, summary.message || "forbidden"));
    if (QUOTA_CODES.has(code)) return make("config", say.outOfCredit);
    if (status === 429) return make("provider_unavailable", MESSAGES.providerRateLimited(ctx.maxRetries + 1));
    if ((status >= 500 && status !== 501) || status === 408 || status === 409)
      return make("provider_unavailable", say.serverError(status, tries));
    if (status === 404 || status === 405 || status === 501)
      return make("not_supported", say.notOffered(ctx.host, status));
    return make("invalid_argument", say.refused(summary.message || `HTTP ${status}`));
  }
  if (err instanceof OpenAIError) return make("config", say.misconfigured(summary.message));
  return make("render_failed", say.unusableAnswer);
}
