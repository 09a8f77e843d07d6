import type { SettingsPort } from "../core/bot-services.ts";
import {
  type ChannelSettings,
  checkChannelSettings,
  checkGuildSettings,
  DEFAULT_CHANNEL_SETTINGS,
  DEFAULT_GUILD_SETTINGS,
  type GuildSettings,
  type RequestLimits,
} from "../core/settings.ts";
import type { DailyImageCaps } from "../core/spend.ts";
import type { Store } from "./index.ts";

/**
 * Guild and channel settings as the bot reads and writes them: stored JSON over the defaults, checked by
 * core's rules (the operator's limits and OpenAI caps included) before anything is saved. Reading does not
 * re-check: settings saved before the operator lowered a limit still load, and the lower limit wins at use.
 */
export function storeSettingsPort(
  store: Store,
  operator: { limits: Partial<RequestLimits>; openaiCaps: DailyImageCaps },
): SettingsPort {
  const guild = (platform: string, workspaceId: string): GuildSettings => {
    const found = store.settings.getSettings({ platform, workspaceId }, (v) => v as Partial<GuildSettings>);
    return found ? { ...DEFAULT_GUILD_SETTINGS, ...found.settings } : DEFAULT_GUILD_SETTINGS;
  };
  return {
    guild,
    channel(platform, workspaceId, channelId) {
      const found = store.settings.getSettings(
        { platform, workspaceId, channelId },
        (v) => v as Partial<ChannelSettings>,
      );
      return found ? { ...DEFAULT_CHANNEL_SETTINGS, ...found.settings } : DEFAULT_CHANNEL_SETTINGS;
    },
    saveGuild(platform, workspaceId, settings, by) {
      const checked = checkGuildSettings(settings, operator.limits, operator.openaiCaps);
      if (!checked.ok) return checked.reason;
      store.settings.setSettings({ platform, workspaceId }, settings, { parse: (v) => v, updatedBy: by });
      return undefined;
    },
    saveChannel(platform, workspaceId, channelId, settings, by) {
      const checked = checkChannelSettings(settings, guild(platform, workspaceId), operator.limits);
      if (!checked.ok) return checked.reason;
      store.settings.setSettings({ platform, workspaceId, channelId }, settings, {
        parse: (v) => v,
        updatedBy: by,
      });
      return undefined;
    },
  };
}
