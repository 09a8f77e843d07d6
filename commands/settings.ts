import { z } from "zod";
import { actorIsAdmin } from "../src/core/imagine.ts";
import { BOT_MESSAGES, COMMAND_TEXT } from "../src/core/messages.ts";
import type { AllowList, ChannelSettings, GuildSettings, SettingsDefaults } from "../src/core/settings.ts";
import { type CommandContext, type CommandReply, defineCommand, type GroupCommand } from "./types.ts";

/**
 * `/settings show | set KEY VALUE [scope] | reset KEY [scope]`: per-server and per-channel defaults, limits,
 * allowed backends and models, NSFW, banned words, admin roles, button policy and OpenAI caps. Everyone may
 * look; only easel admins may change. Values are checked by the same rules as requests (checkGuildSettings,
 * checkChannelSettings via the settings port), and a refusal names the setting and its range.
 */

type Scope = "server" | "channel";
type Settings = GuildSettings | ChannelSettings;

interface KeySpec {
  scopes: readonly Scope[];
  /** Sets (value) or clears (undefined) the key on a copy of the settings; returns a reason when malformed. */
  apply(target: Settings, value: string | undefined): string | undefined;
  show(target: Settings): string | undefined;
}

const onOff = (value: string): boolean | undefined =>
  /^(on|true|yes|1)$/i.test(value) ? true : /^(off|false|no|0)$/i.test(value) ? false : undefined;

const list = (value: string, separator: RegExp): string[] =>
  value
    .split(separator)
    .map((v) => v.trim())
    .filter((v) => v !== "");

function defaultKey(field: keyof SettingsDefaults, parse: (v: string) => unknown): KeySpec {
  return {
    scopes: ["server", "channel"],
    apply(target, value) {
      const defaults: Record<string, unknown> = { ...target.defaults };
      if (value === undefined) delete defaults[field];
      else defaults[field] = parse(value);
      target.defaults = defaults as SettingsDefaults;
      return undefined;
    },
    show: (target) => {
      const v = target.defaults[field];
      if (v === undefined) return undefined;
      return typeof v === "object" ? `${v.width}x${v.height}` : String(v);
    },
  };
}

function limitKey(field: keyof GuildSettings["limits"]): KeySpec {
  return {
    scopes: ["server", "channel"],
    apply(target, value) {
      const limits: Record<string, number> = { ...(target.limits as Record<string, number>) };
      if (value === undefined) delete limits[field];
      else limits[field] = Number(value);
      target.limits = limits;
      return undefined;
    },
    show: (target) => (target.limits[field] === undefined ? undefined : String(target.limits[field])),
  };
}

function allowKey(field: "allowedBackends" | "allowedModels"): KeySpec {
  return {
    scopes: ["server", "channel"],
    apply(target, value) {
      const v: AllowList<string> =
        value === undefined || value.trim().toLowerCase() === "all" ? "all" : list(value, /[,\s]+/);
      (target as { [k in typeof field]: AllowList<string> })[field] = v;
      return undefined;
    },
    show: (target) => {
      const v = target[field];
      return v === "all" ? undefined : v.join(", ");
    },
  };
}

function flagKey(field: string, scopes: readonly Scope[], fallback: boolean | undefined): KeySpec {
  return {
    scopes,
    apply(target, value) {
      const record = target as unknown as Record<string, unknown>;
      if (value === undefined) {
        if (fallback === undefined) delete record[field];
        else record[field] = fallback;
        return undefined;
      }
      const b = onOff(value);
      if (b === undefined) return COMMAND_TEXT.settings.notOnOff(value);
      record[field] = b;
      return undefined;
    },
    show: (target) => {
      const v = (target as unknown as Record<string, unknown>)[field];
      return v === undefined ? undefined : v ? "on" : "off";
    },
  };
}

function guildListKey(field: "bannedWords" | "bannedPatterns" | "adminRoleIds", separator: RegExp): KeySpec {
  return {
    scopes: ["server"],
    apply(target, value) {
      const items = value === undefined ? [] : list(value, separator);
      (target as GuildSettings)[field] =
        field === "adminRoleIds" ? items.map((r) => r.replace(/^<@&(\d+)>$/, "$1")) : items;
      return undefined;
    },
    show: (target) => {
      const v = (target as GuildSettings)[field];
      return v.length === 0 ? undefined : v.join(field === "bannedPatterns" ? " ; " : ", ");
    },
  };
}

function guildNumberKey(field: string): KeySpec {
  return {
    scopes: ["server"],
    apply(target, value) {
      const record = target as unknown as Record<string, unknown>;
      if (value === undefined) delete record[field];
      else record[field] = Number(value);
      return undefined;
    },
    show: (target) => {
      const v = (target as unknown as Record<string, unknown>)[field];
      return v === undefined ? undefined : String(v);
    },
  };
}

const size = (v: string) => {
  const m = /^(\d+)\s*[x×]\s*(\d+)$/i.exec(v.trim());
  return m ? { width: Number(m[1]), height: Number(m[2]) } : v;
};

