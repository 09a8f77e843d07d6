import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ClipTokenizer } from "./backends/ldm/tokenizer/clip-tokenizer.ts";
import { loadConfig } from "./config.ts";
import { isEaselError } from "./core/errors.ts";

/** The `easel` command line: operator tools that work without Discord or Slack. */

const USAGE = `easel — self-hosted text-to-image bot

Usage:
  easel tokenize "a prompt" [--tokenizer DIR]   show CLIP token ids and how many tokens a prompt loses
  easel version                                 print the version
  easel help                                    this text

The bot itself starts with \`npm start\`.`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

function tokenize(args: string[]): void {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { tokenizer: { type: "string" } },
  });
  const prompt = positionals.join(" ");
  const config = loadConfig();
  const folder =
    values.tokenizer ?? (config.model ? join(config.modelsDir, config.model, "tokenizer") : undefined);
  if (folder === undefined) {
    throw new Error(
      "easel tokenize needs --tokenizer DIR, or EASEL_MODEL naming a model folder with a tokenizer/",
    );
  }
  const tokenizer = ClipTokenizer.fromFolder(folder);
  const result = tokenizer.tokenize(prompt);
  console.log(`tokens: ${result.textTokenCount} (limit ${tokenizer.config.contextLength - 2})`);
  if (result.truncatedCount > 0)
    console.log(`cut: ${result.truncatedCount} tokens past the limit are ignored`);
  console.log(`input_ids: ${Array.from(result.inputIds).join(" ")}`);
}

/** Runs one CLI invocation; returns the process exit code. */
export async function runCli(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case "help":
    case "--help":
    case "-h":
      console.log(USAGE);
      return 0;
    case "version":
    case "--version":
      console.log(version());
      return 0;
    case "tokenize":
      tokenize(rest);
      return 0;
    default:
      console.error(`easel: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

try {
  process.exitCode = await runCli(process.argv.slice(2));
} catch (err) {
  console.error(`easel: ${isEaselError(err) || err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
}
