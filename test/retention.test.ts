import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  describeReport,
  HOUSEKEEPING_INTERVAL_MS,
  Housekeeper,
  type HousekeepingPort,
  type PruneCounts,
  type PruneOptions,
  retentionCutoff,
  TEMP_FILE_MIN_AGE_MS,
} from "../src/core/retention.ts";

/** The housekeeping policy against a recording port; the store's side is in test/store.test.ts. */

const T0 = 1_700_000_000_000;
const DAY = 86_400_000;

const ZERO: PruneCounts = {
  jobs: 0,
  images: 0,
  uploads: 0,
  files: 0,
  previews: 0,
  deliveries: 0,
  ballots: 0,
  votes: 0,
  arenaMatches: 0,
};

function recordingPort(overrides: Partial<HousekeepingPort> = {}) {
  const calls: string[] = [];
  const cutoffs: number[] = [];
  const signals: (AbortSignal | undefined)[] = [];
  const port: HousekeepingPort = {
    async sweepTempFiles(olderThanMs, now) {
      calls.push(`temp ${olderThanMs} ${now - T0}`);
      return 1;
    },
    clearExpiredReplyTokens(now) {
      calls.push(`tokens ${now - T0}`);
      return 2;
    },
    async pruneOlderThan(cutoff: number, options?: PruneOptions) {
      calls.push("prune");
      cutoffs.push(cutoff);
      signals.push(options?.signal);
      return { ...ZERO, jobs: 3, images: 4, files: 2, previews: 2 };
    },
    ...overrides,
  };
  return { port, calls, cutoffs, signals };
}

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe("retentionCutoff", () => {
  it("is now minus the days, undefined when unset, and refuses less than a day", () => {
    expect(retentionCutoff(T0, 30)).toBe(T0 - 30 * DAY);
    expect(retentionCutoff(T0, undefined)).toBeUndefined();
    expect(() => retentionCutoff(T0, 0)).toThrow(/whole number of days >= 1/);
    expect(() => retentionCutoff(T0, 1.5)).toThrow(RangeError);
  });
});

describe("Housekeeper", () => {
  it("without a retention period sweeps temp files and tokens but never prunes", async () => {
    const { port, calls } = recordingPort();
    const lines: string[] = [];
    const keeper = new Housekeeper(port, { log: (line) => lines.push(line) });
    keeper.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(calls).toEqual([`temp ${TEMP_FILE_MIN_AGE_MS} 0`, "tokens 0"]);
    expect(lines).toEqual(["easel: housekeeping removed 1 temp file, 2 expired reply tokens"]);
    await keeper.stop();
  });

  it("passes at start and then every hour, pruning up to now minus the retention period", async () => {
    const { port, calls, cutoffs } = recordingPort();
    const lines: string[] = [];
    const keeper = new Housekeeper(port, { retentionDays: 30, log: (line) => lines.push(line) });
    keeper.start();
    keeper.start(); // a second start is no second schedule
    await vi.advanceTimersByTimeAsync(0);
    expect(calls.filter((c) => c === "prune")).toHaveLength(1);
    expect(cutoffs).toEqual([T0 - 30 * DAY]);
    await vi.advanceTimersByTimeAsync(HOUSEKEEPING_INTERVAL_MS - 1);
    expect(cutoffs).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(cutoffs).toEqual([T0 - 30 * DAY, T0 + HOUSEKEEPING_INTERVAL_MS - 30 * DAY]);
    expect(lines[0]).toBe(
      "easel: housekeeping removed 1 temp file, 2 expired reply tokens, 3 old jobs (4 image rows, 2 files, 2 preview files)",
    );
    await keeper.stop();
    await vi.advanceTimersByTimeAsync(10 * HOUSEKEEPING_INTERVAL_MS);
    expect(cutoffs).toHaveLength(2);
  });

  it("logs a failed pass and runs the next one as planned", async () => {
    let fail = true;
    const { port, calls } = recordingPort({
      clearExpiredReplyTokens: () => {
        if (fail) throw new Error("store_busy");
        return 0;
      },
    });
    const lines: string[] = [];
    const keeper = new Housekeeper(port, { retentionDays: 7, log: (line) => lines.push(line) });
    keeper.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(lines).toEqual(["easel: housekeeping failed (next try in an hour): store_busy"]);
    fail = false;
    await vi.advanceTimersByTimeAsync(HOUSEKEEPING_INTERVAL_MS);
    expect(calls.filter((c) => c === "prune")).toHaveLength(1);
    await keeper.stop();
  });

  it("stop() aborts a prune in progress and waits for it", async () => {
    let finish: (() => void) | undefined;
    const { port, signals } = recordingPort({
      pruneOlderThan: (_cutoff, options) => {
        signals.push(options?.signal);
        return new Promise<PruneCounts>((resolve) => {
          finish = () => resolve(ZERO);
        });
      },
    });
    const keeper = new Housekeeper(port, { retentionDays: 1 });
    keeper.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(signals[0]?.aborted).toBe(false);
    let stopped = false;
    const stopping = keeper.stop().then(() => {
      stopped = true;
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(signals[0]?.aborted).toBe(true);
    expect(stopped).toBe(false); // still waiting for the pass
    finish?.();
    await stopping;
    expect(stopped).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("refuses a retention period under a day when built, not an hour later", () => {
    expect(() => new Housekeeper(recordingPort().port, { retentionDays: 0 })).toThrow(RangeError);
  });
});

describe("describeReport", () => {
  it("is empty when nothing was removed", () => {
    expect(describeReport({ tempFiles: 0, replyTokens: 0, pruned: ZERO })).toBe("");
    expect(describeReport({ tempFiles: 0, replyTokens: 0 })).toBe("");
  });
});
