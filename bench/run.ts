import { benchDiscordAck } from "./discord-ack.ts";
import { benchEngine } from "./engine.ts";
import { report } from "./measure.ts";
import { benchModeration } from "./moderation.ts";
import { benchPipeline } from "./pipeline.ts";
import { benchRandn } from "./randn.ts";
import { benchScheduler } from "./scheduler.ts";
import { benchSlackAck } from "./slack-ack.ts";
import { benchTokenizer } from "./tokenizer.ts";

/** `npm run bench`: every benchmark, one `key: value` line per figure, all measured in this run. */
benchTokenizer();
benchRandn();
benchScheduler();
benchModeration();
await benchPipeline();
await benchEngine();
await benchDiscordAck();
for (const [key, value] of Object.entries(await benchSlackAck())) report(key, value);
