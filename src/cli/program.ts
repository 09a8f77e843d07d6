import { readFileSync } from "node:fs";
import { Command, CommanderError, Option } from "commander";
import type { Config } from "../config.ts";
import { HARD_LIMITS } from "../core/prompt-flags.ts";
import type { GenerateOptions } from "./generate.ts";
import { samplerHelp, variantHelp } from "./help.ts";
import type { MakeTinyOptions } from "./models.ts";
import type { TokenizeOptions } from "./tokenize.ts";
import { UsageError } from "./usage.ts";

/**
 * The `easel` command line, on commander: operator tools that work without Discord or Slack. Exit codes: 0
 * done; 2 the command line was refused, by commander (unknown command or option, missing argument) or by
 * easel's checks, before anything was loaded or written; 1 the work itself failed.
 *
 * Each command's module, and the configuration (zod, dotenv), is imported when the command runs, so that
 * `easel help`, `easel version` and every commander refusal start without them.
 */

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

/** The configuration the CLI reads: the bot-only variables are left out, so a bad one cannot stop it. */
async function cliConfig(): Promise<Config> {
  const { loadConfig } = await import("../config.ts");
  return loadConfig(undefined, { scope: "cli" });
}

/** What help texts state that comes from modules too slow to import for every command. */
export interface HelpFacts {
  /** The make-tiny variants (their module loads the ONNX writer, about 0.1 s). */
  variants: readonly string[];
  /** The pixel limit when EASEL_MAX_PIXELS is not set. */
  defaultMaxPixels: number;
}

/**
 * Whether `args` may print a help text, or run make-tiny (whose --variant checks against the variants):
 * `easel`, `easel help …`, or a --help / -h anywhere. Only then are the HelpFacts read.
 */
function needsHelpFacts(args: readonly string[]): boolean {
  return args[0] === "help" || args.includes("--help") || args.includes("-h") || args.includes("make-tiny");
}

async function loadHelpFacts(): Promise<HelpFacts> {
  const [{ tinyModelVariants }, { DEFAULT_LIMITS }] = await Promise.all([
    import("./models.ts"),
    import("../core/settings.ts"),
  ]);
  return { variants: await tinyModelVariants(), defaultMaxPixels: DEFAULT_LIMITS.maxPixels };
}

/** A help text's extra part, left out of the usage printed after an error: there it would bury the error. */
const unlessError =
  (text: string) =>
  (context: { error: boolean }): string =>
    context.error ? "" : text;

const HINT = (command: string): string => `(easel ${command} --help lists its arguments and options)`;

