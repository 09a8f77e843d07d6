import {
  ApplicationCommandOptionType,
  ApplicationCommandType,
  type RESTPostAPIApplicationCommandsJSONBody,
} from "discord.js";
import {
  COMMANDS,
  type CommandDefinition,
  IMAGINE_THIS,
  isGroup,
  type LeafCommand,
  type OptionSpec,
  optionSpecs,
} from "../../../commands/index.ts";

/**
 * easel's commands as Discord application commands, built from the neutral definitions: option types,
 * bounds (min/max value, max length) and choices come from the zod schemas, so Discord's client already
 * refuses out-of-range values (the handlers check them again).
 */

const TYPES: Record<OptionSpec["type"], ApplicationCommandOptionType> = {
  string: ApplicationCommandOptionType.String,
  integer: ApplicationCommandOptionType.Integer,
  number: ApplicationCommandOptionType.Number,
  boolean: ApplicationCommandOptionType.Boolean,
};

function optionData(spec: OptionSpec) {
  return {
    type: TYPES[spec.type],
    name: spec.name,
    description: spec.description.slice(0, 100),
    required: spec.required,
    ...(spec.min === undefined ? {} : { min_value: spec.min }),
    ...(spec.max === undefined ? {} : { max_value: spec.max }),
    ...(spec.maxLength === undefined ? {} : { max_length: spec.maxLength }),
    // Discord shows at most 25 choices.
    ...(spec.choices && spec.choices.length <= 25
      ? { choices: spec.choices.map((c) => ({ name: c, value: c })) }
      : {}),
  };
}

function leafOptions(command: LeafCommand) {
  return optionSpecs(command.options).map(optionData);
}

function commandData(command: CommandDefinition): RESTPostAPIApplicationCommandsJSONBody {
  return {
    type: ApplicationCommandType.ChatInput,
    name: command.name,
    description: command.description,
    options: isGroup(command)
      ? command.subcommands.map((sub) => ({
          type: ApplicationCommandOptionType.Subcommand,
          name: sub.name,
          description: sub.description,
          options: leafOptions(sub),
        }))
      : leafOptions(command),
  } as RESTPostAPIApplicationCommandsJSONBody;
}

/** Every command easel registers, the "Imagine this" message menu included. */
export function discordCommandData(): RESTPostAPIApplicationCommandsJSONBody[] {
  return [...COMMANDS.map(commandData), { type: ApplicationCommandType.Message, name: IMAGINE_THIS }];
}
