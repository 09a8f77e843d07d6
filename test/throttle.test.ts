import { describe, expect, it } from "vitest";
import { KeyedThrottle } from "../src/core/throttle.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("KeyedThrottle", () => {
  it("runs at once, then at most once per interval per key, the latest request winning", async () => {
    const runs: string[] = [];
    const throttle = new KeyedThrottle(120, (err) => {
      throw err;
    });
    const schedule = (key: string, value: string) =>
      throttle.schedule(key, async () => {
        runs.push(`${key}=${value}`);
      });
    schedule("a", "1");
    await sleep(10);
    expect(runs).toEqual(["a=1"]);
    schedule("a", "2");
    schedule("a", "3");
    schedule("b", "1");
    await sleep(10);
    expect(runs).toEqual(["a=1", "b=1"]);
    await sleep(150);
    expect(runs).toEqual(["a=1", "b=1", "a=3"]);
    throttle.clear();
  });

  it("reports a failed run and keeps working", async () => {
    const errors: unknown[] = [];
    const throttle = new KeyedThrottle(10, (err) => errors.push(err));
    throttle.schedule("k", async () => {
      throw new Error("boom");
    });
    await sleep(20);
    expect(errors).toHaveLength(1);
    let ran = false;
    throttle.schedule("k", async () => {
      ran = true;
    });
    await sleep(30);
    expect(ran).toBe(true);
  });
});
