import type { webApi } from "@slack/bolt";
import type { Actor } from "../../core/bot-services.ts";
import { ExpiringMap } from "../../core/expiring-map.ts";
import { describeSlackError } from "./errors.ts";

/**
 * Who administers the Slack workspace. Slack has no roles: a member is a platform admin when users.info says
 * they administer or own the workspace. Answers are cached for a few minutes, and a lookup that takes too long
 * counts as "not an admin", so that no answer waits on it.
 */

/** How long users.info may take before a member is treated as not a workspace admin. */
const ADMIN_LOOKUP_TIMEOUT_MS = 1_500;
const ADMIN_CACHE_MS = 5 * 60_000;
/** At most this many members are cached (they are simply looked up again). */
const ADMIN_CACHE_MAX = 1_000;

export class WorkspaceAdmins {
  /** By member id: whether they administer the workspace (bounded by age and count, core/expiring-map.ts). */
  readonly entries: ExpiringMap<string, boolean>;

  constructor(
    private readonly client: webApi.WebClient,
    private readonly log: (line: string) => void,
    now: () => number,
  ) {
    this.entries = new ExpiringMap(ADMIN_CACHE_MS, ADMIN_CACHE_MAX, now);
  }

  /** What the cache says of a member without asking Slack (false when it does not know). */
  cached(userId: string): boolean {
    return this.entries.live(userId) ?? false;
  }

  /** `actor` with what users.info says (cached); unchanged when Slack does not answer in time. */
  async withAdmin(actor: Actor): Promise<Actor> {
    const userId = actor.requester.userId;
    const cached = this.entries.live(userId);
    if (cached !== undefined) return { ...actor, platformAdmin: cached };
    try {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("users.info took too long")), ADMIN_LOOKUP_TIMEOUT_MS);
      });
      const answer = await Promise.race([this.client.users.info({ user: userId }), timeout]).finally(() =>
        clearTimeout(timer),
      );
      const user = answer.user;
      const admin = user?.is_admin === true || user?.is_owner === true || user?.is_primary_owner === true;
      this.entries.set(userId, admin);
      return { ...actor, platformAdmin: admin, isBot: actor.isBot || user?.is_bot === true };
    } catch (err) {
      this.log(`easel: could not look up Slack user ${userId}: ${describeSlackError(err)}`);
      return actor;
    }
  }
}
