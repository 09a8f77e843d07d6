import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type Announcer, ContestClock } from "../src/core/ballots.ts";
import type { BotServices } from "../src/core/bot-services.ts";
import type { Job } from "../src/core/job.ts";
import type { Ballot } from "../src/core/voting.ts";
import { Store } from "../src/store/index.ts";
import { openAiRequest } from "./support.ts";

/**
 * The contest clock on vitest's fake clock (timers and Date: the clock, the store and this test read the same
 * time): a contest closes at its deadline and not a millisecond before, a failed announcement is retried after
 * 5 s, 30 s and 2 min and then left to the next start, and a start rebuilds the timers from the database.
 * Nothing here waits for real time.
 */

const T0 = Date.UTC(2026, 0, 1, 12);
const MINUTE = 60_000;
const CONTEST_MS = 10 * MINUTE;

const dirs: string[] = [];
const stores: Store[] = [];
const clocks: ContestClock[] = [];

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});
afterEach(async () => {
  for (const clock of clocks.splice(0)) await clock.stop();
  vi.useRealTimers();
  for (const store of stores.splice(0)) store.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Records each announcement (and when it came); fails the next `failures` ones like a platform outage. */
class FakeAnnouncer implements Announcer {
  readonly calls: { ballotId: string; at: number }[] = [];
  failures = 0;

  constructor(private readonly store: Store) {}

  async announce(ballot: Ballot, _model: unknown, _files: unknown, recordAs: string): Promise<void> {
    this.calls.push({ ballotId: ballot.id, at: Date.now() });
    if (this.failures > 0) {
      this.failures -= 1;
      throw new Error("HTTP 503");
    }
    this.store.deliveries.recordDelivery({
      jobId: recordAs,
      platform: "discord",
      kind: "announcement",
      channelId: ballot.channelId,
      messageId: `m${this.calls.length}`,
    });
  }
}

function openStore(dir = mkdtempSync(join(tmpdir(), "easel-contest-"))) {
  if (!dirs.includes(dir)) dirs.push(dir);
  const store = Store.open(dir);
  stores.push(store);
  return { store, dir };
}

/** The clock over `store` with only the services it uses (a contest without images: no upscale, no files). */
function startClock(store: Store, announcer: FakeAnnouncer, logs: string[] = []): ContestClock {
  const services = {
    votes: store.votes,
    jobs: {
      get: (jobId: string) => store.jobs.getJob(jobId),
      images: async () => [],
      imageBytes: async () => new Uint8Array(),
    },
    deliveries: store.deliveries,
    settings: { guild: () => ({}) },
  } as unknown as BotServices;
  const clock = new ContestClock(services, { elo: { k: 32, start: 1000 }, log: (line) => logs.push(line) });
  clock.register("discord", announcer);
  clock.start();
  clocks.push(clock);
  return clock;
}

function contestJob(store: Store, eventId = "e1", contestMs = CONTEST_MS): Job {
  return store.jobs.createJob({ eventId, request: openAiRequest({ count: 4, contestMs }) }).job;
}

describe("the contest clock", () => {
  it("closes a contest at its deadline, not a millisecond before, and announces it once", async () => {
    const { store } = openStore();
    const announcer = new FakeAnnouncer(store);
    const clock = startClock(store, announcer);
    const job = contestJob(store);
    clock.resultPosted(job);
    expect(store.votes.ballot(job.id)).toMatchObject({ kind: "contest", closesAt: T0 + CONTEST_MS });

    await vi.advanceTimersByTimeAsync(CONTEST_MS - 1);
    expect(store.votes.ballot(job.id)?.closedAt).toBeUndefined();
    expect(announcer.calls).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(store.votes.ballot(job.id)).toMatchObject({ closedBy: "deadline", closedAt: T0 + CONTEST_MS });
    expect(announcer.calls).toEqual([{ ballotId: job.id, at: T0 + CONTEST_MS }]);

    // Closing again (a late timer, the other platform's press) announces nothing more.
    await clock.close(job.id);
    await vi.advanceTimersByTimeAsync(60 * MINUTE);
    expect(announcer.calls).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("retries a failed announcement after 5 s, 30 s and 2 min, then leaves it to the next start", async () => {
    const { store, dir } = openStore();
    const announcer = new FakeAnnouncer(store);
    announcer.failures = 10;
    const logs: string[] = [];
    const clock = startClock(store, announcer, logs);
    const job = contestJob(store);
    clock.resultPosted(job);
    await vi.advanceTimersByTimeAsync(CONTEST_MS);
    expect(announcer.calls).toHaveLength(1);
    expect(logs.at(-1)).toMatch(/could not announce .*HTTP 503; trying again in 5 s/);

    const closedAt = T0 + CONTEST_MS;
    for (const [delay, attempts] of [
      [5_000, 2],
      [30_000, 3],
      [120_000, 4],
    ] as const) {
      await vi.advanceTimersByTimeAsync(delay - 1);
      expect(announcer.calls).toHaveLength(attempts - 1);
      await vi.advanceTimersByTimeAsync(1);
      expect(announcer.calls).toHaveLength(attempts);
    }
    expect(announcer.calls.map((c) => c.at - closedAt)).toEqual([0, 5_000, 35_000, 155_000]);
    expect(logs.at(-1)).toMatch(/it is posted at the next start/);
    // Nothing is left to fire: the next try is the next start's.
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(24 * 60 * MINUTE);
    expect(announcer.calls).toHaveLength(4);

    // The next start (the platform back) posts it, once.
    await clock.stop();
    store.close();
    stores.splice(stores.indexOf(store), 1);
    const { store: again } = openStore(dir);
    const next = new FakeAnnouncer(again);
    startClock(again, next);
    await vi.advanceTimersByTimeAsync(0);
    expect(next.calls).toEqual([{ ballotId: job.id, at: closedAt + 155_000 + 24 * 60 * MINUTE }]);
    expect(again.votes.unannounced()).toEqual([]);
  });

  it("rebuilds its timers on start: a deadline still ahead closes on time, one that passed closes at once", async () => {
    const { store } = openStore();
    const first = startClock(store, new FakeAnnouncer(store));
    const ahead = contestJob(store, "ahead");
    const short = contestJob(store, "short", 2 * MINUTE);
    first.resultPosted(ahead);
    first.resultPosted(short);
    // Down for five minutes: the short contest's deadline passes meanwhile, the other's does not.
    await first.stop();
    await vi.advanceTimersByTimeAsync(5 * MINUTE);
    expect(store.votes.ballot(short.id)?.closedAt).toBeUndefined();

    const announcer = new FakeAnnouncer(store);
    startClock(store, announcer);
    await vi.advanceTimersByTimeAsync(0);
    expect(announcer.calls).toEqual([{ ballotId: short.id, at: T0 + 5 * MINUTE }]);
    expect(store.votes.ballot(short.id)).toMatchObject({ closedBy: "deadline", closedAt: T0 + 5 * MINUTE });
    await vi.advanceTimersByTimeAsync(5 * MINUTE - 1);
    expect(announcer.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(announcer.calls.at(-1)).toEqual({ ballotId: ahead.id, at: T0 + CONTEST_MS });
  });
});
