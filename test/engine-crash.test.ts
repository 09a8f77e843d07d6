import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { Store } from "../src/store/index.ts";

const CHILD = resolve("test/fakes/engine-child.ts");
const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
const ROUNDS = 50;
const dir = mkdtempSync(join(tmpdir(), "easel-crash-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the engine child; kills it with SIGKILL `killAfterMs` after it has submitted (undefined: let it drain). */
function runChild(
  events: string[],
  killAfterMs: number | undefined,
): Promise<{ acked: Map<string, string> }> {
  const sink = join(dir, "posts.log");
  return new Promise((done, fail) => {
    const child = spawn(
      process.execPath,
      [
        "--import",
        TSX,
        CHILD,
        join(dir, "data"),
        sink,
        events.join(","),
        killAfterMs === undefined ? "drain" : "run",
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    const acked = new Map<string, string>();
    let buffer = "";
    child.stdout.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      const lines = buffer.split("\n");
      buffer = lines.pop() ?? "";
      for (const line of lines) {
        const [word, eventId, jobId] = line.split(" ");
        if (word === "ack" && eventId && jobId) acked.set(eventId, jobId);
        if (word === "submitted" && killAfterMs !== undefined) {
          setTimeout(() => child.kill("SIGKILL"), killAfterMs);
        }
      }
    });
    const guard = setTimeout(() => {
      child.kill("SIGKILL");
      fail(new Error("child did not finish in 60 s"));
    }, 60_000);
    child.on("exit", () => {
      clearTimeout(guard);
      done({ acked });
    });
  });
}

describe("crash recovery (SIGKILL at random moments)", () => {
  it(`ends every job delivered or visibly failed exactly once over ${ROUNDS} kills`, async () => {
    const acked = new Map<string, string>();
    let next = 0;
    // A fixed pseudo-random sequence: reproducible kill times from a few ms to 150 ms after submitting.
    let seed = 12345;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let round = 0; round < ROUNDS; round++) {
      const events = Array.from({ length: 1 + Math.floor(random() * 4) }, () => `ev${next++}`);
      // The platform redelivers an event now and then: it must not make a second job.
      if (round % 9 === 4 && next > 2) events.push(`ev${next - 2}`);
      const result = await runChild(events, Math.floor(random() * 150));
      for (const [eventId, jobId] of result.acked) {
        const earlier = acked.get(eventId);
        if (earlier !== undefined) expect(jobId).toBe(earlier);
        acked.set(eventId, jobId);
      }
    }
    await runChild([], undefined);

    const store = Store.open(join(dir, "data"));
    try {
      expect(store.integrityCheck()).toEqual(["ok"]);
      const jobs = store.jobs.listJobs({});
      // Every acknowledged request has its job; no event made two.
      expect(new Set(jobs.map((j) => j.eventId)).size).toBe(jobs.length);
      for (const [eventId, jobId] of acked) expect(store.jobs.getJobByEventId(eventId)?.id).toBe(jobId);
      expect(jobs.length).toBeGreaterThanOrEqual(acked.size);

      const posts = existsSync(join(dir, "posts.log"))
        ? readFileSync(join(dir, "posts.log"), "utf8").trim().split("\n").filter(Boolean)
        : [];
      const outcomes = new Map<string, Set<string>>();
      for (const line of posts) {
        const [kind, jobId] = line.split(" ");
        if (!kind || !jobId) continue;
        const set = outcomes.get(jobId) ?? new Set<string>();
        set.add(kind);
        outcomes.set(jobId, set);
      }
      for (const job of jobs) {
        expect(["delivered", "failed"]).toContain(job.state);
        // Exactly one visible outcome per job: a result or a failure notice, never both, never none.
        expect([...(outcomes.get(job.id) ?? [])]).toEqual([job.state === "delivered" ? "result" : "failed"]);
        if (job.state === "delivered") expect(store.images.imagesForJob(job.id)).toHaveLength(1);
        // A refused prompt fails as refused, unless every one of its attempts was killed mid-render first:
        // then it fails as interrupted (out of attempts) before the provider could refuse it.
        if (job.request.prompt.endsWith("-policy"))
          expect(
            job.errorCode === "content_policy" || (job.errorCode === "worker_crashed" && job.attempts >= 3),
          ).toBe(true);
      }
      expect(jobs.some((j) => j.state === "delivered")).toBe(true);
      expect(jobs.some((j) => j.errorCode === "content_policy")).toBe(true);
    } finally {
      store.close();
    }
  }, 300_000);
});
