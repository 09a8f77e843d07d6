import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { MemorySpendLedger } from "../src/backends/openai/spend.ts";
import type { GenerationRequest } from "../src/core/request.ts";
import { checkGuildSettings, DEFAULT_GUILD_SETTINGS, type GuildSettings } from "../src/core/settings.ts";
import { type SpendEntry, type SpendLedger, utcDay } from "../src/core/spend.ts";
import { openDatabase, schemaVersion } from "../src/store/database.ts";
import { MIGRATIONS, Store } from "../src/store/index.ts";

/** The spend ledger (memory and SQLite behave the same), its migration, and the cost kept on a job. */

const dirs: string[] = [];
const stores: Store[] = [];
afterEach(() => {
  for (const store of stores.splice(0)) store.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "easel-spend-"));
  dirs.push(dir);
  return dir;
}

function open(dir: string, migrations = MIGRATIONS): Store {
  const store = Store.open(dir, { migrations, clock: () => 1_700_000_000_000 });
  stores.push(store);
  return store;
}

function entry(extra: Partial<SpendEntry> = {}): SpendEntry {
  return {
    day: "2026-08-21",
    at: Date.parse("2026-08-21T12:00:00Z"),
    platform: "discord",
    workspaceId: "g1",
    userId: "u1",
    model: "gpt-image-1",
    images: 1,
    costUsd: 0.042,
    ...extra,
  };
}

/** A mixed day's usage: two guilds, three members, one unpriced model, another day, another platform. */
const USAGE: readonly SpendEntry[] = [
  entry({ images: 2, costUsd: 0.084 }),
  entry({ workspaceId: "g2", images: 1, costUsd: 0.042 }),
  entry({ userId: "u2", images: 3, costUsd: 0.501 }),
  entry({ userId: "u3", images: 4, model: "flux-schnell", costUsd: undefined }),
  entry({ day: "2026-08-20", images: 5, costUsd: 0.2 }),
  entry({ day: "2026-08-22", userId: "u2", images: 1, costUsd: 0.011 }),
  entry({ platform: "slack", workspaceId: "T1", images: 7, costUsd: 1 }),
];

const ledgers: [string, () => SpendLedger][] = [
  ["memory", () => new MemorySpendLedger()],
  ["SQLite", () => open(tempDir()).spend],
];

describe.each(ledgers)("spend ledger (%s)", (_name, make) => {
  function filled(): SpendLedger {
    const ledger = make();
    for (const e of USAGE) ledger.record(e);
    return ledger;
  }

  it("counts a member's images across guilds, a guild's images, and the member's in that guild, for one day", () => {
    const ledger = filled();
    const who = { platform: "discord" as const, userId: "u1", workspaceId: "g1" };
    expect(ledger.imagesOn("2026-08-21", who)).toEqual({ user: 3, workspace: 9, userInWorkspace: 2 });
    expect(ledger.imagesOn("2026-08-20", who)).toEqual({ user: 5, workspace: 5, userInWorkspace: 5 });
    expect(ledger.imagesOn("2026-08-23", who)).toEqual({ user: 0, workspace: 0, userInWorkspace: 0 });
    expect(ledger.imagesOn("2026-08-21", { ...who, platform: "slack", workspaceId: "T1" })).toEqual({
      user: 7,
      workspace: 7,
      userInWorkspace: 7,
    });
    expect(ledger.imagesOn("2026-08-21", { ...who, backend: "ldm" })).toEqual({
      user: 0,
      workspace: 0,
      userInWorkspace: 0,
    });
  });

  it("adds up totals by member, by guild and by day range, keeping unpriced images apart", () => {
    const ledger = filled();
    expect(ledger.totals({})).toEqual({ images: 23, costUsd: 1.838, unpricedImages: 4 });
    expect(ledger.totals({ platform: "discord", userId: "u1" })).toEqual({
      images: 8,
      costUsd: 0.326,
      unpricedImages: 0,
    });
    expect(
      ledger.totals({ platform: "discord", workspaceId: "g1", fromDay: "2026-08-21", toDay: "2026-08-21" }),
    ).toEqual({ images: 9, costUsd: 0.585, unpricedImages: 4 });
    expect(ledger.totals({ fromDay: "2026-08-22" })).toEqual({
      images: 1,
      costUsd: 0.011,
      unpricedImages: 0,
    });
    expect(ledger.totals({ toDay: "2026-08-20" })).toEqual({ images: 5, costUsd: 0.2, unpricedImages: 0 });
    expect(ledger.totals({ backend: "openai", userId: "nobody" })).toEqual({
      images: 0,
      costUsd: 0,
      unpricedImages: 0,
    });
  });

  it("lists top spenders by cost, then images, each with their totals under the query", () => {
    const ledger = filled();
    expect(ledger.topSpenders({ platform: "discord" }, 10)).toEqual([
      { platform: "discord", userId: "u2", images: 4, costUsd: 0.512, unpricedImages: 0 },
      { platform: "discord", userId: "u1", images: 8, costUsd: 0.326, unpricedImages: 0 },
      { platform: "discord", userId: "u3", images: 4, costUsd: 0, unpricedImages: 4 },
    ]);
    expect(ledger.topSpenders({}, 2).map((s) => `${s.platform}:${s.userId}`)).toEqual([
      "slack:u1",
      "discord:u2",
    ]);
    expect(ledger.topSpenders({ workspaceId: "g1", fromDay: "2026-08-21", toDay: "2026-08-21" }, 5)).toEqual([
      { platform: "discord", userId: "u2", images: 3, costUsd: 0.501, unpricedImages: 0 },
      { platform: "discord", userId: "u1", images: 2, costUsd: 0.084, unpricedImages: 0 },
      { platform: "discord", userId: "u3", images: 4, costUsd: 0, unpricedImages: 4 },
    ]);
    expect(ledger.topSpenders({}, 0)).toEqual([]);
  });
});

