import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Engine } from "../src/core/engine.ts";
import { JOB_STATES } from "../src/core/job.ts";
import { integrityCheck, MIGRATIONS, openDatabase, schemaVersion } from "../src/store/database.ts";
import { SqliteEngineStore } from "../src/store/engine-store.ts";
import { Store } from "../src/store/index.ts";
import { FakeBackend } from "./fakes/fake-backend.ts";

/**
 * The delivery states in the store: migration 1 keeps its own frozen list of states, and the step that adds
 * `delivering` and `undeliverable` rebuilds the jobs table of an existing file without losing a row, a column,
 * an index, a reference or its AUTOINCREMENT counter.
 */

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "easel-delivery-states-"));
  dirs.push(dir);
  return dir;
}

const step = MIGRATIONS.find((m) => m.name.startsWith("delivery states"));
const before = MIGRATIONS.filter((m) => m.version < (step?.version ?? 0));
const OLD_STATES = ["queued", "running", "rendered", "delivered", "failed", "cancelled"];
const REQUEST = JSON.stringify({
  prompt: "p",
  backend: "ldm",
  model: "m",
  requester: { platform: "discord", workspaceId: "g", channelId: "c", userId: "u" },
});

describe("job states in the schema", () => {
  it("migration 1 names its own six states, whatever JOB_STATES says now", () => {
    const sql = String(MIGRATIONS[0]?.up);
    expect(sql).toContain(`CHECK (state IN (${OLD_STATES.map((s) => `'${s}'`).join(", ")}))`);
    expect(sql).not.toContain("delivering");
    expect(step?.rebuildsTables).toBe(true);
  });

  it("a new database admits exactly JOB_STATES", () => {
    const store = Store.open(tempDir());
    const { job } = store.jobs.createJob({ eventId: "e", request: JSON.parse(REQUEST) });
    const set = store.db.prepare("UPDATE jobs SET state = ? WHERE id = ?");
    for (const state of JOB_STATES) expect(() => set.run(state, job.id)).not.toThrow();
    expect(() => set.run("posted", job.id)).toThrow(/CHECK constraint/);
    store.close();
  });

  it("migrates an existing file: every row, column, index, reference and the AUTOINCREMENT counter survive", () => {
    const dir = tempDir();
    const old = openDatabase(dir, { migrations: before });
    const insert = old.prepare(
      `INSERT INTO jobs (id, event_id, request, state, attempts, platform, workspace_id, channel_id, user_id,
         backend, model, created_at, updated_at, cost_usd)
       VALUES (?, ?, ?, ?, 1, 'discord', 'g', 'c', 'u', 'ldm', 'm', 1, 2, ?)`,
    );
    for (const [i, state] of OLD_STATES.entries()) {
      insert.run(`job${i}abcd`, `ev${i}`, REQUEST, state, i === 2 ? 0.04 : null);
    }
    // A pruned job: seq 7 was used once, and must never be given out again.
    insert.run("prunedjob1", "ev-pruned", REQUEST, "delivered", null);
    old.prepare("DELETE FROM jobs WHERE id = 'prunedjob1'").run();
    old
      .prepare(
        `INSERT INTO images (sha256, job_id, variant, width, height, bytes, mime, created_at)
         VALUES (?, 'job2abcd', 1, 8, 8, 10, 'image/png', 1)`,
      )
      .run("a".repeat(64));
    old
      .prepare(
        `INSERT INTO deliveries (job_id, platform, kind, channel_id, message_id, created_at, updated_at)
         VALUES ('job2abcd', 'discord', 'status', 'c', 'm1', 1, 1)`,
      )
      .run();
    const indexesBefore = old
      .prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'jobs' AND sql IS NOT NULL",
      )
      .all();
    old.close();

    const store = Store.open(dir);
    expect(schemaVersion(store.db)).toBe(MIGRATIONS.at(-1)?.version);
    expect(integrityCheck(store.db)).toEqual(["ok"]);
    expect(store.db.pragma("foreign_keys", { simple: true })).toBe(1);
    expect(store.db.pragma("foreign_key_check")).toEqual([]);
    const jobs = store.jobs.listJobs();
    expect(jobs.map((j) => [j.id, j.state, j.seq, j.deliveryAttempts])).toEqual(
      OLD_STATES.map((state, i) => [`job${i}abcd`, state, i + 1, 0]),
    );
    expect(store.jobs.getJob("job2abcd")?.costUsd).toBe(0.04);
    expect(store.images.imagesForJob("job2abcd")).toHaveLength(1);
    expect(store.deliveries.deliveriesForJob("job2abcd").map((d) => d.messageId)).toEqual(["m1"]);
    const indexesAfter = store.db
      .prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'jobs' AND sql IS NOT NULL",
      )
      .all();
    expect(indexesAfter).toEqual(expect.arrayContaining(indexesBefore));
    expect(indexesAfter).toHaveLength(indexesBefore.length);
    // The rendered job can now move through the delivery states; a new job takes the next unused seq.
    store.jobs.transition("job2abcd", "delivering", { deliveryAttempts: 1, deliveringSince: 5 });
    expect(store.jobs.transition("job2abcd", "undeliverable").state).toBe("undeliverable");
    const { job } = store.jobs.createJob({ eventId: "new", request: JSON.parse(REQUEST) });
    expect(store.jobs.getJob(job.id)?.seq).toBe(8);
    // References still hold: an image for a job that does not exist is refused.
    expect(() =>
      store.db
        .prepare(
          `INSERT INTO images (sha256, job_id, variant, width, height, bytes, mime, created_at)
           VALUES (?, 'nosuchjob1', 1, 8, 8, 10, 'image/png', 1)`,
        )
        .run("b".repeat(64)),
    ).toThrow(/FOREIGN KEY/);
    store.close();
  });

  it("commits what guards a post durably (synchronous=FULL): the delivery key, its message id, → delivered and → undeliverable (S4)", () => {
    const store = Store.open(tempDir());
    // Which synchronous mode each write commits under: the pragma is switched around durable transactions.
    let full = false;
    const exec = store.db.exec.bind(store.db);
    store.db.exec = (sql: string) => {
      if (/synchronous = FULL/.test(sql)) full = true;
      if (/synchronous = NORMAL/.test(sql)) full = false;
      return exec(sql);
    };
    const seen: [string, boolean][] = [];
    store.db.function("observe", (what: unknown) => {
      seen.push([String(what), full]);
      return null;
    });
    exec(`
      CREATE TEMP TRIGGER seen_job AFTER UPDATE OF state ON jobs BEGIN SELECT observe('job ' || NEW.state); END;
      CREATE TEMP TRIGGER seen_key AFTER INSERT ON deliveries BEGIN SELECT observe('key'); END;
      CREATE TEMP TRIGGER seen_id AFTER UPDATE OF message_id ON deliveries BEGIN SELECT observe('message id'); END;
    `);
    const engine = new Engine({
      store: new SqliteEngineStore(store),
      backends: { ldm: new FakeBackend() },
      encoder: async () => [],
      loadImage: async () => {
        throw new Error("unused");
      },
    });
    const rendered = (eventId: string) => {
      const { job } = store.jobs.createJob({ eventId, request: JSON.parse(REQUEST) });
      store.jobs.transition(job.id, "running");
      store.jobs.transition(job.id, "rendered");
      return job.id;
    };
    const a = rendered("a");
    const b = rendered("b");
    seen.length = 0;
    engine.beginDelivery(a);
    const key = store.deliveries.recordDelivery({
      jobId: a,
      platform: "slack",
      kind: "result",
      channelId: "C1",
    });
    store.deliveries.updateDelivery(key.id, { messageId: "F1" });
    engine.delivered(a);
    engine.beginDelivery(b);
    engine.undeliverable(b, "gone");
    expect(seen).toEqual([
      ["job delivering", false],
      ["key", true],
      ["message id", true],
      ["job delivered", true],
      ["job delivering", false],
      ["job undeliverable", true],
    ]);
    expect(store.db.pragma("synchronous", { simple: true })).toBe(1);
    store.close();
  });
});
