import { createRequire } from "node:module";
import { type Config, loadConfig, platformReadiness } from "./config.ts";
import { describeStartupError } from "./core/startup.ts";
import { type EaselHandle, startEasel } from "./easel.ts";

/**
 * `npm start`: reads the configuration, says plainly what is missing when no platform can start, else starts
 * every configured platform over one engine and stops gracefully on SIGINT / SIGTERM (running jobs get 30 s to
 * finish; whatever is still waiting stays queued in the database for the next start). A second signal exits at
 * once. A start-up failure is one line naming the variable and the cause; stacks only with EASEL_DEBUG=1.
 */

const SHUTDOWN_GRACE_MS = 30_000;

let config: Config | undefined;

async function main(): Promise<number> {
  config = loadConfig();
  const { ready, missing } = platformReadiness(config);
  if (ready.length === 0) {
    console.error(
      [
        "easel cannot start: no chat platform is configured (copy .env.example to .env and fill it in).",
        ...missing,
      ]
        .map((line, i) => (i === 0 ? line : `  - ${line}`))
        .join("\n"),
    );
    return 1;
  }
  const { version } = createRequire(import.meta.url)("../package.json") as { version: string };
  const easel: EaselHandle = await startEasel(config, { version });
  console.error(`easel ${version}: serving ${ready.join(" and ")}; data in ${config.dataDir}`);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      console.error(`easel: ${signal} again, exiting now (waiting jobs stay queued for the next start)`);
      process.exit(130);
    }
    stopping = true;
    console.error(`easel: ${signal}, stopping (running jobs get ${SHUTDOWN_GRACE_MS / 1000} s)…`);
    easel.stop(SHUTDOWN_GRACE_MS).then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(`easel: ${describeStartupError(err, config?.debug ?? false)}`);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  return 0;
}

main().then(
  (code) => {
    if (code !== 0) process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`easel cannot start: ${describeStartupError(err, config?.debug ?? false)}`);
    // Whatever the failed start left open (a half-made gateway connection, a retry timer) must not keep the
    // process alive: an operator's service manager should see the exit.
    process.exit(1);
  },
);
