import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CrashRig, describeOutcomes, GENERAL, type Life, type SentRequest } from "./crash-rig.ts";
import type { RecordedRequest } from "./fakes/fake-discord/index.ts";

/**
 * SIGKILL in every window (RELIABILITY.md rows 17 and 23): easel runs as `npm start` composes it, in a child
 * process, against a fake Discord, a fake Slack and a fake OpenAI that live here and outlive it. Each life is
 * killed at an aimed moment: with jobs queued; while a render runs (three times for one job, which then fails
 * as interrupted); with a result rendered but its post held before Discord took it; with a post or an upload
 * made but its answer held until easel died (posted, not recorded); with answers lost (500) and easel killed in
 * the lookup that follows; with a status message or an acknowledgement made but not answered. Then a last life
 * drains everything, and what each member sees is counted on the fakes without deduplicating: every
 * acknowledged request ends with exactly one visible result or one visible failure notice, one status card on
 * Slack, nothing left waiting; SQLite's integrity check is ok.
 */

let rig: CrashRig;
/** The fakes (the rig runs both platforms). */
const discord = () => rig.discord ?? expect.fail("no fake Discord");
const slack = () => rig.slack ?? expect.fail("no fake Slack");

/**
 * Resolves with what `promise` gives once its window is reached, or with undefined after `ms` (the window was
 * never reached: the test says so, and the kill comes anyway).
 */
