import {
  type CommandContext,
  type CommandDefinition,
  type CommandReply,
  isGroup,
  type LeafCommand,
  parseArgs,
} from "./command-model.ts";
import { BOT_MESSAGES } from "./messages.ts";

/**
 * One command run for any platform: the definition found by name (and sub-command, for a group), the platform's
 * raw option values checked with its schemas, and its handler called. What cannot be run is answered as an
 * ephemeral text, so the platform only lays out the reply.
 */

/** Runs `name` (`sub`: the sub-command of a group) with the options as the platform gave them. */
export async function runCommand(
  commands: readonly CommandDefinition[],
  name: string,
  sub: string | undefined,
  raw: Record<string, unknown>,
  context: CommandContext,
): Promise<CommandReply> {
  const definition = commands.find((c) => c.name === name);
  if (!definition) return refusal(BOT_MESSAGES.unknownCommand(name));
  if (!isGroup(definition)) return runLeaf(definition, raw, context);
  const leaf = definition.subcommands.find((s) => s.name === sub);
  if (!leaf) return refusal(BOT_MESSAGES.unknownCommand(`${definition.name} ${sub ?? ""}`));
  return runLeaf(leaf, raw, context);
}

/** Runs a command already found; a value its schemas refuse is answered with the reason, naming the option. */
export async function runLeaf(
  leaf: LeafCommand,
  raw: Record<string, unknown>,
  context: CommandContext,
): Promise<CommandReply> {
  const args = parseArgs(leaf.options, raw);
  if (!args.ok) return refusal(args.reason);
  return leaf.handle(args.value as never, context);
}

function refusal(text: string): CommandReply {
  return { kind: "text", text, ephemeral: true };
}
