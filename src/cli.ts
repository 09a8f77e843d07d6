import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ClipTokenizer } from "./backends/ldm/tokenizer/clip-tokenizer.ts";
import { generateCommand } from "./cli/generate.ts";
import { defaultModelName, modelsCommand } from "./cli/models.ts";
import { type Config, loadConfig } from "./config.ts";
import { isEaselError } from "./core/errors.ts";

/** The `easel` command line: operator tools that work without Discord or Slack. */

const USAGE = `easel — self-hosted text-to-image bot

Usage:
  easel generate "a prompt" [--model NAME] [--negative TEXT] [--seed N] [--steps N] [--cfg X]
                 [--sampler NAME] [--size WxH | --ar W:H] [--n N] [--init img.png --strength 0.6]
                 [--out file.png] [--device auto|cuda|cpu]
  easel models                        list model folders: family, dtype, inputs, whether they load
  easel models make-tiny NAME         write a tiny random test model to models/NAME [--variant sd1|turbo|lcm|…]
  easel models pull NAME              download a known ONNX export from the Hugging Face hub
  easel tokenize "a prompt"           CLIP token ids, and how many tokens past 75 are lost [--tokenizer DIR]
  easel version | help

Models live in EASEL_MODELS_DIR (default ./models). The bot itself starts with \`npm start\`.`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

function tokenize(args: string[], config: Config): void {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { tokenizer: { type: "string" } },
  });
  const folder = values.tokenizer ?? join(config.modelsDir, defaultModelName(config), "tokenizer");
  const tokenizer = ClipTokenizer.fromFolder(folder);
  const result = tokenizer.tokenize(positionals.join(" "));
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
      tokenize(rest, loadConfig());
      return 0;
    case "generate":
      await generateCommand(rest, loadConfig());
      return 0;
    case "models":
      await modelsCommand(rest, loadConfig());
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
