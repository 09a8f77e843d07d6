import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { KeyedThrottle } from "../src/core/throttle.ts";

/** Fake timers throughout: the throttle's default clock is Date.now, which they move too. */
beforeEach(() => {
  vi.useFakeTimers({ now: 1_700_000_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

const fail = (err: unknown) => {
  throw err;
};

describe("KeyedThrottle", () => {
  it("runs at once, then at most once per interval per key, the latest request winning", async () => {
    const runs: string[] = [];
    const throttle = new KeyedThrottle(120, fail);
    const schedule = (key: string, value: string) =>
      throttle.schedule(key, async () => {
        runs.push(`${key}=${value}`);
      });
    schedule("a", "1");
    await vi.advanceTimersByTimeAsync(10);
    expect(runs).toEqual(["a=1"]);
    schedule("a", "2");
    schedule("a", "3");
    schedule("b", "1");
    await vi.advanceTimersByTimeAsync(10);
    expect(runs).toEqual(["a=1", "b=1"]);
    expect(throttle.waiting("a")).toBe(true);
    // a ran at 0: its next run may come at 120, not before.
    await vi.advanceTimersByTimeAsync(99);
    expect(runs).toEqual(["a=1", "b=1"]);
    await vi.advanceTimersByTimeAsync(1);
    expect(runs).toEqual(["a=1", "b=1", "a=3"]);
    throttle.clear();
  });

  it("reports a failed run and keeps working", async () => {
    const errors: unknown[] = [];
    const throttle = new KeyedThrottle(10, (err) => errors.push(err));
    throttle.schedule("k", async () => {
      throw new Error("boom");
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(errors).toHaveLength(1);
    let ran = false;
    throttle.schedule("k", async () => {
      ran = true;
    });
    await vi.advanceTimersByTimeAsync(10);
    expect(ran).toBe(true);
  });

  it("runs a key at once when its interval is over, however long it was remembered", async () => {
    const runs: number[] = [];
    const throttle = new KeyedThrottle(1_000, fail);
    const run = () =>
      throttle.schedule("k", async () => {
        runs.push(Date.now());
      });
    run();
    await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(5_000);
    run();
    await vi.advanceTimersByTimeAsync(0);
    expect(runs).toEqual([1_700_000_000_000, 1_700_000_005_000]);
    // ...and the expired entry was replaced, not kept beside: one key, one entry.
    expect(throttle.size).toEqual({ remembered: 1, waiting: 0 });
  });

  it("stays bounded over many keys: it remembers only the keys run within the last interval", async () => {
    const throttle = new KeyedThrottle(100, fail);
    let largest = 0;
    // 20 000 messages, 10 a millisecond: 1 000 run within any one interval, over 20 intervals.
    for (let i = 0; i < 20_000; i++) {
      throttle.schedule(`message-${i}`, async () => {});
      if (i % 10 === 9) {
        await vi.advanceTimersByTimeAsync(1);
        largest = Math.max(largest, throttle.size.remembered);
      }
    }
    expect(largest).toBeGreaterThanOrEqual(1_000);
    expect(largest).toBeLessThanOrEqual(1_000 + 10);
    expect(throttle.size.waiting).toBe(0);
    // A quiet spell and one more run: everything from before goes.
    await vi.advanceTimersByTimeAsync(1_000);
    throttle.schedule("late", async () => {});
    await vi.advanceTimersByTimeAsync(0);
    expect(throttle.size).toEqual({ remembered: 1, waiting: 0 });
  });

  it("still throttles keys that a sweep found inside their interval", async () => {
    const runs: string[] = [];
    const throttle = new KeyedThrottle(1_000, fail);
    throttle.schedule("kept", async () => {
      runs.push("kept-1");
    });
    await vi.advanceTimersByTimeAsync(0);
    // Other keys run later inside kept's interval: each of their runs drops expired entries, not this one.
    for (let i = 0; i < 1_000; i++) {
      throttle.schedule(`other-${i}`, async () => {});
      if (i % 100 === 99) await vi.advanceTimersByTimeAsync(50);
    }
    expect(Date.now()).toBe(1_700_000_000_500);
    expect(throttle.size.remembered).toBe(1_001);
    throttle.schedule("kept", async () => {
      runs.push("kept-2");
    });
    await vi.advanceTimersByTimeAsync(499);
    expect(runs).toEqual(["kept-1"]);
    await vi.advanceTimersByTimeAsync(1);
    expect(runs).toEqual(["kept-1", "kept-2"]);
  });
});
