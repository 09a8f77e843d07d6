import { pathToFileURL } from "node:url";
import { soak } from "../scripts/soak.ts";
import { report } from "./measure.ts";

/**
 * `crash_rounds_lost` and `crash_rounds_doubled`: a short `npm run soak` (scripts/soak.ts), 50 rounds of kill
 * -9 at random moments and windows against easel as `npm start` runs it, on Discord and Slack, then a drain;
 * what members see is counted on the fakes without deduplicating. Both should be 0. The seed is fixed, so a
 * figure that moves is worth a look (`npm run soak -- --rounds 50 --seed 1` replays it).
 */

const ROUNDS = Number(process.env.CRASH_ROUNDS ?? 50);

export async function benchCrashRounds(): Promise<Record<string, number>> {
  const result = await soak({ rounds: ROUNDS, seed: 1 });
  for (const line of result.details) console.error(`crash rounds: ${line}`);
  if (result.integrity !== "ok") throw new Error(`crash rounds: SQLite integrity check: ${result.integrity}`);
  return {
    crash_rounds: result.rounds,
    crash_rounds_lost: result.lost,
    crash_rounds_doubled: result.doubled,
    crash_rounds_stale: result.stale,
    crash_rounds_seconds: result.seconds,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  for (const [key, value] of Object.entries(await benchCrashRounds())) report(key, value, 0);
}
