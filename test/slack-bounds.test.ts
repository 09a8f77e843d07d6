import type { webApi } from "@slack/bolt";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ContestClock } from "../src/core/ballots.ts";
import type { Actor, BotServices } from "../src/core/bot-services.ts";
import type { JobRelay } from "../src/core/relay.ts";
import {
  RESPONSE_URL_MAX_TRACKED,
  RESPONSE_URL_TTL_MS,
  ReplySender,
  type ReplyTarget,
} from "../src/platforms/slack/replies.ts";
import { SlackBot } from "../src/platforms/slack/slack-bot.ts";
import type { WorkspaceAdmins } from "../src/platforms/slack/workspace-admins.ts";

/** The Slack adapter's per-URL and per-member maps stay bounded however many URLs and members pass by. */

const T0 = 1_700_000_000_000;

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("ReplySender's response_url counts", () => {
  const target = (i: number, issuedAt: number): ReplyTarget => ({
    channelId: "C1",
    userId: "U1",
    responseUrl: `https://hooks.slack.test/commands/${i}`,
    issuedAt,
  });

  it("holds only the URLs of the last 30 minutes at a steady rate", () => {
    let now = T0;
    const sender = new ReplySender({} as webApi.WebClient, { now: () => now });
    let largest = 0;
    // One command a second for three hours: 1 800 URLs live at any time, 10 800 in all.
    for (let i = 0; i < 3 * 3600; i++) {
      expect(sender.usable(target(i, now))).toBe(true);
      largest = Math.max(largest, sender.tracked);
      now += 1_000;
    }
    expect(largest).toBeLessThanOrEqual(RESPONSE_URL_TTL_MS / 1_000 + 1);
    expect(largest).toBeGreaterThanOrEqual(RESPONSE_URL_TTL_MS / 1_000);
  });

  it("never tracks more than the cap, even in a burst", () => {
    const sender = new ReplySender({} as webApi.WebClient, { now: () => T0 });
    for (let i = 0; i < RESPONSE_URL_MAX_TRACKED + 5_000; i++) sender.usable(target(i, T0));
    expect(sender.tracked).toBe(RESPONSE_URL_MAX_TRACKED);
  });

  it("keeps a live URL's uses while others expire around it, and a forgotten expired URL stays unusable", async () => {
    let now = T0;
    const posts: string[] = [];
    vi.stubGlobal("fetch", async (url: string) => {
      posts.push(url);
      return new Response("ok");
    });
    const sender = new ReplySender({} as webApi.WebClient, { now: () => now });
    const old = target(0, now);
    sender.usable(old);
    now += 20 * 60_000;
    const live = target(1, now);
    expect(await sender.ephemeral(live, { text: "hi" })).toBe("response_url");
    expect(sender.uses(live)).toBe(1);
    now += 15 * 60_000; // old is past its 30 minutes, live is not
    sender.usable(target(2, now)); // a new URL: the expired entry at the front goes
    expect(sender.tracked).toBe(2);
    expect(sender.uses(live)).toBe(1);
    // Asked about again, the forgotten URL is judged by its own issuedAt: not usable, no post tried.
    expect(sender.usable(old)).toBe(false);
    expect(posts).toEqual([live.responseUrl]);
  });
});

describe("SlackBot's workspace-admin cache", () => {
  function bot(clock: () => number): SlackBot {
    const registry = { register: () => undefined };
    return new SlackBot(
      {} as BotServices,
      registry as unknown as JobRelay,
      registry as unknown as ContestClock,
      { botToken: "xoxb-test", signingSecret: "secret", port: 0, log: () => undefined, now: clock },
    );
  }
  const actor = (userId: string): Actor => ({
    requester: { platform: "slack", workspaceId: "T1", channelId: "C1", userId },
    platformAdmin: false,
    memberRoleIds: [],
    channelNsfw: false,
    isBot: false,
  });
  /** The private parts under test: the lookup and the map it fills. */
  const internals = (b: SlackBot) => (b as unknown as { workspaceAdmins: WorkspaceAdmins }).workspaceAdmins;

  it("drops entries past their 5 minutes, caps the rest at 1000, and still answers from the cache", async () => {
    let now = T0;
    const slack = bot(() => now);
    const lookups: string[] = [];
    (slack.app.client.users as unknown as { info: (a: { user: string }) => Promise<unknown> }).info = async ({
      user,
    }) => {
      lookups.push(user);
      return { ok: true, user: { id: user, is_admin: user === "U-admin" } };
    };
    const admins = internals(slack).entries;
    const lookUp = (userId: string) => internals(slack).withAdmin(actor(userId));

    expect((await lookUp("U-admin")).platformAdmin).toBe(true);
    expect((await lookUp("U-admin")).platformAdmin).toBe(true);
    expect(lookups).toEqual(["U-admin"]); // the second answer came from the cache

    // One new member a second for an hour: only the last 5 minutes' stay.
    for (let i = 0; i < 3600; i++) {
      now += 1_000;
      await lookUp(`U${i}`);
    }
    expect(admins.size).toBeLessThanOrEqual(300);
    expect(admins.has("U-admin")).toBe(false);
    // A burst: never more than 1000.
    for (let i = 0; i < 2_500; i++) await lookUp(`burst-${i}`);
    expect(admins.size).toBe(1_000);
    expect(admins.has("burst-2499")).toBe(true);
    expect(admins.has("burst-0")).toBe(false);
  });
});
