import { type Logger, LogLevel } from "@slack/bolt";

/**
 * Slack's SDKs (bolt, the Web API, Socket Mode) log into easel's log: warnings and errors always, debug and
 * info only into `debug` (EASEL_DEBUG=1; Socket Mode's debug lines hold whole payloads, response_urls included,
 * which the sink redacts). An Error is its message, never the object.
 */
export function slackLogger(
  log: (line: string) => void,
  debug?: (line: string) => void,
  initialName = "bolt",
): Logger {
  let level = debug ? LogLevel.DEBUG : LogLevel.WARN;
  let name = initialName;
  const text = (msg: unknown[]) => msg.map((m) => (m instanceof Error ? m.message : String(m))).join(" ");
  const line =
    (tag: string) =>
    (...msg: unknown[]) =>
      log(`easel: Slack ${name} ${tag}: ${text(msg)}`);
  const verbose = (tag: string) =>
    debug ? (...msg: unknown[]) => debug(`slack ${name} ${tag}: ${text(msg)}`) : () => {};
  return {
    debug: verbose("debug"),
    info: verbose("info"),
    warn: line("warning"),
    error: line("error"),
    setLevel: (l: LogLevel) => {
      level = l;
    },
    getLevel: () => level,
    setName: (n: string) => {
      name = n;
    },
  };
}
