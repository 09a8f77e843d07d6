import type Database from "better-sqlite3";
import { EaselError } from "../core/errors.ts";
import { guard, writeTransaction } from "./database.ts";

/**
 * Per-guild (workspace) and per-channel settings as JSON objects. The store does not know their shape: the
 * caller passes a `parse` function (a zod schema's `parse`, for instance) that validates on the way in and
 * on the way out, so src/core owns the types and their defaults.
 */

/** Whose settings: a guild / Slack team, or one channel in it. */
export interface SettingsScope {
  platform: string;
  workspaceId: string;
  /** Absent: the workspace's settings. */
  channelId?: string;
}

/** Validates (and may normalise) a settings value; throws when it is not acceptable. */
export type SettingsParser<T> = (value: unknown) => T;

/** Stored settings with who changed them last, and when. */
export interface SettingsRecord<T> {
  settings: T;
  updatedAt: number;
  updatedBy?: string;
}

/** Options of setSettings / updateSettings. */
export interface SetSettingsOptions<T> {
  parse: SettingsParser<T>;
  /** The platform user id of the admin who made the change (audit). */
  updatedBy?: string;
  now?: number;
}

interface SettingsRow {
  settings: string;
  updated_at: number;
  updated_by: string | null;
}

/** The guild_settings and channel_settings tables. */
export class SettingsStore {
  private readonly getGuild: Database.Statement<[string, string], SettingsRow>;
  private readonly getChannel: Database.Statement<[string, string, string], SettingsRow>;
  private readonly putGuild: Database.Statement<unknown[]>;
  private readonly putChannel: Database.Statement<unknown[]>;
  private readonly deleteGuild: Database.Statement<[string, string]>;
  private readonly deleteChannel: Database.Statement<[string, string, string]>;
  private readonly channelsOf: Database.Statement<[string, string], SettingsRow & { channel_id: string }>;

  constructor(
    private readonly db: Database.Database,
    private readonly clock: () => number = Date.now,
  ) {
    this.getGuild = db.prepare(
      "SELECT settings, updated_at, updated_by FROM guild_settings WHERE platform = ? AND workspace_id = ?",
    );
    this.getChannel = db.prepare(
      `SELECT settings, updated_at, updated_by FROM channel_settings
       WHERE platform = ? AND workspace_id = ? AND channel_id = ?`,
    );
    this.putGuild = db.prepare(
      `INSERT INTO guild_settings (platform, workspace_id, settings, updated_at, updated_by) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (platform, workspace_id) DO UPDATE SET settings = excluded.settings,
         updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
    );
    this.putChannel = db.prepare(
      `INSERT INTO channel_settings (platform, workspace_id, channel_id, settings, updated_at, updated_by)
       VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (platform, workspace_id, channel_id) DO UPDATE SET settings = excluded.settings,
         updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
    );
    this.deleteGuild = db.prepare("DELETE FROM guild_settings WHERE platform = ? AND workspace_id = ?");
    this.deleteChannel = db.prepare(
      "DELETE FROM channel_settings WHERE platform = ? AND workspace_id = ? AND channel_id = ?",
    );
    this.channelsOf = db.prepare(
      `SELECT channel_id, settings, updated_at, updated_by FROM channel_settings
       WHERE platform = ? AND workspace_id = ? ORDER BY channel_id`,
    );
  }

  /**
   * The stored settings of a scope, validated by `parse`; undefined when none were ever set. A stored value
   * that `parse` refuses is "store_corrupt" naming the scope (an operator must look, not a silent reset).
   */
  getSettings<T>(scope: SettingsScope, parse: SettingsParser<T>): SettingsRecord<T> | undefined {
    const row = guard(`reading the settings of ${describe(scope)}`, () => this.read(scope));
    return row === undefined ? undefined : toRecord(row, parse, scope);
  }

  /** Validates `settings` with `options.parse` and stores what it returns (replacing the whole object). */
  setSettings<T>(scope: SettingsScope, settings: T, options: SetSettingsOptions<T>): SettingsRecord<T> {
    const value = validate(settings, options.parse, scope);
    const now = options.now ?? this.clock();
    writeTransaction(this.db, `saving the settings of ${describe(scope)}`, () =>
      this.write(scope, value.json, now, options.updatedBy),
    );
    return record(value.parsed, now, options.updatedBy);
  }

