import { describe, expect, it } from "vitest";
import { parseAspectRatio, parseSize, sizeForAspect } from "../src/core/aspect.ts";

describe("aspect ratios and sizes", () => {
  it.each([
    ["1:1", 512, 512, 512],
    ["3:2", 512, 640, 448],
    ["2:3", 512, 448, 640],
    ["16:9", 512, 704, 384],
    ["16:9", 768, 1024, 576],
  ])("%s at %i² is %i×%i", (text, base, width, height) => {
    const parsed = parseAspectRatio(text);
    if (!parsed.ok) throw new Error(parsed.reason);
    expect(sizeForAspect(parsed.value, base)).toEqual({ width, height });
  });

  it.each(["", "16", "0:1", "5:1", "1:9", "a:b", "1000:1", "-1:1"])("refuses the ratio %j", (text) => {
    const parsed = parseAspectRatio(text);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.reason).toContain("16:9");
  });

  it("parses WxH and refuses anything else with the expected form", () => {
    expect(parseSize("768x512")).toEqual({ ok: true, value: { width: 768, height: 512 } });
    expect(parseSize(" 64 × 128 ")).toEqual({ ok: true, value: { width: 64, height: 128 } });
    const bad = parseSize("big");
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.reason).toContain("768x512");
  });
});
