/**
 * easel's one error type: a stable string `code` that callers branch on, a message a person can read,
 * and the underlying `cause` when an SDK or the OS produced it.
 */
export type EaselErrorCode =
  | "invalid_argument"
  | "unknown_scheduler"
  | "tokenizer_file"
  | "model_file"
  | "not_supported"
  | "config"
  | "device_unavailable"
  | "download_failed"
  | "cancelled"
  | "worker_crashed"
  | "worker_hung"
  | "timeout"
  | "provider_unavailable"
  | "content_policy"
  | "queue_full"
  | "limit_reached"
  | "shutting_down"
  | "not_found"
  | "render_failed"
  | "forbidden"
  // A prompt refused by a guild's banned words or patterns (src/core/moderation.ts); never retried.
  | "banned_content"
  // The store (src/store): SQLite locked past busy_timeout, no space left, an I/O failure, a damaged or
  // too-new database, a state change that lost a race.
  | "store_busy"
  | "disk_full"
  | "io_error"
  | "store_corrupt"
  | "store_version"
  | "conflict"
  // A platform refused or failed a post (core/delivery-error.ts says whether trying again can help).
  | "delivery_failed"
  // A bug: an error without a code of its own (the LDM worker reports one as such). Deterministic, never
  // retried; the member sees a generic text.
  | "internal";

/** The one error class of easel; SDK errors are translated into it at the edge. */
export class EaselError extends Error {
  readonly code: EaselErrorCode;

  constructor(code: EaselErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "EaselError";
    this.code = code;
  }
}

/** True when `err` is an EaselError, optionally with the given code. */
export function isEaselError(err: unknown, code?: EaselErrorCode): err is EaselError {
  return err instanceof EaselError && (code === undefined || err.code === code);
}

/**
 * Failures worth another attempt: the renderer died, hung, timed out or was briefly unavailable. User errors
 * and content-policy refusals never retry, nor do deterministic failures (`internal`, `model_file`,
 * `invalid_argument`, a model that cannot load): they would fail the same way again.
 */
export const TRANSIENT_ERROR_CODES: ReadonlySet<string> = new Set([
  "worker_crashed",
  "worker_hung",
  "timeout",
  "provider_unavailable",
]);