/** Every setting, by the name members type. */
export const SETTING_KEYS: Readonly<Record<string, KeySpec>> = {
  steps: defaultKey("steps", Number),
  cfg: defaultKey("guidance", Number),
  sampler: defaultKey("sampler", (v) => v.trim()),
  size: defaultKey("size", size),
  n: defaultKey("count", Number),
  backend: defaultKey("backend", (v) => v.trim().toLowerCase()),
  model: defaultKey("model", (v) => v.trim()),
  "max-steps": limitKey("maxSteps"),
  "max-pixels": limitKey("maxPixels"),
  "max-n": limitKey("maxCount"),
  "max-queued": limitKey("maxQueuedPerUser"),
  "allowed-backends": allowKey("allowedBackends"),
  "allowed-models": allowKey("allowedModels"),
  nsfw: flagKey("nsfwAllowed", ["channel"], false),
  contest: flagKey("contest", ["channel"], false),
  "others-may-press": flagKey("othersMayPressButtons", ["server", "channel"], undefined),
  "banned-words": guildListKey("bannedWords", /,/),
  "banned-patterns": guildListKey("bannedPatterns", /;/),
  "admin-roles": guildListKey("adminRoleIds", /[,\s]+/),
  "openai-daily-per-user": guildNumberKey("openaiDailyImagesPerUser"),
  "openai-daily-per-server": guildNumberKey("openaiDailyImagesPerGuild"),
  "self-vote": flagKey("selfVote", ["server"], undefined),
  "contest-minutes": guildNumberKey("contestMinutes"),
  "contest-upscale": flagKey("contestUpscale", ["server"], undefined),
};

const KEY_NAMES = Object.keys(SETTING_KEYS) as [string, ...string[]];

function showSettings({ services, actor }: CommandContext): CommandReply {
  const { platform, workspaceId, channelId } = actor.requester;
  const guild = services.settings.guild(platform, workspaceId);
  const channel = services.settings.channel(platform, workspaceId, channelId);
  const shown = (scope: Scope, target: Settings) =>
    Object.entries(SETTING_KEYS)
      .filter(([, spec]) => spec.scopes.includes(scope))
      .flatMap(([key, spec]): (readonly [string, string])[] => {
        const v = spec.show(target);
        return v === undefined ? [] : [[key, v]];
      });
  const text = COMMAND_TEXT.settings.overview(shown("server", guild), shown("channel", channel), KEY_NAMES);
  return { kind: "text", text, ephemeral: true };
}

function change(
  context: CommandContext,
  key: string,
  value: string | undefined,
  scope?: Scope,
): CommandReply {
  const { services, actor } = context;
  const say = COMMAND_TEXT.settings;
  const reply = (text: string): CommandReply => ({ kind: "text", text, ephemeral: true });
  if (!actorIsAdmin(services, actor)) return reply(BOT_MESSAGES.adminsOnly(say.adminAction));
  const spec = SETTING_KEYS[key];
  if (!spec) return reply(say.unknownKey(key, KEY_NAMES));
  const where = scope ?? spec.scopes[0] ?? "server";
  if (!spec.scopes.includes(where)) return reply(say.wrongScope(key, spec.scopes));
  const { platform, workspaceId, channelId, userId } = actor.requester;
  const current =
    where === "server"
      ? services.settings.guild(platform, workspaceId)
      : services.settings.channel(platform, workspaceId, channelId);
  const next = structuredClone(current) as Settings;
  const malformed = spec.apply(next, value);
  if (malformed) return reply(say.malformed(key, malformed));
  const refused =
    where === "server"
      ? services.settings.saveGuild(platform, workspaceId, next as GuildSettings, userId)
      : services.settings.saveChannel(platform, workspaceId, channelId, next as ChannelSettings, userId);
  if (refused) return reply(say.notSaved(refused));
  return reply(say.changed(key, value === undefined ? undefined : (spec.show(next) ?? value), where));
}

const scopeOption = z
  .enum(["server", "channel"])
  .optional()
  .describe("Where: the whole server or this channel");

export const settingsCommand: GroupCommand = {
  name: "settings",
  description: "View or change easel's settings for this server or channel",
  subcommands: [
    defineCommand({
      name: "show",
      description: "Show the settings here",
      options: {},
      handle: (_args, context) => showSettings(context),
    }),
    defineCommand({
      name: "set",
      description: "Change a setting (admins)",
      options: {
        key: z.enum(KEY_NAMES).describe("The setting"),
        value: z.string().min(1).max(1000).describe("The new value"),
        scope: scopeOption,
      },
      positional: ["key", "value"],
      handle: (args, context) => change(context, args.key, args.value, args.scope),
    }),
    defineCommand({
      name: "reset",
      description: "Put a setting back to its default (admins)",
      options: { key: z.enum(KEY_NAMES).describe("The setting"), scope: scopeOption },
      positional: ["key"],
      handle: (args, context) => change(context, args.key, undefined, args.scope),
    }),
  ],
};
