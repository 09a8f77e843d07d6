import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_CHANNEL_ID, FakeDiscord } from "./fakes/fake-discord/index.ts";
import { FakeSlack } from "./fakes/fake-slack/index.ts";

/**
 * The fakes' `holdNext`, which the crash test aims its kills with: a held request is never answered, and takes
 * effect only when held "after". Requests go over real HTTP; a request is abandoned (its socket destroyed) as
 * a killed bot's would be.
 */

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

/** Sends a request and gives up on it (as a dying client does) once `held` resolves. */
async function abandoned(
  url: string,
  init: RequestInit,
  held: Promise<unknown>,
): Promise<"answered" | "held"> {
  const controller = new AbortController();
  const answer = fetch(url, { ...init, signal: controller.signal }).then(
    () => "answered" as const,
    () => "held" as const,
  );
  const first = await Promise.race([answer, held.then(() => "held" as const)]);
  controller.abort();
  await answer;
  return first;
}

describe("FakeDiscord.holdNext", () => {
  for (const when of ["before", "after"] as const) {
    it(`holds a channel message ${when} it takes effect, without an answer`, async () => {
      const fake = await FakeDiscord.start();
      closers.push(() => fake.close());
      const held = fake.holdNext("POST /channels/{channel_id}/messages", { when });
      const url = `${fake.apiBase}/v10/channels/${DEFAULT_CHANNEL_ID}/messages`;
      const init = {
        method: "POST",
        headers: { authorization: `Bot ${fake.token}`, "content-type": "application/json" },
        body: JSON.stringify({ content: "hello" }),
      };
      expect(await abandoned(url, init, held)).toBe("held");
      const request = await held;
      expect([request.held, request.status]).toEqual([when, 0]);
      const made = fake.messages(DEFAULT_CHANNEL_ID).filter((m) => m.content === "hello");
      expect(made).toHaveLength(when === "after" ? 1 : 0);
      // One request only: the next one is answered.
      const next = await fetch(url, init);
      expect(next.status).toBe(200);
      expect(fake.messages(DEFAULT_CHANNEL_ID).filter((m) => m.content === "hello")).toHaveLength(
        when === "after" ? 2 : 1,
      );
    });
  }
});

describe("FakeSlack.holdNext", () => {
  for (const when of ["before", "after"] as const) {
    it(`holds chat.postMessage ${when} it takes effect, without an answer`, async () => {
      const fake = await FakeSlack.start();
      closers.push(() => fake.close());
      const held = fake.holdNext("chat.postMessage", { when, where: (c) => c.params.text === "hello" });
      const init = {
        method: "POST",
        headers: { authorization: `Bearer ${fake.botToken}`, "content-type": "application/json" },
        body: JSON.stringify({ channel: "C0123456789", text: "hello" }),
      };
      expect(await abandoned(`${fake.apiUrl}chat.postMessage`, init, held)).toBe("held");
      const call = await held;
      expect([call.held, call.status]).toEqual([when, 0]);
      expect(fake.messages("C0123456789").filter((m) => m.text === "hello")).toHaveLength(
        when === "after" ? 1 : 0,
      );
      const next = (await (await fetch(`${fake.apiUrl}chat.postMessage`, init)).json()) as { ok: boolean };
      expect(next.ok).toBe(true);
    });
  }
});
