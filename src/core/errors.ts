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
  | "worker_hung";

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
