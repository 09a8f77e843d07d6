import type { z } from "zod";
import type { Actor, BotServices } from "./bot-services.ts";
import type { ImagineOutcome, ImagineQueued } from "./imagine.ts";

/**
 * The shape of a platform-neutral command: a name, a description, options as zod schemas (which carry the
 * limits: Discord registers them as option bounds, and the handler parses with them, so the server enforces
 * them whatever a client sent), and a handler that returns what to answer. Platforms translate their events
 * into `args` and lay out the reply; they never decide anything a command decides.
 */

/** Options: name → zod schema (`.describe()` gives the text shown to members; `.optional()` when not required). */
export type OptionSchemas = Record<string, z.ZodType>;

/** What a handler gets besides its arguments. */
export interface CommandContext {
  services: BotServices;
  actor: Actor;
  /** The platform's id of this event (Discord interaction id, Slack trigger id): a redelivery is harmless. */
  eventId: string;
}

/** What to answer. */
export type CommandReply =
  /** A job was queued (its status message follows) or refused (an ephemeral reason). */
  | { kind: "job"; outcome: ImagineOutcome }
  /** A text answer; `ephemeral`: only the member sees it. */
  | { kind: "text"; text: string; ephemeral: boolean }
  /** An arena match: two jobs (A, B), each with its own status message, and a line to introduce them. */
  | { kind: "arena"; sides: [ImagineQueued, ImagineQueued]; text: string };

export type { ImagineQueued } from "./imagine.ts";

/** A command without sub-commands. */
export interface LeafCommand<S extends OptionSchemas = OptionSchemas> {
  name: string;
  description: string;
  options: S;
  /** On Slack the text after the sub-command fills these options in order (the last one takes the rest). */
  positional?: readonly (keyof S & string)[];
  handle(
    args: { [K in keyof S]: z.infer<S[K]> },
    context: CommandContext,
  ): CommandReply | Promise<CommandReply>;
}

/** A command with sub-commands (`/settings show`, `/settings set`). */
export interface GroupCommand {
  name: string;
  description: string;
  subcommands: readonly LeafCommand[];
}

export type CommandDefinition = LeafCommand | GroupCommand;

export const isGroup = (command: CommandDefinition): command is GroupCommand => "subcommands" in command;

/** Declares a leaf command with its option types inferred (keeps handlers typed). */
export function defineCommand<S extends OptionSchemas>(command: LeafCommand<S>): LeafCommand {
  return command as unknown as LeafCommand;
}

/** An option as platforms register it: read from its zod schema. */
export interface OptionSpec {
  name: string;
  description: string;
  type: "string" | "integer" | "number" | "boolean";
  required: boolean;
  min?: number;
  max?: number;
  maxLength?: number;
  choices?: readonly string[];
}

interface Introspectable {
  def: { type: string };
  description?: string;
  unwrap?: () => Introspectable;
  minValue?: number | null;
  maxValue?: number | null;
  isInt?: boolean;
  maxLength?: number | null;
  options?: readonly string[];
}

/** The option specs of a command, in declaration order, required ones first (Discord's rule). */
export function optionSpecs(options: OptionSchemas): OptionSpec[] {
  const specs = Object.entries(options).map(([name, schema]) => {
    let s = schema as unknown as Introspectable;
    const description = s.description ?? name;
    const required = !schema.safeParse(undefined).success;
    while ((s.def.type === "optional" || s.def.type === "default") && s.unwrap) s = s.unwrap();
    const spec: OptionSpec = { name, description, type: "string", required };
    if (s.def.type === "number") {
      spec.type = s.isInt ? "integer" : "number";
      if (s.minValue !== null && s.minValue !== undefined && Number.isFinite(s.minValue))
        spec.min = s.minValue;
      if (s.maxValue !== null && s.maxValue !== undefined && Number.isFinite(s.maxValue))
        spec.max = s.maxValue;
    } else if (s.def.type === "boolean") {
      spec.type = "boolean";
    } else if (s.def.type === "enum" && s.options) {
      spec.choices = s.options;
    } else if (typeof s.maxLength === "number") {
      spec.maxLength = s.maxLength;
    }
    return spec;
  });
  return [...specs.filter((s) => s.required), ...specs.filter((s) => !s.required)];
}

/** Parses raw platform arguments with the command's schemas; the reason names the option and its limit. */
export function parseArgs(
  options: OptionSchemas,
  raw: Record<string, unknown>,
): { ok: true; value: Record<string, unknown> } | { ok: false; reason: string } {
  const value: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(options)) {
    const parsed = schema.safeParse(raw[name] ?? undefined);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return { ok: false, reason: `the ${name} option: ${issue?.message ?? "is not valid"}` };
    }
    if (parsed.data !== undefined) value[name] = parsed.data;
  }
  return { ok: true, value };
}
