import { pathToFileURL } from "node:url";
import { CrashRig, describeOutcomes, type Life, type Platform, type SentRequest } from "../test/crash-rig.ts";
import type { RecordedRequest } from "../test/fakes/fake-discord/index.ts";

/**
 * `npm run soak`: N rounds of kill -9 against easel as `npm start` runs it (test/crash-rig.ts: a child process
 * on one data folder, a fake Discord, a fake Slack and a fake OpenAI in this process, all on 127.0.0.1), at
 * random moments. Each round boots easel, sends one to four `/imagine` on random platforms (some refused by
 * the provider), and SIGKILLs it either a random time after the sends or at a randomly chosen window: a render
 * running, a result held before or after Discord applies it, an upload / status message / failure notice /
 * acknowledgement made but not answered, a lookup after a lost answer; now and then answers are also lost
 * (HTTP 500 after the effect). A last life drains everything, and what members see is counted on the fakes
 * without deduplicating (see CrashRig.tally).
 *
 * Usage: npm run soak [-- --rounds N] [--seed S]   (or SOAK_ROUNDS=N; default 200). Prints `crash_rounds`,
 * `lost`, `doubled` (and more) and the time taken; exits 1 when anything was lost or doubled or SQLite's
 * integrity check failed. It stops by itself: every wait has a deadline, and a watchdog ends the run.
 */