  /**
   * Read-modify-write in one transaction, so two admins changing different options at once both keep their
   * change. `change` gets the current settings (undefined when none) and returns the new ones.
   */
  updateSettings<T>(
    scope: SettingsScope,
    change: (current: T | undefined) => T,
    options: SetSettingsOptions<T>,
  ): SettingsRecord<T> {
    const now = options.now ?? this.clock();
    return writeTransaction(this.db, `updating the settings of ${describe(scope)}`, () => {
      const row = this.read(scope);
      const current = row === undefined ? undefined : toRecord(row, options.parse, scope).settings;
      const value = validate(change(current), options.parse, scope);
      this.write(scope, value.json, now, options.updatedBy);
      return record(value.parsed, now, options.updatedBy);
    });
  }

  /** Removes a scope's settings (back to the defaults); true when there were some. */
  deleteSettings(scope: SettingsScope): boolean {
    return writeTransaction(this.db, `deleting the settings of ${describe(scope)}`, () => {
      const result =
        scope.channelId === undefined
          ? this.deleteGuild.run(scope.platform, scope.workspaceId)
          : this.deleteChannel.run(scope.platform, scope.workspaceId, scope.channelId);
      return result.changes > 0;
    });
  }

  /** Every channel of a workspace that has its own settings, by channel id. */
  listChannelSettings<T>(
    platform: string,
    workspaceId: string,
    parse: SettingsParser<T>,
  ): (SettingsRecord<T> & { channelId: string })[] {
    const rows = guard(`listing channel settings of ${platform} ${workspaceId}`, () =>
      this.channelsOf.all(platform, workspaceId),
    );
    return rows.map((row) => ({
      channelId: row.channel_id,
      ...toRecord(row, parse, { platform, workspaceId, channelId: row.channel_id }),
    }));
  }

  private read(scope: SettingsScope): SettingsRow | undefined {
    return scope.channelId === undefined
      ? this.getGuild.get(scope.platform, scope.workspaceId)
      : this.getChannel.get(scope.platform, scope.workspaceId, scope.channelId);
  }

  private write(scope: SettingsScope, json: string, now: number, updatedBy: string | undefined): void {
    if (scope.channelId === undefined) {
      this.putGuild.run(scope.platform, scope.workspaceId, json, now, updatedBy ?? null);
    } else {
      this.putChannel.run(scope.platform, scope.workspaceId, scope.channelId, json, now, updatedBy ?? null);
    }
  }
}

function describe(scope: SettingsScope): string {
  const where = `${scope.platform} workspace ${scope.workspaceId}`;
  return scope.channelId === undefined ? where : `${where} channel ${scope.channelId}`;
}

function validate<T>(
  settings: T,
  parse: SettingsParser<T>,
  scope: SettingsScope,
): { parsed: T; json: string } {
  let parsed: T;
  try {
    parsed = parse(settings);
  } catch (err) {
    throw new EaselError(
      "invalid_argument",
      `settings for ${describe(scope)} are not valid: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new EaselError("invalid_argument", `settings for ${describe(scope)} must be an object`);
  }
  // JSON.stringify would quietly turn NaN and Infinity into null and drop undefined: refuse the first, since a
  // setting that reads back different from what was saved is a bug waiting; dropping undefined is intended.
  const json = JSON.stringify(parsed, (_key, value: unknown) => {
    if (typeof value === "number" && !Number.isFinite(value)) {
      throw new EaselError("invalid_argument", `settings for ${describe(scope)} contain ${value}, not JSON`);
    }
    if (typeof value === "bigint" || typeof value === "function" || typeof value === "symbol") {
      throw new EaselError(
        "invalid_argument",
        `settings for ${describe(scope)} contain a ${typeof value}, not JSON`,
      );
    }
    return value;
  });
  return { parsed, json };
}

function toRecord<T>(row: SettingsRow, parse: SettingsParser<T>, scope: SettingsScope): SettingsRecord<T> {
  let settings: T;
  try {
    settings = parse(JSON.parse(row.settings));
  } catch (err) {
    throw new EaselError(
      "store_corrupt",
      `stored settings for ${describe(scope)} no longer pass validation: ${
        err instanceof Error ? err.message : String(err)
      }; set them again or delete them`,
      { cause: err },
    );
  }
  return record(settings, row.updated_at, row.updated_by ?? undefined);
}

function record<T>(settings: T, updatedAt: number, updatedBy: string | undefined): SettingsRecord<T> {
  return updatedBy === undefined ? { settings, updatedAt } : { settings, updatedAt, updatedBy };
}
