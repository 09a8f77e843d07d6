import { benchBotPipeline } from "./bot-pipeline.ts";
import { benchBurstAck } from "./burst-ack.ts";
import { benchCliStart } from "./cli-start.ts";
import { benchCrashRounds } from "./crash-rounds.ts";
import { benchDiscordAck } from "./discord-ack.ts";
import { benchEngine } from "./engine.ts";
import { report } from "./measure.ts";
import { benchModeration } from "./moderation.ts";
import { benchPipeline } from "./pipeline.ts";
import { benchPromptFlags } from "./prompt-flags.ts";
import { benchRandn } from "./randn.ts";
import { benchSafetyChecker } from "./safety-checker.ts";
import { benchScheduler } from "./scheduler.ts";
import { benchSlackAck } from "./slack-ack.ts";
import { benchSoakRss } from "./soak-rss.ts";
import { benchTokenizer } from "./tokenizer.ts";

/**
 * `npm run bench`: every benchmark, one `key: value` line per figure, all measured in this run.
 * `npm run bench -- burst-ack crash-rounds` runs only the benchmarks named (each is also runnable alone:
 * `npx tsx bench/burst-ack.ts`).
 */
const print = (figures: Record<string, number>, digits?: number) => {
  for (const [key, value] of Object.entries(figures)) report(key, value, digits);
};
const BENCHES: Record<string, () => void | Promise<void>> = {
  tokenizer: benchTokenizer,
  "prompt-flags": benchPromptFlags,
  randn: benchRandn,
  scheduler: benchScheduler,
  moderation: benchModeration,
  pipeline: benchPipeline,
  "bot-pipeline": benchBotPipeline,
  "cli-start": benchCliStart,
  "safety-checker": benchSafetyChecker,
  engine: benchEngine,
  "discord-ack": benchDiscordAck,
  "slack-ack": async () => print(await benchSlackAck()),
  "burst-ack": async () => print(await benchBurstAck()),
  "crash-rounds": async () => print(await benchCrashRounds(), 0),
  "soak-rss": async () => print(await benchSoakRss()),
};

const chosen = process.argv.slice(2);
const unknown = chosen.filter((name) => !(name in BENCHES));
if (unknown.length > 0) {
  console.error(`unknown benchmark ${unknown.join(", ")}; choose from ${Object.keys(BENCHES).join(", ")}`);
  process.exit(2);
}
for (const [name, bench] of Object.entries(BENCHES)) {
  if (chosen.length === 0 || chosen.includes(name)) await bench();
}
