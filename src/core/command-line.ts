import {
  type CommandDefinition,
  isGroup,
  type LeafCommand,
  type OptionSpec,
  optionSpecs,
} from "./command-model.ts";
import { BOT_MESSAGES } from "./messages.ts";

/**
 * A command typed as one line of text (all a Slack slash command gets), so `/imagine` carries every command:
 * `/imagine a prompt --ar 3:2` draws (the engine's prompt-flag parser reads the flags), and a first word naming
 * another command turns the text into that command: `/imagine help`, `/imagine settings set steps 12`,
 * `/imagine queue --all`, `/imagine cancel k3x9a2`, `/imagine info`.
 *
 * A prompt may start with one of those words too ("info graphic of a whale"), so a sub-command is only taken
 * when the rest of the text has its shape: each positional option takes one word, except a free-text one (a
 * long limit and no fixed choices: the prompt, a setting's value), which takes the rest; other options are
 * `--name value` (`--name` alone for on/off ones). Words left over, or a word that is not one of a positional
 * option's fixed choices, mean the text was a prompt after all. After a group's sub-command word (`settings
 * set`) the text is that command, and a mistake in it is answered as one (`settings` alone shows the settings).
 */

/** What one line of text asks for. */
export type CommandLine =
  | { kind: "help" }
  /** `raw` holds the options as typed (numbers and on/off already converted); parseArgs checks them. */
  | { kind: "leaf"; path: string; leaf: LeafCommand; raw: Record<string, unknown> };

/** The command the text is when no other command's name starts it. */
export const DEFAULT_COMMAND = "imagine";

/** The word that asks for the list of sub-commands. */
export const HELP_WORD = "help";

/** An option whose limit is at least this long is free text and takes the rest of the line. */
const FREE_TEXT_MIN_LENGTH = 100;

function findCommand(commands: readonly CommandDefinition[], name: string): CommandDefinition | undefined {
  return commands.find((c) => c.name === name);
}

/** Converts a typed word to the option's type (zod then checks it and names the limit). */
function convert(spec: OptionSpec | undefined, value: string | true): unknown {
  if (value === true) return spec?.type === "boolean" ? true : "";
  if (spec?.type === "integer" || spec?.type === "number") {
    const n = Number(value);
    return value.trim() !== "" && Number.isFinite(n) ? n : value;
  }
  if (spec?.type === "boolean") {
    if (/^(on|true|yes|1)$/i.test(value)) return true;
    if (/^(off|false|no|0)$/i.test(value)) return false;
  }
  return value;
}

const isFreeText = (spec: OptionSpec | undefined): boolean =>
  spec?.type === "string" &&
  spec.choices === undefined &&
  (spec.maxLength === undefined || spec.maxLength >= FREE_TEXT_MIN_LENGTH);

/**
 * Fills a leaf's options from the words after its name, or returns undefined when the words do not have the
 * leaf's shape (so the text is a prompt).
 */
function fillLeaf(
  leaf: LeafCommand,
  rest: string,
  strictChoices: boolean,
): Record<string, unknown> | undefined {
  const specs = new Map(optionSpecs(leaf.options).map((s) => [s.name, s]));
  const positional = leaf.positional ?? [];
  const raw: Record<string, unknown> = {};
  // `--name value` for options that are not positional; the value runs to the next `--`.
  const words: string[] = [];
  const tokens = rest.split(/\s+/).filter((w) => w !== "");
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] as string;
    const flag = /^(?:--|—)([a-z][a-z0-9-]*)$/i.exec(token)?.[1]?.toLowerCase();
    const spec = flag === undefined ? undefined : specs.get(flag);
    if (flag === undefined || !spec || positional.includes(flag)) {
      words.push(token);
      continue;
    }
    const value: string[] = [];
    while (i + 1 < tokens.length && !/^(?:--|—)[a-z]/i.test(tokens[i + 1] as string)) {
      value.push(tokens[++i] as string);
      if (spec.type === "boolean" || !isFreeText(spec)) break;
    }
    raw[flag] = convert(spec, value.length > 0 ? value.join(" ") : true);
  }
  for (let p = 0; p < positional.length; p++) {
    const name = positional[p] as string;
    const spec = specs.get(name);
    if (words.length === 0) break;
    if (p === positional.length - 1 && isFreeText(spec)) {
      raw[name] = convert(spec, words.splice(0).join(" "));
    } else {
      const word = words.shift() as string;
      // `top dog` is a prompt, not `top` with a period of "dog".
      if (strictChoices && spec?.choices && !spec.choices.includes(word)) return undefined;
      raw[name] = convert(spec, word);
    }
  }
  return words.length > 0 ? undefined : raw;
}

/** Reads one line of text (as the member typed it: the platform's escapes undone) as one of `commands`. */
export function parseCommandLine(commands: readonly CommandDefinition[], text: string): CommandLine {
  const trimmed = text.trim();
  const [first = "", ...others] = trimmed.split(/\s+/);
  const word = first.toLowerCase();
  const rest = others.join(" ");
  if (trimmed === "" || (word === HELP_WORD && rest === "")) return { kind: "help" };
  const named = word === DEFAULT_COMMAND ? undefined : findCommand(commands, word);
  if (named && isGroup(named)) {
    const [subWord = "", ...subRest] = others;
    const sub = subWord === "" ? named.subcommands[0] : named.subcommands.find((s) => s.name === subWord);
    if (sub) {
      const raw = fillLeaf(sub, subRest.join(" "), false);
      if (raw) return { kind: "leaf", path: `${named.name} ${sub.name}`, leaf: sub, raw };
    }
  } else if (named) {
    const raw = fillLeaf(named, rest, true);
    if (raw) return { kind: "leaf", path: named.name, leaf: named, raw };
  }
  const imagine = findCommand(commands, DEFAULT_COMMAND);
  if (!imagine || isGroup(imagine)) throw new Error("the imagine command is missing");
  // The prompt's flags are the engine's to read: the whole text is the prompt.
  return { kind: "leaf", path: DEFAULT_COMMAND, leaf: imagine, raw: { prompt: trimmed } };
}

/** How one option is typed on Slack. */
function usageOf(leaf: LeafCommand): string {
  const specs = optionSpecs(leaf.options);
  const positional = leaf.positional ?? [];
  const parts = positional.map((name) => {
    const spec = specs.find((s) => s.name === name);
    return spec?.required ? `<${name}>` : `[${name}]`;
  });
  for (const spec of specs) {
    if (positional.includes(spec.name)) continue;
    const value = spec.type === "boolean" ? "" : ` ${spec.choices ? spec.choices.join("|") : spec.name}`;
    parts.push(`[--${spec.name}${value}]`);
  }
  return parts.join(" ");
}

/** The help text: every one of `commands` as it is typed after `command` (the slash command's own name). */
export function commandLineHelp(commands: readonly CommandDefinition[], command: string): string {
  const lines: { usage: string; description: string }[] = [];
  for (const definition of commands) {
    if (definition.name === DEFAULT_COMMAND && !isGroup(definition)) {
      lines.unshift({
        usage: `${command} <prompt> [--flag value …]`,
        description: definition.description,
      });
      continue;
    }
    const leaves = isGroup(definition)
      ? definition.subcommands.map((s) => ({ path: `${definition.name} ${s.name}`, leaf: s }))
      : [{ path: definition.name, leaf: definition }];
    for (const { path, leaf } of leaves) {
      const usage = usageOf(leaf);
      lines.push({
        usage: `${command} ${path}${usage ? ` ${usage}` : ""}`,
        description: leaf.description,
      });
    }
  }
  return BOT_MESSAGES.slackHelp(command, lines);
}