/** The commander program; `facts` (see needsHelpFacts) complete the help texts and make-tiny's --variant. */
export function buildProgram(facts: HelpFacts | undefined): Command {
  const variants = facts?.variants;
  const program = new Command("easel")
    .description("easel — self-hosted text-to-image bot; these commands work without Discord or Slack")
    .version(version(), "-V, --version", "print easel's version")
    .helpCommand(false)
    // Wide enough for the option descriptions on one line each, and the same on a terminal and in a pipe.
    .configureHelp({ helpWidth: 110 })
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(text.replace(/^error: /, "easel: ")) })
    .showHelpAfterError(true)
    .addHelpText(
      "after",
      unlessError(
        [
          "",
          "Models live in EASEL_MODELS_DIR (default ./models). The bot itself starts with `npm start`.",
          "Exit codes: 0 done, 1 failed, 2 the command line was refused (nothing was loaded or written).",
          "",
          samplerHelp(),
          ...(variants ? ["", variantHelp(variants)] : []),
        ].join("\n"),
      ),
    );

  program
    .command("generate")
    .description("render a prompt on a local model into image files that carry their settings")
    .argument("[prompt...]", "the prompt (quote it; it may end in the bot's flags), or - for standard input")
    .option("--prompt-file <file>", "read the prompt from a file (- for standard input)")
    .option("--model <name>", "a folder in EASEL_MODELS_DIR (default: EASEL_MODEL, else the only one)")
    .option("--negative <text>", "what to keep out of the image")
    .option("--seed <n>", `0 to ${HARD_LIMITS.maxSeed}; image i uses seed + i (default: random)`)
    .option(
      "--steps <n>",
      `${HARD_LIMITS.minSteps} to EASEL_MAX_STEPS (${HARD_LIMITS.maxSteps}); default: the model's`,
    )
    .option("--cfg <x>", `guidance, 0 to ${HARD_LIMITS.maxGuidance}; default: the model's`)
    .option("--sampler <name>", "one of the samplers below; default: the model's")
    .option(
      "--size <WxH>",
      `sides ${HARD_LIMITS.minSide} to ${HARD_LIMITS.maxSide}, rounded down to multiples of 8; pixels up to EASEL_MAX_PIXELS${facts ? ` (${facts.defaultMaxPixels})` : ""}`,
    )
    .option("--ar <W:H>", "an aspect ratio at the model's native pixel count (up to 4:1)")
    .option(
      "--n <count>",
      `images, ${HARD_LIMITS.minCount} to EASEL_MAX_IMAGES (${HARD_LIMITS.maxCount}); more than one adds a grid`,
    )
    .option("--init <image>", "img2img: the image to start from (cropped to the size)")
    .option("--strength <x>", `img2img: how much to repaint, ${HARD_LIMITS.minStrength} to 1 (default 0.6)`)
    .option("--out <file>", "a .png, .jpg, .jpeg or .webp file (default easel-SEED.png)")
    .option(
      "--no-safety-checker",
      "keep what the model's safety checker flags (it runs when the model or EASEL_SAFETY_CHECKER has one)",
    )
    .addOption(
      new Option("--device <device>", "where to run (default: EASEL_DEVICE, else auto)").choices([
        "auto",
        "cuda",
        "cpu",
      ]),
    )
    .showHelpAfterError(HINT("generate"))
    .addHelpText("after", unlessError(`\n${samplerHelp()}`))
    .action(async (words: string[], options: GenerateOptions) => {
      const { generateCommand } = await import("./generate.ts");
      await generateCommand(words, options, await cliConfig(), process.stdin);
    });

  const models = program
    .command("models")
    .description("list the model folders: family, dtype, inputs, whether they load")
    .allowExcessArguments()
    .showHelpAfterError(HINT("models"))
    .action(async (_options: unknown, command: Command) => {
      const [sub] = command.args;
      if (sub !== undefined)
        command.error(`easel: unknown command 'models ${sub}'; models has list, make-tiny and pull`, {
          code: "commander.unknownCommand",
          exitCode: 2,
        });
      await runListModels();
    });
  models.command("list").description("the same as easel models").action(runListModels);
  const variantOption = new Option("--variant <variant>", "which tiny model").default("sd1");
  models
    .command("make-tiny")
    .description("write a tiny random test model to EASEL_MODELS_DIR/NAME (its images are noise)")
    .argument("<name>", "the model folder's name (letters, digits, . _ -)")
    .addOption(variants ? variantOption.choices(variants) : variantOption)
    .option("--tokenizer <dir>", "a CLIP tokenizer folder (default: the one easel carries)")
    .showHelpAfterError(HINT("models make-tiny"))
    .addHelpText("after", unlessError(variants ? `\n${variantHelp(variants)}` : ""))
    .action(async (name: string, options: MakeTinyOptions) => {
      const { makeTiny } = await import("./models.ts");
      await makeTiny(name, options, await cliConfig());
    });
  models
    .command("pull")
    .description("download a known ONNX export from the Hugging Face hub (HF_ENDPOINT, HF_TOKEN)")
    .argument("[name]", "an entry of models/known-models.json; leave it out to list them")
    .showHelpAfterError(HINT("models pull"))
    .action(async (name: string | undefined) => {
      const { pullCommand } = await import("./pull.ts");
      await pullCommand(name === undefined ? [] : [name], await cliConfig());
    });

  program
    .command("tokenize")
    .description("CLIP token ids of a prompt, and the tokens past the limit of 75")
    .argument("[text...]", "the text (quote it), or - for standard input")
    .option("--prompt-file <file>", "read the text from a file (- for standard input)")
    .option("--model <name>", "use this model's tokenizer (default: EASEL_MODEL, else the only model)")
    .option("--tokenizer <dir>", "use the CLIP tokenizer in this folder")
    .showHelpAfterError(HINT("tokenize"))
    .action(async (words: string[], options: TokenizeOptions) => {
      const { tokenizeCommand } = await import("./tokenize.ts");
      await tokenizeCommand(words, options, await cliConfig(), process.stdin);
    });

  program
    .command("version")
    .description("print easel's version")
    .action(() => console.log(version()));

  program
    .command("help")
    .description("this text, or a command's (easel help models pull)")
    .argument("[command...]", "a command and sub-command")
    .action((path: string[]) => {
      let target: Command = program;
      for (const [i, name] of path.entries()) {
        const next = target.commands.find((c) => c.name() === name);
        if (next === undefined)
          return program.error(`easel: unknown command '${path.slice(0, i + 1).join(" ")}'`, {
            code: "commander.unknownCommand",
            exitCode: 2,
          });
        target = next;
      }
      target.outputHelp();
    });
  return program;
}

/** `easel models` and `easel models list`. */
async function runListModels(): Promise<void> {
  const { listModels } = await import("./models.ts");
  await listModels(await cliConfig());
}

/** Runs one CLI invocation (`argv` without node and the script); returns the process exit code. */
export async function runCli(argv: readonly string[]): Promise<number> {
  const args = argv.length === 0 ? ["help"] : [...argv];
  const program = buildProgram(needsHelpFacts(args) ? await loadHelpFacts() : undefined);
  try {
    await program.parseAsync(args, { from: "user" });
    return 0;
  } catch (err) {
    // Commander has printed its own message (and the usage) by now; its exit code 0 is help or --version.
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    console.error(`easel: ${err instanceof Error ? err.message : String(err)}`);
    return err instanceof UsageError ? 2 : 1;
  }
}
