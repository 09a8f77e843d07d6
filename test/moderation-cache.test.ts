import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compileModerationRules, moderationCompilations } from "../src/core/moderation.ts";
import { buildRequest, type Requester } from "../src/core/request.ts";
import { Store } from "../src/store/index.ts";
import { storeSettingsPort } from "../src/store/settings-port.ts";

const requester: Requester = { platform: "discord", workspaceId: "g1", channelId: "c1", userId: "u1" };
const catalog = { ldm: ["sd15"] };

describe("compiled moderation rules", () => {
  it("compiles equal lists once, whatever object holds them, and changed lists again", () => {
    const before = moderationCompilations();
    const first = compileModerationRules({ bannedWords: ["unit-a"], bannedPatterns: ["x+y"] });
    const again = compileModerationRules({ bannedWords: ["unit-a"], bannedPatterns: ["x+y"] });
    expect(again).toBe(first);
    expect(moderationCompilations() - before).toBe(1);
    expect(compileModerationRules({ bannedWords: ["unit-a"], bannedPatterns: ["x+z"] })).not.toBe(first);
    // The same text as a word and as a pattern are different rules.
    compileModerationRules({ bannedWords: ["unit-b"], bannedPatterns: [] });
    compileModerationRules({ bannedWords: [], bannedPatterns: ["unit-b"] });
    expect(moderationCompilations() - before).toBe(4);
  });

  it("compiles a guild's rules once per settings change, though the store gives fresh settings each prompt", () => {
    const dir = mkdtempSync(join(tmpdir(), "easel-moderation-"));
    const store = Store.open(dir);
    try {
      const port = storeSettingsPort(store, { limits: {}, openaiCaps: { perUser: 0, perGuild: 0 } });
      const save = (bannedWords: string[]): void => {
        const guild = { ...port.guild("discord", "g1"), bannedWords };
        expect(port.saveGuild("discord", "g1", guild, "admin")).toBeUndefined();
      };
      // As the bot does: the guild's settings are read from the store for every prompt.
      const verdict = (prompt: string): string => {
        const built = buildRequest({ prompt, requester }, { catalog, guild: port.guild("discord", "g1") });
        return built.ok ? "ok" : built.code;
      };
      const before = moderationCompilations();
      save(["cachegore"]); // saving checks the rules: that is the one compilation
      // What made a cache keyed by the settings object miss every time.
      expect(port.guild("discord", "g1")).not.toBe(port.guild("discord", "g1"));
      for (let k = 0; k < 5; k++) expect(verdict(`a cachegore scene, take ${k}`)).toBe("banned_content");
      expect(verdict("a calm scene")).toBe("ok");
      expect(moderationCompilations() - before).toBe(1);

      save(["cacheblood"]);
      for (let k = 0; k < 5; k++) expect(verdict(`a cacheblood scene, take ${k}`)).toBe("banned_content");
      expect(verdict("a cachegore scene")).toBe("ok");
      expect(moderationCompilations() - before).toBe(2);
    } finally {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
