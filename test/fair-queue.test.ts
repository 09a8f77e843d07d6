import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FairQueue } from "../src/core/fair-queue.ts";

const job = (jobId: string, userId: string, workspaceId = "g1") => ({ jobId, userId, workspaceId });

describe("fair queue", () => {
  it("lets user B's one job run second when user A queued three first", () => {
    const q = new FairQueue();
    q.push(job("a1", "A"));
    q.push(job("a2", "A"));
    q.push(job("a3", "A"));
    expect(q.shift()?.jobId).toBe("a1"); // A's first job starts on the idle backend
    q.push(job("b1", "B"));
    expect(q.order().map((e) => e.jobId)).toEqual(["b1", "a2", "a3"]);
    expect(q.shift()?.jobId).toBe("b1");
  });

  it("alternates between workspaces before users within one", () => {
    const q = new FairQueue();
    for (const id of ["x1", "x2", "x3"]) q.push(job(id, `u-${id}`, "busy"));
    q.push(job("y1", "solo", "quiet"));
    expect(q.order().map((e) => e.jobId)).toEqual(["x1", "y1", "x2", "x3"]);
  });

  it("keeps each user's own jobs first in, first out, and removes cancelled ones", () => {
    const q = new FairQueue();
    q.push(job("a1", "A"));
    q.push(job("b1", "B"));
    q.push(job("a2", "A"));
    q.push(job("b2", "B"));
    expect(q.remove("b1")).toBe(true);
    expect(q.remove("b1")).toBe(false);
    expect(q.order().map((e) => e.jobId)).toEqual(["a1", "b2", "a2"]);
    expect(q.size).toBe(3);
  });

  it("predicts exactly the order in which jobs are taken", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom("A", "B", "C"), fc.constantFrom("g1", "g2"), fc.boolean()), {
          maxLength: 40,
        }),
        (ops) => {
          const q = new FairQueue();
          let n = 0;
          for (const [user, ws, take] of ops) {
            if (take) q.shift();
            else q.push(job(`j${n++}`, user, ws));
          }
          const predicted = q.order().map((e) => e.jobId);
          const taken: string[] = [];
          for (let e = q.shift(); e; e = q.shift()) taken.push(e.jobId);
          expect(taken).toEqual(predicted);
        },
      ),
    );
  });
});