describe("SQLite spend ledger", () => {
  it("keeps every total after the store is closed and opened again", () => {
    const dir = tempDir();
    const first = open(dir);
    for (const e of USAGE) first.spend.record(e);
    const who = { platform: "discord" as const, userId: "u1", workspaceId: "g1" };
    const before = {
      totals: first.spend.totals({}),
      guild: first.spend.totals({ workspaceId: "g1" }),
      today: first.spend.imagesOn("2026-08-21", who),
      top: first.spend.topSpenders({}, 10),
    };
    first.close();
    const second = open(dir);
    expect({
      totals: second.spend.totals({}),
      guild: second.spend.totals({ workspaceId: "g1" }),
      today: second.spend.imagesOn("2026-08-21", who),
      top: second.spend.topSpenders({}, 10),
    }).toEqual(before);
    expect(before.totals.images).toBe(23);
  });

  it("answers the caps' daily questions from its (day, platform, user) and (day, platform, workspace) indexes", () => {
    const store = open(tempDir());
    const plan = (where: string) =>
      (
        store.db
          .prepare(
            `EXPLAIN QUERY PLAN SELECT total(images) FROM spend WHERE day = ? AND platform = ? AND ${where}`,
          )
          .all("2026-08-21", "discord", "x") as { detail: string }[]
      )
        .map((row) => row.detail)
        .join("\n");
    expect(plan("user_id = ?")).toMatch(
      /USING INDEX spend_day_user \(day=\? AND platform=\? AND user_id=\?\)/,
    );
    expect(plan("workspace_id = ?")).toMatch(
      /USING INDEX spend_day_workspace \(day=\? AND platform=\? AND workspace_id=\?\)/,
    );
  });

  it("refuses an entry with a malformed day, or a negative count or cost", () => {
    const { spend } = open(tempDir());
    expect(() => spend.record(entry({ day: "21/08/2026" }))).toThrow(/2026-08-21/);
    expect(() => spend.record(entry({ images: -1 }))).toThrow(/images must be a whole number/);
    expect(() => spend.record(entry({ costUsd: -0.5 }))).toThrow(/cost must be a number >= 0/);
    expect(spend.totals({})).toEqual({ images: 0, costUsd: 0, unpricedImages: 0 });
  });

  it("uses UTC days, so a cap resets at 00:00 UTC whatever the server's time zone", () => {
    expect(utcDay(Date.parse("2026-08-21T23:59:59.999Z"))).toBe("2026-08-21");
    expect(utcDay(Date.parse("2026-08-22T00:00:00Z"))).toBe("2026-08-22");
  });
});

