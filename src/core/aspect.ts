/**
 * Image sizes from aspect ratios (`--ar 16:9`). A ratio keeps the model's native pixel count (512² for SD 1.x,
 * 768² for SD 2.x v-models), with sides in multiples of 64: every UNet export handles those, while some traced
 * exports fail on latent sizes that do not halve evenly three times.
 */

/** The side multiple sizes derived from a ratio snap to. */
export const ASPECT_SIDE_MULTIPLE = 64;

/** The result of parsing user input: a value, or the reason it was refused. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Parses "W:H" (whole numbers 1..100, at most 4:1 either way) into a ratio, or says why not. */
export function parseAspectRatio(text: string): Parsed<{ w: number; h: number }> {
  const match = /^\s*(\d{1,3})\s*[:x/]\s*(\d{1,3})\s*$/.exec(text);
  const reason = `aspect ratio must look like 16:9 (whole numbers, at most 4:1 either way); got "${text.slice(0, 20)}"`;
  if (!match) return { ok: false, reason };
  const w = Number(match[1]);
  const h = Number(match[2]);
  if (w < 1 || h < 1 || w > 100 || h > 100 || w / h > 4 || h / w > 4) return { ok: false, reason };
  return { ok: true, value: { w, h } };
}

/** Width and height for a ratio at about `baseSide`² pixels, each a multiple of 64 and at least 64. */
export function sizeForAspect(
  ratio: { w: number; h: number },
  baseSide: number,
): { width: number; height: number } {
  const area = baseSide * baseSide;
  const snap = (v: number) =>
    Math.max(ASPECT_SIDE_MULTIPLE, Math.round(v / ASPECT_SIDE_MULTIPLE) * ASPECT_SIDE_MULTIPLE);
  const width = snap(Math.sqrt((area * ratio.w) / ratio.h));
  const height = snap(Math.sqrt((area * ratio.h) / ratio.w));
  return { width, height };
}

/** Parses "WxH" (e.g. 768x512) into a size, or says why not; range checks happen where the limits live. */
export function parseSize(text: string): Parsed<{ width: number; height: number }> {
  const match = /^\s*(\d{1,5})\s*[x×X*]\s*(\d{1,5})\s*$/.exec(text);
  if (!match) return { ok: false, reason: `size must look like 768x512; got "${text.slice(0, 20)}"` };
  return { ok: true, value: { width: Number(match[1]), height: Number(match[2]) } };
}
