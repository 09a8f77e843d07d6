import { loadConfig, platformReadiness } from "./config.ts";
import { isEaselError } from "./core/errors.ts";

/**
 * The composition root: configuration → store → backends → scheduler → platforms. Platforms are wired in as
 * their issues land; until then `npm start` says exactly what it would need and what is not built yet.
 */
function main(): number {
  const config = loadConfig();
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
  console.error(
    `easel: ${ready.join(" and ")} configured, but the platform adapters are not built yet in this version; ` +
      "use the `easel` CLI meanwhile.",
  );
  return 1;
}

try {
  process.exitCode = main();
} catch (err) {
  console.error(isEaselError(err) ? err.message : err);
  process.exitCode = 1;
}
