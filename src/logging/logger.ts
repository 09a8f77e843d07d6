import { pino } from "pino";
import type { Config, LogFormat } from "../config.ts";
import { redactor } from "./redact.ts";

/**
 * easel's one log sink: pino, writing to stderr, built once by the composition root (src/main.ts) from the
 * configuration. Every part that logs takes the small `(line) => void` interface and gets `logger.log`; nothing
 * prints on its own.
 *
 * - Redaction happens here, before pino sees anything: the configured tokens and keys by value, and every
 *   credential shape (src/logging/redact.ts) in the message and in the error's fields.
 * - An error is reduced to its name and message, plus the stack frames (and its causes) with EASEL_DEBUG=1:
 *   never the whole object, whose request, headers or body may hold a token.
 * - Format (EASEL_LOG_FORMAT): `human` (default) writes the message alone, one line per event, as an operator
 *   reads it in a terminal or the journal (which adds the time); control characters, newlines included, are
 *   written as escapes so that text from a chat can never fake a line. `json` writes pino's JSON lines
 *   (`level`, ISO `time`, `msg`, `error`) for a log collector.
 * - Level: info, or debug with EASEL_DEBUG=1 (then the SDKs' own debug output comes through too).
 */

/** What every part that logs takes: one line, and optionally the error it is about (for its stack). */
export type LogLine = (line: string, err?: unknown) => void;

export interface Logger {
  /** The injected interface: a line that reports a failure is a warning, any other is info. */
  readonly log: LogLine;
  readonly debug: (line: string) => void;
  readonly info: LogLine;
  readonly warn: LogLine;
  readonly error: LogLine;
  /** Whether debug lines are written (EASEL_DEBUG=1): callers skip building costly debug output otherwise. */
  readonly debugEnabled: boolean;
}

export interface LoggerOptions {
  format?: LogFormat;
  /** EASEL_DEBUG: debug level, stack frames of errors. */
  debug?: boolean;
  /** Values that must never be written (tokens, keys), whatever their shape. */
  secrets?: readonly (string | undefined)[];
  /** Where each finished line goes, newline included (default: process.stderr). */
  write?: (text: string) => void;
}

/** The summary kept of an error: no other field of it is ever written. */
export interface ErrorSummary {
  type: string;
  message: string;
  /** The stack's frames (not its first line, which repeats the message), with EASEL_DEBUG=1 only. */
  stack?: string;
  cause?: ErrorSummary;
}

/** Causes followed at most (SDKs wrap a network error two or three times). */
const MAX_CAUSES = 4;

/**
 * Words of a line that reports something going wrong ("could not post", "failed", "refused"): such a line is a
 * warning, so a collector can filter on the level without every call site naming one.
 */
const FAILURE_WORDS =
  /\b(?:fail(?:ed|s|ure)?|errors?|warning|could not|cannot|can't|refused|unexpected(?:ly)?|stopped)\b/i;

/** The secrets of a configuration: every token and key config.ts reads. */
export function configSecrets(config: Config): (string | undefined)[] {
  return [
    config.discord.token,
    config.slack.botToken,
    config.slack.appToken,
    config.slack.signingSecret,
    config.openai.apiKey,
    config.hub.token,
  ];
}

/** The sink for a configuration: its format, its level, its secrets. */
export function loggerFor(config: Config, options: Pick<LoggerOptions, "write"> = {}): Logger {
  return createLogger({
    format: config.logFormat,
    debug: config.debug,
    secrets: configSecrets(config),
    ...options,
  });
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const debug = options.debug ?? false;
  const clean = redactor(options.secrets ?? []);
  // Looked up at each write, not bound once: whoever replaces process.stderr.write (a test) sees the lines.
  const write = options.write ?? ((text: string) => void process.stderr.write(text));
  const destination = {
    write: options.format === "json" ? write : (json: string) => write(humanLine(json)),
  };
  const sink = pino(
    {
      level: debug ? "debug" : "info",
      // No pid and hostname: one process, and the journal or the collector knows the host.
      base: null,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
  const emit = (level: "debug" | "info" | "warn" | "error", line: string, err?: unknown) => {
    if (err === undefined) sink[level](clean(line));
    else sink[level]({ error: summarizeError(err, debug, clean) }, clean(line));
  };
  return {
    log: (line, err) => emit(err !== undefined || FAILURE_WORDS.test(line) ? "warn" : "info", line, err),
    debug: (line) => emit("debug", line),
    info: (line, err) => emit("info", line, err),
    warn: (line, err) => emit("warn", line, err),
    error: (line, err) => emit("error", line, err),
    debugEnabled: debug,
  };
}

let fallback: Logger | undefined;

/**
 * The sink for a part built without one (a library use, a quick script): human lines on stderr, info level,
 * credential shapes redacted (no configured values are known here).
 */
export function defaultLogger(): Logger {
  fallback ??= createLogger();
  return fallback;
}

/** An error's name and message (redacted), its frames and causes only when `debug`. */
export function summarizeError(
  err: unknown,
  debug: boolean,
  clean: (text: string) => string,
  depth = 0,
): ErrorSummary {
  if (!(err instanceof Error)) {
    // Not an Error (a thrown string, an SDK's plain object): its message if it has one, never its fields.
    const message = (err as { message?: unknown } | null)?.message;
    return {
      type: typeof err,
      message: clean(
        typeof err === "string" ? err : typeof message === "string" ? message : String(typeof err),
      ),
    };
  }
  const summary: ErrorSummary = { type: err.name, message: clean(err.message) };
  if (debug && err.stack) {
    const frames = err.stack.split("\n").filter((l) => /^\s+at /.test(l));
    if (frames.length > 0) summary.stack = clean(frames.join("\n"));
  }
  if (debug && depth < MAX_CAUSES && err.cause !== undefined && err.cause !== null)
    summary.cause = summarizeError(err.cause, debug, clean, depth + 1);
  return summary;
}

/** Control characters as visible escapes (a newline becomes `\n`): one event stays one line. */
function oneLine(text: string): string {
  return text.replace(/\p{Cc}/gu, (c) => {
    if (c === "\t") return c;
    if (c === "\n") return "\\n";
    if (c === "\r") return "\\r";
    return `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
  });
}

/** A pino JSON line as an operator reads it: the message; under it, with debug, the stack and the causes. */
function humanLine(json: string): string {
  const record = JSON.parse(json) as { msg?: string; error?: ErrorSummary };
  const lines = [oneLine(record.msg ?? "")];
  for (let e = record.error; e !== undefined; e = e.cause) {
    if (e !== record.error) lines.push(`  caused by ${oneLine(`${e.type}: ${e.message}`)}`);
    if (e.stack) lines.push(e.stack);
  }
  return `${lines.join("\n")}\n`;
}
