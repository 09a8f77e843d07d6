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

/**
 * The pixel-count band, as fractions of the native count, in which `sizeForAspect` looks for an exact ratio.
 * Below native a model loses detail fast (3/4 is SD 1.x's familiar 512×384), above it subjects start to
 * repeat; 1.5× is as far as the usual 768×512 for SD 1.x goes. So the band is asymmetric: [0.75, 1.5].
 */
export const ASPECT_PIXEL_BAND = { min: 0.75, max: 1.5 } as const;

/** Equal within floating-point noise: ln(4/3) and −ln(3/4) must tie. */
const EPSILON = 1e-9;

/**
 * Width and height for a ratio at about `baseSide`² pixels, each a multiple of 64 and at least 64. The rule:
 * 1. among sizes whose pixel count is within ASPECT_PIXEL_BAND of `baseSide`², one of exactly the ratio, the
 *    closest to `baseSide`² in pixel count (compared as |ln(pixels / native)|; a tie takes the smaller);
 * 2. else the size of the closest ratio (|ln| of the ratios) among those sizes and the plain rounding of
 *    √(area·w/h) × √(area·h/w) to 64s, ties going to the pixel count closest to native, then the smaller.
 * The plain rounding is a candidate so that a tiny `baseSide`, whose band holds no useful shape, still gets
 * one. Callers apply their pixel limits afterwards (request.ts lowers `baseSide` until the size fits).
 */
export function sizeForAspect(
  ratio: { w: number; h: number },
  baseSide: number,
): { width: number; height: number } {
  const m = ASPECT_SIDE_MULTIPLE;
  const area = baseSide * baseSide;
  const target = ratio.w / ratio.h;
  const snap = (v: number) => Math.max(m, Math.round(v / m) * m);
  const rounded = { width: snap(Math.sqrt(area * target)), height: snap(Math.sqrt(area / target)) };
  const areaDistance = (s: { width: number; height: number }) =>
    Math.abs(Math.log((s.width * s.height) / area));
  const shapeDistance = (s: { width: number; height: number }) => ratioDistance(s.width / s.height, target);

  const band: { width: number; height: number }[] = [];
  const lowest = area * ASPECT_PIXEL_BAND.min;
  const highest = area * ASPECT_PIXEL_BAND.max;
  for (let width = m; width * m <= highest; width += m) {
    for (let height = m; width * height <= highest; height += m) {
      if (width * height >= lowest) band.push({ width, height });
    }
  }
  // Lexicographic comparison of keys, each equal within EPSILON.
  const better =
    (keys: (s: { width: number; height: number }) => number[]) => (a: typeof rounded, b: typeof rounded) => {
      const ka = keys(a);
      const kb = keys(b);
      for (let i = 0; i < ka.length; i++) {
        const d = (ka[i] as number) - (kb[i] as number);
        if (Math.abs(d) > EPSILON) return d < 0 ? a : b;
      }
      return a;
    };
  const exact = band.filter((s) => s.width * ratio.h === s.height * ratio.w);
  if (exact.length > 0) {
    return exact.reduce(better((s) => [areaDistance(s), s.width * s.height]));
  }
  return [rounded, ...band].reduce(better((s) => [shapeDistance(s), areaDistance(s), s.width * s.height]));
}

/** Parses "WxH" (e.g. 768x512) into a size, or says why not; range checks happen where the limits live. */
export function parseSize(text: string): Parsed<{ width: number; height: number }> {
  const match = /^\s*(\d{1,5})\s*[x×X*]\s*(\d{1,5})\s*$/.exec(text);
  if (!match) return { ok: false, reason: `size must look like 768x512; got "${text.slice(0, 20)}"` };
  return { ok: true, value: { width: Number(match[1]), height: Number(match[2]) } };
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/** Ratios people name, as they name them (21:9 rather than 7:3), each with its value width / height. */
const NAMED_RATIOS: readonly { name: string; value: number }[] = [
  [1, 1],
  [5, 4],
  [4, 3],
  [3, 2],
  [16, 10],
  [5, 3],
  [16, 9],
  [7, 4],
  [2, 1],
  [21, 9],
  [3, 1],
  [4, 1],
].flatMap(([w = 1, h = 1]) => {
  const wide = { name: `${w}:${h}`, value: w / h };
  return w === h ? [wide] : [wide, { name: `${h}:${w}`, value: h / w }];
});

/** How far apart two ratios are, symmetric for wide and tall: |ln(a / b)|. */
const ratioDistance = (a: number, b: number): number => Math.abs(Math.log(a / b));

/**
 * A size as people read it, with its real ratio: "768×512 (3:2)", "1024×448 (16:7, about 21:9)". The reduced
 * ratio is always shown; a named ratio within 5% is added as "about" when the size is not exactly one.
 */
export function describeSize(width: number, height: number): string {
  const divisor = gcd(width, height) || 1;
  const exact = `${width / divisor}:${height / divisor}`;
  const value = width / height;
  let nearest: { name: string; value: number } | undefined;
  for (const named of NAMED_RATIOS) {
    if (nearest === undefined || ratioDistance(value, named.value) < ratioDistance(value, nearest.value))
      nearest = named;
  }
  if (nearest !== undefined && ratioDistance(value, nearest.value) < 1e-9)
    return `${width}×${height} (${nearest.name})`;
  const about =
    nearest !== undefined && ratioDistance(value, nearest.value) <= Math.log(1.05)
      ? `, about ${nearest.name}`
      : "";
  return `${width}×${height} (${exact}${about})`;
}