export interface SoakOptions {
  rounds: number;
  seed?: number;
  platforms?: readonly Platform[];
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

export interface SoakResult {
  rounds: number;
  lost: number;
  doubled: number;
  stale: number;
  requests: number;
  acknowledged: number;
  refused: number;
  jobs: number;
  /** Jobs not ended (or whose failure was not marked shown) after the drain. */
  unfinished: number;
  /** Acknowledged requests the last life never showed an outcome for. */
  undrained: number;
  integrity: string;
  seconds: number;
  /** How many rounds were killed at each kind of moment (`time` included), and how many aims missed. */
  aims: Record<string, number>;
  /** One line per lost / doubled / stale request. */
  details: string[];
}

/** Where a round may kill easel (besides `time`: a random moment after its requests). */
const AIMS = [
  "time",
  "time",
  "time",
  "running",
  "discord-result-before",
  "discord-result-after",
  "slack-upload-after",
  "slack-status-after",
  "slack-notice-after",
  "discord-ack-after",
  "lookup-after-lost-upload",
] as const;
type Aim = (typeof AIMS)[number];

const discordResult = (r: RecordedRequest) =>
  r.method === "PATCH" && r.path.startsWith("/webhooks/") && r.files.length > 0;

/** A small seeded PRNG (mulberry32): a run is reproducible from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Resolves with `promise`'s value, or undefined after `ms`. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<undefined>((done) => {
        timer = setTimeout(() => done(undefined), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export async function soak(options: SoakOptions): Promise<SoakResult> {
  const started = performance.now();
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
  const random = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const log = options.log ?? (() => {});
  const platforms = options.platforms ?? ["discord", "slack"];
  log(`soak: ${options.rounds} rounds, seed ${seed}`);
  const rig = await CrashRig.start({ platforms });
  const aims: Record<string, number> = {};
  const count = (key: string) => {
    aims[key] = (aims[key] ?? 0) + 1;
  };
  try {
    for (let round = 1; round <= options.rounds; round++) {
      let aim: Aim = pick(AIMS);
      if (aim.startsWith("discord") && !rig.discord) aim = "time";
      if ((aim.startsWith("slack") || aim.startsWith("lookup")) && !rig.slack) aim = "time";
      // Now and then an answer is lost as well (HTTP 500 after the effect).
      if (random() < 0.25) {
        const lose = pick(["discord-result", "slack-status", "slack-upload"] as const);
        if (lose === "discord-result") rig.discord?.loseAnswerNext(discordResult);
        else
          rig.slack?.loseAnswerNext(
            lose === "slack-status" ? "chat.postMessage" : "files.completeUploadExternal",
          );
        count(`lost answer: ${lose}`);
      }
      const sent: SentRequest[] = [];
      const mine = (text: unknown) => sent.some((r) => String(text).includes(r.tag));
      let moment: Promise<unknown> | undefined;
      switch (aim) {
        case "running":
          moment = rig.hangNextRender();
          break;
        case "discord-result-before":
          moment = rig.discord?.holdNext(discordResult, { when: "before" });
          break;
        case "discord-result-after":
          moment = rig.discord?.holdNext(discordResult);
          break;
        case "slack-upload-after":
          moment = rig.slack?.holdNext("files.completeUploadExternal");
          break;
        case "slack-status-after":
          moment = rig.slack?.holdNext("chat.postMessage", { where: (c) => mine(c.params.text) });
          break;
        case "slack-notice-after":
          moment = rig.slack?.holdNext("response_url", {
            where: (c) => !/^Queued/.test(String(c.params.text)),
          });
          break;
        case "discord-ack-after":
          moment = rig.discord?.holdNext(
            (r) =>
              r.method === "POST" &&
              r.path.endsWith("/callback") &&
              sent.some((s) => r.path.includes(`/${s.eventId}/`)),
          );
          break;
        case "lookup-after-lost-upload":
          rig.slack?.loseAnswerNext("files.completeUploadExternal");
          moment = rig.slack?.holdNext("conversations.replies", { when: "before" });
          break;
        default:
          break;
      }
      let life: Life;
      try {
        life = await rig.boot();
      } catch (err) {
        log(`soak: round ${round}: easel did not start: ${String(err)}`);
        throw err;
      }
      // The first request is one the aimed window needs (a Slack failure for its notice, and so on).
      const needs: Platform | undefined = aim.startsWith("discord")
        ? "discord"
        : aim.startsWith("slack") || aim.startsWith("lookup")
          ? "slack"
          : undefined;
      if (needs) sent.push(rig.send(needs, aim === "slack-notice-after" ? "refused-policy" : "a lighthouse"));
      for (let n = 1 + Math.floor(random() * 4) - sent.length; n > 0; n--) {
        const platform = pick(platforms);
        sent.push(rig.send(platform, random() < 0.15 ? "refused-policy" : "a lighthouse"));
      }
      if (aim === "time") {
        await sleep(Math.floor(random() * 1500));
        count("time");
      } else {
        const reached = await within(moment ?? Promise.resolve(undefined), 6_000);
        count(reached === undefined ? `${aim} (missed: killed at 6 s)` : aim);
      }
      await life.kill();
      rig.cancelHang();
      rig.discord?.clearHolds();
      rig.slack?.clearHolds();
      if (round % 10 === 0 || round === options.rounds) {
        log(
          `soak: round ${round}/${options.rounds}, ${rig.requests.length} requests, ${Math.round((performance.now() - started) / 1000)} s`,
        );
      }
    }
    // The last life: no faults; it drains everything, then stops gracefully.
    const last = await rig.boot();
    const undrained = await rig.drained(120_000);
    await last.stop();
    const tally = rig.tally();
    return {
      rounds: options.rounds,
      lost: tally.lost.length,
      doubled: tally.doubled.length,
      stale: tally.stale.length,
      requests: rig.requests.length,
      acknowledged: tally.outcomes.filter((o) => o.acked).length,
      refused: tally.outcomes.filter((o) => o.refused).length,
      jobs: tally.jobs,
      unfinished: tally.unfinished.length,
      undrained: undrained.length,
      integrity: tally.integrity.join("; "),
      seconds: (performance.now() - started) / 1000,
      aims,
      details: [
        ...describeOutcomes(tally.lost)
          .split("\n")
          .filter(Boolean)
          .map((l) => `lost: ${l}`),
        ...describeOutcomes(tally.doubled)
          .split("\n")
          .filter(Boolean)
          .map((l) => `doubled: ${l}`),
        ...describeOutcomes(tally.stale)
          .split("\n")
          .filter(Boolean)
          .map((l) => `stale: ${l}`),
      ],
    };
  } finally {
    await rig.close();
  }
}

/** `--rounds N`, `--seed S`, SOAK_ROUNDS. */
function parseArgs(argv: readonly string[]): { rounds: number; seed?: number } {
  let rounds = Number(process.env.SOAK_ROUNDS ?? 200);
  let seed: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = (argv[i] ?? "").split("=");
    const value = inline ?? argv[i + 1];
    if (flag === "--rounds" || flag === "--seed") {
      if (inline === undefined) i++;
      const n = Number(value);
      if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} takes a whole number, got ${value}`);
      if (flag === "--rounds") rounds = n;
      else seed = n;
    } else {
      throw new Error(`unknown argument ${argv[i]} (usage: npm run soak -- --rounds N [--seed S])`);
    }
  }
  if (!Number.isInteger(rounds) || rounds < 1)
    throw new Error(`rounds must be a whole number ≥ 1, got ${rounds}`);
  return { rounds, ...(seed === undefined ? {} : { seed }) };
}

async function main(): Promise<number> {
  const { rounds, seed } = parseArgs(process.argv.slice(2));
  // A watchdog: a round takes a few seconds; far past that, something hangs, and the run ends anyway.
  const watchdog = setTimeout(
    () => {
      console.error("soak: watchdog: the run took far too long; stopping");
      process.exit(2);
    },
    (rounds * 30 + 300) * 1000,
  );
  watchdog.unref();
  const result = await soak({
    rounds,
    ...(seed === undefined ? {} : { seed }),
    log: (line) => console.error(line),
  });
  for (const line of result.details) console.error(line);
  console.log(`crash_rounds: ${result.rounds}`);
  console.log(`lost: ${result.lost}`);
  console.log(`doubled: ${result.doubled}`);
  console.log(`stale: ${result.stale}`);
  console.log(`requests: ${result.requests}`);
  console.log(`acknowledged: ${result.acknowledged}`);
  console.log(`refused: ${result.refused}`);
  console.log(`jobs: ${result.jobs}`);
  console.log(`unfinished: ${result.unfinished}`);
  console.log(`undrained: ${result.undrained}`);
  console.log(`integrity: ${result.integrity}`);
  console.log(
    `aims: ${Object.entries(result.aims)
      .map(([k, v]) => `${k}=${v}`)
      .join(", ")}`,
  );
  console.log(`seconds: ${result.seconds.toFixed(1)}`);
  return result.lost === 0 && result.doubled === 0 && result.integrity === "ok" ? 0 : 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(`soak: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      process.exit(2);
    },
  );
}
