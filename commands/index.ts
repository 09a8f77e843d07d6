import { cancelCommand } from "./cancel.ts";
import { compareCommand } from "./compare.ts";
import { imagineCommand } from "./imagine.ts";
import { infoCommand } from "./info.ts";
import { leaderboardCommand } from "./leaderboard.ts";
import { queueCommand } from "./queue.ts";
import { settingsCommand } from "./settings.ts";
import { topCommand } from "./top.ts";
import type { CommandDefinition } from "./types.ts";

/** Every command, as platforms register them. */
export const COMMANDS: readonly CommandDefinition[] = [
  imagineCommand,
  settingsCommand,
  queueCommand,
  cancelCommand,
  infoCommand,
  topCommand,
  compareCommand,
  leaderboardCommand,
];

/** The message context-menu command that turns a message's text into a prompt. */
export const IMAGINE_THIS = "Imagine this";

export { requestOptions } from "./imagine.ts";
export * from "./types.ts";
