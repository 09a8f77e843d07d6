import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";

/**
 * The platforms' API documents the fakes validate requests against. The repository carries its own copies
 * (this folder, with each upstream LICENSE; see README.md); an environment variable points a fake at another
 * copy of the same format. A missing document is an error, never a fake that quietly stops validating.
 */

const SPECS = {
  discord: { variable: "DISCORD_SPEC", file: "discord/openapi.json" },
  openai: { variable: "OPENAI_SPEC", file: "openai/openapi.json" },
  slack: { variable: "SLACK_SPEC", file: "slack/slack_web_openapi_v2.json" },
} as const;

/** One of the platforms with a spec here. */
export type SpecName = keyof typeof SPECS;

/** Where a platform's document is read from: its variable (relative to the working directory) or this folder. */
export function specPath(name: SpecName): string {
  const { variable, file } = SPECS[name];
  const fromEnv = process.env[variable];
  return fromEnv ? resolve(fromEnv) : new URL(file, import.meta.url).pathname;
}

/** Parses a platform's document; throws naming the path and the variable when it is not there. */
export function loadSpec<T = Record<string, unknown>>(name: SpecName): T {
  const path = specPath(name);
  if (!existsSync(path)) {
    throw new Error(
      `the fake ${name} server validates against ${path}, which is missing (set ${SPECS[name].variable} to another copy)`,
    );
  }
  return JSON.parse(readFileSync(path, "utf8")) as T;
}
