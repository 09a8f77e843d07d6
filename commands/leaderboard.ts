import { formatDuration } from "../src/core/messages.ts";
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
        const ratings = services.votes.ratings();
        if (ratings.length === 0)
          return { kind: "text", text: "No arena matches yet: try `/compare`.", ephemeral: false };
        const lines = ["**Models by arena rating**"];
        ratings.forEach((r, i) => {
          const played = r.wins + r.losses + r.draws;
          const rate = played === 0 ? "–" : `${Math.round(((r.wins + r.draws / 2) / played) * 100)} %`;
          const ms = services.votes.msPerImage(r.model);
          const speed = ms === undefined ? "" : ` · ${formatDuration(ms)} per image`;
          lines.push(
            `${i + 1}. ${r.model} · Elo ${Math.round(r.rating)} · ${r.votes} vote${r.votes === 1 ? "" : "s"} · won ${rate} of ${played}${speed}`,
          );
        });
        return { kind: "text", text: lines.join("\n"), ephemeral: false };
      },
    }),
  ],
};
