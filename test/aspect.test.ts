import { describe, expect, it } from "vitest";
import {
  ASPECT_PIXEL_BAND,
  ASPECT_SIDE_MULTIPLE,
  describeSize,
  parseAspectRatio,
  parseSize,
  sizeForAspect,
} from "../src/core/aspect.ts";
import { HARD_LIMITS } from "../src/core/prompt-flags.ts";
import { buildRequest } from "../src/core/request.ts";

function ratioOf(text: string): { w: number; h: number } {
  const parsed = parseAspectRatio(text);
  if (!parsed.ok) throw new Error(parsed.reason);
  return parsed.value;
}

const COMMON = ["1:1", "3:2", "2:3", "4:3", "16:9", "9:16", "21:9", "7:4"] as const;

describe("aspect ratios and sizes", () => {
  // The rule's table: an exact ratio when one lies in the pixel band, else the closest shape.
  it.each([
    ["1:1", 512, 512, 512, "512×512 (1:1)"],
    ["3:2", 512, 576, 384, "576×384 (3:2)"],
    ["2:3", 512, 384, 576, "384×576 (2:3)"],
    ["4:3", 512, 512, 384, "512×384 (4:3)"],
    ["16:9", 512, 704, 384, "704×384 (11:6, about 16:9)"],
    ["9:16", 512, 384, 704, "384×704 (6:11, about 9:16)"],
    ["21:9", 512, 896, 384, "896×384 (21:9)"],
    ["7:4", 512, 768, 448, "768×448 (12:7, about 7:4)"],
    ["1:1", 768, 768, 768, "768×768 (1:1)"],
    ["3:2", 768, 960, 640, "960×640 (3:2)"],
    ["2:3", 768, 640, 960, "640×960 (2:3)"],
    ["4:3", 768, 768, 576, "768×576 (4:3)"],
    ["16:9", 768, 1024, 576, "1024×576 (16:9)"],
    ["9:16", 768, 576, 1024, "576×1024 (9:16)"],
    ["21:9", 768, 1344, 576, "1344×576 (21:9)"],
    ["7:4", 768, 896, 512, "896×512 (7:4)"],
  ])("%s at %i² is %i×%i", (text, base, width, height, described) => {
    expect(sizeForAspect(ratioOf(text), base)).toEqual({ width, height });
    expect(describeSize(width, height)).toBe(described);
  });

  it("keeps sides multiples of 64 and an exact ratio's pixel count within the band", () => {
    for (const base of [256, 512, 640, 768, 1024]) {
      for (const text of [...COMMON, "4:1", "1:4", "5:4", "2:1", "10:7"]) {
        const ratio = ratioOf(text);
        const { width, height } = sizeForAspect(ratio, base);
        expect(width % ASPECT_SIDE_MULTIPLE).toBe(0);
        expect(height % ASPECT_SIDE_MULTIPLE).toBe(0);
        const share = (width * height) / (base * base);
        if (width * ratio.h === height * ratio.w) {
          expect(share).toBeGreaterThanOrEqual(ASPECT_PIXEL_BAND.min);
          expect(share).toBeLessThanOrEqual(ASPECT_PIXEL_BAND.max);
        }
        // Never a worse shape than plain rounding to 64s would give (the rule before exact ratios).
        const plain = [
          Math.sqrt((base * base * ratio.w) / ratio.h),
          Math.sqrt((base * base * ratio.h) / ratio.w),
        ].map((v) => Math.max(64, Math.round(v / 64) * 64));
        const off = (w: number, h: number) => Math.abs(Math.log(w / h / (ratio.w / ratio.h)));
        expect(off(width, height)).toBeLessThanOrEqual(off(plain[0] ?? 0, plain[1] ?? 0) + 1e-9);
      }
    }
  });

  it("picks the exact ratio closest to the native pixel count, the smaller on a tie", () => {
    // 3:2 at 512²: 576×384 (0.84×) is closer than 768×512 (1.5×), both exact and in the band.
    expect(sizeForAspect({ w: 3, h: 2 }, 512)).toEqual({ width: 576, height: 384 });
    // 4:3 at 768²: 768×576 (0.75×) and 1024×768 (4/3×) are equally far in ln; the smaller wins.
    expect(sizeForAspect({ w: 4, h: 3 }, 768)).toEqual({ width: 768, height: 576 });
    // A tiny base has no useful shape in its band: plain rounding still gives a wide one.
    expect(sizeForAspect({ w: 4, h: 1 }, 64)).toEqual({ width: 128, height: 64 });
  });

  it("never exceeds the pixel limit or the side limit once a request is built", () => {
    const requester = { platform: "discord", workspaceId: "g", channelId: "c", userId: "u" } as const;
    for (const nativeSide of [512, 768, 1024, 2048]) {
      for (const maxPixels of [64 * 64, 100_000, 512 * 512, 1024 * 1024, HARD_LIMITS.maxPixels]) {
        for (const text of [...COMMON, "4:1", "1:4"]) {
          const result = buildRequest(
            { prompt: `a cat --ar ${text}`, requester },
            { catalog: { ldm: ["m"] }, nativeSide, limits: { maxPixels }, random: () => 0.5 },
          );
          if (!result.ok) throw new Error(result.reason);
          const { width, height } = result.value;
          expect(width * height).toBeLessThanOrEqual(maxPixels);
          expect(Math.max(width, height)).toBeLessThanOrEqual(HARD_LIMITS.maxSide);
          expect(Math.min(width, height)).toBeGreaterThanOrEqual(HARD_LIMITS.minSide);
        }
      }
    }
  });

  it.each([
    [768, 512, "768×512 (3:2)"],
    [640, 448, "640×448 (10:7, about 3:2)"],
    [1024, 1024, "1024×1024 (1:1)"],
    [1280, 800, "1280×800 (16:10)"],
    [1024, 448, "1024×448 (16:7, about 21:9)"],
    [1088, 768, "1088×768 (17:12)"],
    [64, 2048, "64×2048 (1:32)"],
  ])("describes %i×%i as %j", (width, height, text) => {
    expect(describeSize(width, height)).toBe(text);
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