function request(): GenerationRequest {
  return {
    prompt: "a lighthouse in a storm",
    negativePrompt: "",
    seed: 42,
    steps: 20,
    guidance: 7,
    sampler: "euler_a",
    width: 1024,
    height: 1024,
    count: 1,
    backend: "openai",
    model: "gpt-image-1",
    requester: { platform: "discord", workspaceId: "g1", channelId: "c1", userId: "u1" },
  };
}

describe("migration 2 (spend ledger, job cost)", () => {
  it("brings a version-1 file up to date, keeping its jobs and adding the spend table and jobs.cost_usd", () => {
    const dir = tempDir();
    // Raw SQL: today's Store prepares statements for the new columns, so it cannot run on a version-1 file.
    const v1 = openDatabase(dir, { migrations: MIGRATIONS.slice(0, 1) });
    expect(schemaVersion(v1)).toBe(1);
    v1.prepare(
      `INSERT INTO jobs (id, event_id, request, platform, workspace_id, channel_id, user_id, backend, model,
         created_at, updated_at) VALUES ('job1v1', 'evt-1', ?, 'discord', 'g1', 'c1', 'u1', 'openai', 'gpt-image-1', 1, 1)`,
    ).run(JSON.stringify(request()));
    v1.close();
    const job = { id: "job1v1" };

    const latest = open(dir);
    expect(latest.schemaVersion).toBe(MIGRATIONS.at(-1)?.version);
    const kept = latest.jobs.getJob(job.id);
    expect(kept).toMatchObject({ id: job.id, eventId: "evt-1", state: "queued", request: request() });
    expect(kept?.costUsd).toBeUndefined();
    const columns = latest.db.prepare("SELECT name FROM pragma_table_info('jobs')").pluck().all();
    expect(columns).toContain("cost_usd");
    const indexes = latest.db
      .prepare("SELECT name FROM pragma_index_list('spend') ORDER BY name")
      .pluck()
      .all();
    expect(indexes).toEqual(["spend_day_user", "spend_day_workspace"]);
    latest.spend.record(entry());
    expect(latest.spend.totals({})).toEqual({ images: 1, costUsd: 0.042, unpricedImages: 0 });
    latest.jobs.transition(job.id, "running");
    expect(latest.jobs.transition(job.id, "rendered", { costUsd: 0.042 }).costUsd).toBe(0.042);
    expect(latest.integrityCheck()).toEqual(["ok"]);
  });
});

describe("job cost", () => {
  it("stores the cost given with a transition, keeps it through later ones, and refuses a negative cost", () => {
    const store = open(tempDir());
    const { job } = store.jobs.createJob({ eventId: "evt-cost", request: request() });
    store.jobs.transition(job.id, "running");
    expect(() => store.jobs.transition(job.id, "rendered", { costUsd: -1 })).toThrow(/costUsd must be/);
    expect(store.jobs.getJob(job.id)?.state).toBe("running");
    store.jobs.transition(job.id, "rendered", { costUsd: 0.167 });
    expect(store.jobs.transition(job.id, "delivered").costUsd).toBe(0.167);
    expect(store.jobs.getJob(job.id)?.costUsd).toBe(0.167);
  });
});

describe("guild cap overrides in the settings store", () => {
  it("saves and reads back a guild's OpenAI cap overrides, validated against the operator's caps", () => {
    const store = open(tempDir());
    const operator = { perUser: 10, perGuild: 50 };
    const parse = (value: unknown): GuildSettings => {
      const checked = checkGuildSettings(value as GuildSettings, undefined, operator);
      if (!checked.ok) throw new Error(checked.reason);
      return checked.value;
    };
    const scope = { platform: "discord", workspaceId: "g1" };
    const settings: GuildSettings = {
      ...DEFAULT_GUILD_SETTINGS,
      openaiDailyImagesPerUser: 0,
      openaiDailyImagesPerGuild: 20,
    };
    store.settings.setSettings(scope, settings, { parse });
    expect(store.settings.getSettings(scope, parse)?.settings).toEqual(settings);
    expect(() =>
      store.settings.setSettings(scope, { ...settings, openaiDailyImagesPerGuild: 60 }, { parse }),
    ).toThrow(/openaiDailyImagesPerGuild can only lower the operator's daily limit of 50/);
    expect(store.settings.getSettings(scope, parse)?.settings.openaiDailyImagesPerGuild).toBe(20);
  });
});
