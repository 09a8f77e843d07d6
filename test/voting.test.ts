import { describe, expect, it } from "vitest";
import { eloUpdate, parseVoteDuration, winnerOf } from "../src/core/voting.ts";

/** The rules of votes, contests and the arena that need no platform. */

describe("winnerOf", () => {
  it("gives the choice with the most votes", () => {
    expect(winnerOf({ counts: [1, 3, 2], lastVoteAt: [5, 9, 7], total: 6 })).toBe(2);
  });

  it("breaks a tie for the choice that reached its final count first", () => {
    expect(winnerOf({ counts: [2, 2, 0], lastVoteAt: [900, 400, undefined], total: 4 })).toBe(2);
    expect(winnerOf({ counts: [2, 2], lastVoteAt: [100, 400], total: 4 })).toBe(1);
  });

  it("has no winner without votes", () => {
    expect(winnerOf({ counts: [0, 0], lastVoteAt: [undefined, undefined], total: 0 })).toBeUndefined();
  });
});

describe("eloUpdate", () => {
  it("moves equal ratings by K/2 for a win and not at all for a draw", () => {
    expect(eloUpdate(1000, 1000, 1, 32)).toEqual([1016, 984]);
    expect(eloUpdate(1000, 1000, 0.5, 32)).toEqual([1000, 1000]);
  });

  it("rewards an upset more than an expected win, and keeps the sum", () => {
    const [upsetA] = eloUpdate(1000, 1400, 1, 32);
    const [expectedA] = eloUpdate(1400, 1000, 1, 32);
    expect(upsetA - 1000).toBeCloseTo(32 * (1 - 1 / (1 + 10)), 6);
    expect(expectedA - 1400).toBeCloseTo(32 * (1 - 10 / 11), 6);
    const [a, b] = eloUpdate(1234, 987, 0, 24);
    expect(a + b).toBeCloseTo(1234 + 987, 9);
  });
});

describe("parseVoteDuration", () => {
  it("reads seconds, minutes, hours and days, bare numbers as minutes", () => {
    expect(parseVoteDuration("10m")).toEqual({ ok: true, ms: 600_000 });
    expect(parseVoteDuration("90s")).toEqual({ ok: true, ms: 90_000 });
    expect(parseVoteDuration("2h")).toEqual({ ok: true, ms: 7_200_000 });
    expect(parseVoteDuration("1d")).toEqual({ ok: true, ms: 86_400_000 });
    expect(parseVoteDuration("15")).toEqual({ ok: true, ms: 900_000 });
  });

  it("refuses what is under a minute, over a week or not a duration, naming the range", () => {
    for (const text of ["30s", "8d", "soon", "-5m", ""]) {
      const parsed = parseVoteDuration(text);
      expect(parsed.ok).toBe(false);
      expect(!parsed.ok && parsed.reason).toMatch(/1m to 7d/);
    }
  });
});
