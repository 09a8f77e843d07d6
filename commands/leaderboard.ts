import { COMMAND_TEXT } from "../src/core/messages.ts";
import { defineCommand, type GroupCommand } from "./types.ts";

/** `/leaderboard models`: the arena's Elo ratings, with votes, win rate and recent time per image. */
export const leaderboardCommand: GroupCommand = {
  name: "leaderboard",
  description: "Arena standings",
  subcommands: [
    defineCommand({
      name: "models",
      description: "Models by arena rating: votes, win rate, time per image",
      options: {},
      handle(_args, { services }) {
        const say = COMMAND_TEXT.leaderboard;
        const ratings = services.votes.ratings();
        if (ratings.length === 0) return { kind: "text", text: say.empty, ephemeral: false };
        const lines: string[] = [say.heading];
        ratings.forEach((r, i) => {
          const played = r.wins + r.losses + r.draws;
          lines.push(
            say.model({
              rank: i + 1,
              model: r.model,
              rating: Math.round(r.rating),
              votes: r.votes,
              winPercent: played === 0 ? undefined : Math.round(((r.wins + r.draws / 2) / played) * 100),
              played,
              msPerImage: services.votes.msPerImage(r.model),
            }),
          );
        });
        return { kind: "text", text: lines.join("\n"), ephemeral: false };
      },
    }),
  ],
};
