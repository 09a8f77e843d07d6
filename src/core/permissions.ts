/**
 * Who may do what, decided in core: a platform's own command permissions can be changed by any guild admin
 * (or not applied by Slack at all), so easel checks again on every admin command and button press.
 */

import type { Requester } from "./request.ts";
import type { ChannelSettings, GuildSettings } from "./settings.ts";

/** What is known about the member acting, from configuration, guild settings and the platform event. */
export interface AdminCheck {
  /** EASEL_ADMIN_IDS: user ids ("123", or "discord:123" / "slack:U123" to name the platform). */
  adminIds: readonly string[];
  /** The platform says the member administers the guild (Discord Administrator / Manage Server, Slack admin). */
  platformAdmin: boolean;
  /** The guild's admin roles (GuildSettings.adminRoleIds). */
  adminRoleIds: readonly string[];
  /** The roles the member has in the guild (empty on Slack, which has no roles). */
  memberRoleIds: readonly string[];
}

/** True when `requester` is an easel admin: a configured user id, a configured role, or a platform admin. */
export function isAdmin(requester: Requester, check: AdminCheck): boolean {
  if (check.platformAdmin === true) return true;
  const user = requester.userId.trim();
  // An empty id (a malformed event) must never match an empty entry in a list.
  if (user !== "") {
    for (const raw of check.adminIds) {
      const id = raw.trim();
      if (id !== "" && (id === user || id === `${requester.platform}:${user}`)) return true;
    }
  }
  const roles = new Set(check.adminRoleIds.map((r) => r.trim()).filter((r) => r !== ""));
  return check.memberRoleIds.some((role) => roles.has(role.trim()));
}

/**
 * Whether `presser` may press reroll / variation / upscale under `owner`'s result: always the owner and
 * admins; others when the channel (else the guild) allows it. Votes are not subject to this.
 */
export function mayPressButtons(
  presser: Requester,
  owner: Requester,
  policy: {
    guild: Pick<GuildSettings, "othersMayPressButtons">;
    channel?: Pick<ChannelSettings, "othersMayPressButtons">;
    presserIsAdmin: boolean;
  },
): boolean {
  if (presser.platform === owner.platform && presser.userId === owner.userId && presser.userId !== "")
    return true;
  if (policy.presserIsAdmin) return true;
  return policy.channel?.othersMayPressButtons ?? policy.guild.othersMayPressButtons;
}