async function reach<T>(promise: Promise<T>, ms = 15_000): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((done) => {
    timer = setTimeout(() => done(undefined), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Discord: the result going onto the status message (an edit of the reply, through its webhook, with the image). */
const discordResult = (r: RecordedRequest) =>
  r.method === "PATCH" && r.path.startsWith("/webhooks/") && r.files.length > 0;

const discordRequestOf = (r: RecordedRequest) =>
  rig.requests.find((q) => q.discord && r.path.includes(`/${q.discord.token}/`));
const outcome = (request: SentRequest | undefined) => (request ? rig.seen(request) : undefined);

/** What each aimed kill found on the fakes at its moment. */
const windows: Record<string, boolean> = {};
/** Acknowledged requests the last life did not show an outcome for, and its exit code. */
let undrained: SentRequest[] = [];
let exitCode: number | null = null;

describe("crash recovery: SIGKILL in every window, then a drain", () => {
  beforeAll(async () => {
    rig = await CrashRig.start();
    // 1. Queued: seven jobs acknowledged and their status messages shown, the first one rendering (its render
    // hangs), the rest waiting behind it.
    let life: Life = await rig.boot();
    const rendering = rig.hangNextRender();
    const x = rig.send("slack", "the interrupted one");
    const first = await reach(rendering);
    const queued = [
      rig.send("discord"),
      rig.send("discord", "refused-policy"),
      rig.send("slack"),
      rig.send("slack", "refused-policy"),
      rig.send("discord"),
      rig.send("slack"),
    ];
    await rig.acked([x, ...queued]);
    await rig.bound([x, ...queued]);
    windows.queued =
      String(first?.body.prompt).includes(x.tag) &&
      [x, ...queued].every((r) => {
        const seen = outcome(r);
        return rig.queued(r) && seen?.results === 0 && seen.failures + seen.failureCards === 0;
      });
    await life.kill();

    // 2, 3. Running: the interrupted job is retried first after each start; killed mid-render twice more.
    for (const n of [2, 3]) {
      const again = rig.hangNextRender();
      life = await rig.boot();
      const call = await reach(again);
      windows[`running ${n}`] = String(call?.body.prompt).includes(x.tag);
      await life.kill();
    }
    rig.cancelHang();

    // 4. Out of attempts, the interrupted job fails at the next start; its private notice to the member is
    // posted and easel dies before it hears back (a failure shown, not recorded).
    const notice = slack().holdNext("response_url", { where: (c) => String(c.params.text).includes(x.tag) });
    life = await rig.boot();
    windows["failure at start, notice posted"] =
      (await reach(notice, 10_000)) !== undefined && outcome(x)?.failures === 1;
    await life.kill();
    slack().clearHolds();

    // 5. Rendered, not posted: a result's edit is held before Discord applies it.
    const before = discord().holdNext(discordResult, { when: "before" });
    life = await rig.boot();
    const sent5 = [rig.send("discord"), rig.send("slack")];
    await rig.acked(sent5);
    const held = await reach(before);
    await rig.bound(sent5);
    windows["rendered, not posted"] = held !== undefined && outcome(discordRequestOf(held))?.results === 0;
    await life.kill();
    discord().clearHolds();

    // 6. Posted, not recorded (Slack): an upload is shared in its thread; its answer never comes.
    const upload = slack().holdNext("files.completeUploadExternal");
    life = await rig.boot();
    const sent6 = [rig.send("slack"), rig.send("discord")];
    await rig.acked(sent6);
    const shared = await reach(upload);
    await rig.bound(sent6);
    const ids = shared ? (JSON.parse(String(shared.params.files)) as { id: string }[]).map((f) => f.id) : [];
    windows["upload posted, not recorded"] =
      ids.length > 0 &&
      slack()
        .messages(GENERAL)
        .some((m) => m.thread_ts !== undefined && ids.every((id) => m.files?.includes(id)));
    await life.kill();
    slack().clearHolds();

    // 7. Posted, not recorded (Discord): a result edit is applied; its answer never comes.
    const after = discord().holdNext(discordResult);
    life = await rig.boot();
    const sent7 = [rig.send("discord"), rig.send("slack")];
    await rig.acked(sent7);
    const applied = await reach(after);
    await rig.bound(sent7);
    windows["result posted, not recorded"] =
      applied !== undefined && outcome(discordRequestOf(applied))?.results === 1;
    await life.kill();
    discord().clearHolds();

    // 8. Answers lost (500 after the effect) on a status message, an upload and a result edit, and a kill in
    // the lookup that follows the lost upload.
    slack().loseAnswerNext("chat.postMessage");
    slack().loseAnswerNext("files.completeUploadExternal");
    discord().loseAnswerNext(discordResult);
    const lostUpload = () =>
      slack().calls.some((c) => c.method === "files.completeUploadExternal" && c.lostAnswer === true);
    const lookup = slack().holdNext("conversations.replies", { when: "before", where: lostUpload });
    life = await rig.boot();
    const sent8 = [rig.send("slack"), rig.send("discord"), rig.send("slack")];
    await rig.acked(sent8);
    windows["lost answer, killed in the lookup"] = (await reach(lookup)) !== undefined && lostUpload();
    await rig.bound(sent8);
    await life.kill();
    slack().clearHolds();

    // 9. A status message posted, not recorded (Slack).
    let s9: SentRequest | undefined;
    const status = slack().holdNext("chat.postMessage", {
      where: (c) => s9 !== undefined && String(c.params.text).includes(s9.tag),
    });
    life = await rig.boot();
    s9 = rig.send("slack");
    await rig.acked([s9]);
    windows["status posted, not recorded"] =
      (await reach(status)) !== undefined &&
      slack()
        .messages(GENERAL)
        .some((m) => !m.ephemeral && s9 !== undefined && m.text.includes(s9.tag));
    await life.kill();
    slack().clearHolds();

    // 10. An acknowledgement made, not answered (Discord): the deferred reply exists; easel dies before it
    // hears back, so it never recorded the reply as the job's status message.
    let d10: SentRequest | undefined;
    const defer = discord().holdNext(
      (r) => r.method === "POST" && d10?.discord !== undefined && r.path.includes(`/${d10.discord.id}/`),
    );
    life = await rig.boot();
    d10 = rig.send("discord");
    windows["acknowledged, not recorded"] = (await reach(defer)) !== undefined && rig.queued(d10);
    await life.kill();
    discord().clearHolds();

    // The last life: no faults; it drains everything and stops on SIGTERM.
    life = await rig.boot();
    const last = [rig.send("discord"), rig.send("slack")];
    await rig.acked(last);
    undrained = await rig.drained(15_000);
    exitCode = await life.stop();
  }, 240_000);
  afterAll(() => rig?.close());

  it("reached every window it aimed at", () => {
    expect(windows).toEqual({
      queued: true,
      "running 2": true,
      "running 3": true,
      "failure at start, notice posted": true,
      "rendered, not posted": true,
      "upload posted, not recorded": true,
      "result posted, not recorded": true,
      "lost answer, killed in the lookup": true,
      "status posted, not recorded": true,
      "acknowledged, not recorded": true,
    });
    expect(rig.lives).toBe(11);
    expect(exitCode).toBe(0);
  });

  it("ends every acknowledged job with exactly one visible result or failure notice: 0 lost, 0 doubled", () => {
    const tally = rig.tally();
    expect(tally.integrity).toEqual(["ok"]);
    expect(undrained.map((r) => rig.explain(r))).toEqual([]);
    expect(describeOutcomes(tally.lost)).toBe("");
    expect(describeOutcomes(tally.doubled)).toBe("");
    expect(tally.unfinished).toEqual([]);
    const acked = tally.outcomes.filter((o) => o.acked);
    expect(acked).toHaveLength(rig.requests.length);
    for (const o of acked) {
      const what = describeOutcomes([o]);
      // The delivery keys on its posts are its own.
      expect(
        o.keys.filter((k) => !k.startsWith(`${o.jobId}-`)),
        what,
      ).toEqual([]);
      if (o.state === "delivered") {
        expect([o.results, o.failures, o.failureCards], what).toEqual([1, 0, 0]);
      } else {
        expect([o.state, o.results], what).toEqual(["failed", 0]);
        // Discord: the status message becomes the failure. Slack: the card does, and the member is pinged
        // privately at most once (the notice is recorded before it is sent).
        if (o.request.platform === "discord") expect(o.failures, what).toBe(1);
        else expect([o.failureCards, o.failures <= 1], what).toEqual([1, true]);
      }
      if (o.request.platform === "slack") {
        // One status card, carrying its delivery key; a result's upload carries its own.
        expect(o.cards, what).toBe(1);
        expect(
          o.keys.filter((k) => k.startsWith(`${o.jobId}-s`)),
          what,
        ).toHaveLength(1);
        if (o.state === "delivered")
          expect(
            o.keys.filter((k) => k.startsWith(`${o.jobId}-r`)),
            what,
          ).toHaveLength(1);
      }
    }
    // The job killed three times mid-render fails as interrupted, the refused prompts as refused; any other
    // job killed three times mid-render (it is retried first after each start) may fail as interrupted too.
    for (const o of acked) {
      const policy = o.request.prompt.includes("-policy");
      const interrupted = o.request.prompt.startsWith("the interrupted one");
      const allowed = interrupted
        ? ["failed worker_crashed"]
        : policy
          ? ["failed content_policy", "failed worker_crashed"]
          : ["delivered undefined", "failed worker_crashed"];
      expect(allowed, describeOutcomes([o])).toContain(`${o.state} ${o.error}`);
    }
    expect(discord().violations).toEqual([]);
    expect(slack().violations).toEqual([]);
  });

  it("leaves no status message waiting beside an outcome (no “thinking…” reply next to the result)", () => {
    expect(describeOutcomes(rig.tally().stale)).toBe("");
  });
});
