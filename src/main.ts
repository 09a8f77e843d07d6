import { createRequire } from "node:module";
import { type Config, loadConfig, platformReadiness } from "./config.ts";
import { STARTUP_TEXT } from "./core/messages.ts";
import { describeStartupError } from "./core/startup.ts";
import { type EaselHandle, startEasel } from "./easel.ts";
import { createLogger, type Logger, loggerFor } from "./logging/logger.ts";

/**
 * `npm start`: reads the configuration, says plainly what is missing when no platform can start, else starts
 * every configured platform over one engine and stops gracefully on SIGINT / SIGTERM (running jobs get 30 s to
 * finish; whatever is still waiting stays queued in the database for the next start). A second signal exits at
 * once. A start-up failure is one line naming the variable and the cause; stacks only with EASEL_DEBUG=1.
 *
 * Everything easel says goes through one sink (src/logging), made here once from the configuration and handed
 * to every part: redacted, human lines or JSON (EASEL_LOG_FORMAT), on stderr.
 */

const SHUTDOWN_GRACE_MS = 30_000;

let config: Config | undefined;
/** Until the configuration is read (or when it cannot be): human lines, credential shapes still redacted. */
let logger: Logger = createLogger();

async function main(): Promise<number> {
  config = loadConfig();
  logger = loggerFor(config);
  const { ready, missing } = platformReadiness(config);
  if (ready.length === 0) {
    logger.error(STARTUP_TEXT.noPlatform);
    for (const line of missing) logger.error(STARTUP_TEXT.missing(line));
    return 1;
  }
  const { version } = createRequire(import.meta.url)("../package.json") as { version: string };
  const easel: EaselHandle = await startEasel(config, {
    version,
    log: logger.log,
    ...(logger.debugEnabled ? { debug: logger.debug } : {}),
  });
  logger.info(STARTUP_TEXT.serving(version, ready, config.dataDir));
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      logger.warn(STARTUP_TEXT.exitingNow(signal));
      process.exit(130);
    }
    stopping = true;
    logger.info(STARTUP_TEXT.stopping(signal, SHUTDOWN_GRACE_MS / 1000));
    easel.stop(SHUTDOWN_GRACE_MS).then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error(STARTUP_TEXT.stopFailed(failure(err)), err);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  return 0;
}

/**
 * The cause in one line. Its stack frames are the sink's to add (under EASEL_DEBUG=1, from the error given
 * with the line), so the hint to set EASEL_DEBUG goes when it is already set.
 */
function failure(err: unknown): string {
  const line = describeStartupError(err, false);
  return logger.debugEnabled ? line.replace(/ \(set EASEL_DEBUG=1 for the stack trace\)$/, "") : line;
}

main().then(
  (code) => {
    if (code !== 0) process.exitCode = code;
  },
  (err: unknown) => {
    logger.error(STARTUP_TEXT.cannotStart(failure(err)), err);
    // Whatever the failed start left open (a half-made gateway connection, a retry timer) must not keep the
    // process alive: an operator's service manager should see the exit.
    process.exit(1);
  },
);
