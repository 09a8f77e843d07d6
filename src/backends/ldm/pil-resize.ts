/**
 * Pillow's `Image.resize` for 8-bit RGB, bit for bit: a separable convolution whose filter widens with the
 * scale when shrinking (antialiasing), coefficients rounded to 22-bit fixed point, horizontal pass first into
 * an 8-bit image, then vertical. The safety checker's CLIP preprocessing (transformers' CLIPImageProcessor,
 * which diffusers runs) resizes with it; sharp (libvips) uses other kernels and rounding, so its 224² input
 * would differ from the reference by a few levels.
 */

/** The resampling filters CLIPImageProcessor configs use: Pillow's codes 2 (bilinear) and 3 (bicubic). */
export type ResampleFilter = "bilinear" | "bicubic";

interface Filter {
  weight(x: number): number;
  support: number;
}

const FILTERS: Readonly<Record<ResampleFilter, Filter>> = {
  bilinear: {
    support: 1,
    weight: (x) => {
      const d = Math.abs(x);
      return d < 1 ? 1 - d : 0;
    },
  },
  // Keys' cubic convolution with a = -0.5, as Pillow has it.
  bicubic: {
    support: 2,
    weight: (x) => {
      const a = -0.5;
      const d = Math.abs(x);
      if (d < 1) return ((a + 2) * d - (a + 3)) * d * d + 1;
      if (d < 2) return (((d - 5) * d + 8) * d - 4) * a;
      return 0;
    },
  },
};

/** 8 bits for the result and 2 for overshoot (the filter has negative lobes) in a 32-bit sum. */
const PRECISION_BITS = 32 - 8 - 2;

/** Per output pixel: the first input pixel, how many it reads, and their fixed-point weights. */
interface Coefficients {
  first: Int32Array;
  count: Int32Array;
  weights: Int32Array;
  stride: number;
}

function coefficients(inSize: number, outSize: number, filter: Filter): Coefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filter.support * filterScale;
  const stride = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * stride);
  const row = new Float64Array(stride);
  // A multiplication by the reciprocal, as Pillow does (a division would round differently).
  const ss = 1 / filterScale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // C's (int) truncates toward zero; both values are ≥ -0.5 here, so Math.trunc is the same.
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let total = 0;
    for (let x = 0; x < xmax; x++) {
      const w = filter.weight((x + xmin - center + 0.5) * ss);
      row[x] = w;
      total += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = total !== 0 ? (row[x] as number) / total : (row[x] as number);
      const fixed = w * (1 << PRECISION_BITS);
      weights[xx * stride + x] = w < 0 ? Math.trunc(fixed - 0.5) : Math.trunc(fixed + 0.5);
    }
    first[xx] = xmin;
    count[xx] = xmax;
  }
  return { first, count, weights, stride };
}

/** The fixed-point sum back to a byte, clamped (Pillow's clip8). */
function clip8(sum: number): number {
  const v = sum >> PRECISION_BITS;
  return Math.max(0, Math.min(v, 255));
}

/** Interleaved RGB bytes. */
export interface Rgb8 {
  width: number;
  height: number;
  data: Uint8Array;
}

/** `image.resize((width, height), resample)` as Pillow computes it for an RGB image. */
export function pilResize(image: Rgb8, width: number, height: number, filter: ResampleFilter): Rgb8 {
  let current = image;
  if (width !== image.width) current = horizontal(current, width, FILTERS[filter]);
  if (height !== image.height) current = vertical(current, height, FILTERS[filter]);
  return current === image ? { ...image, data: image.data.slice() } : current;
}

function horizontal(image: Rgb8, width: number, filter: Filter): Rgb8 {
  const c = coefficients(image.width, width, filter);
  const out = new Uint8Array(width * image.height * 3);
  const half = 1 << (PRECISION_BITS - 1);
  for (let y = 0; y < image.height; y++) {
    const row = y * image.width * 3;
    for (let xx = 0; xx < width; xx++) {
      const first = c.first[xx] as number;
      const n = c.count[xx] as number;
      const k = xx * c.stride;
      let r = half;
      let g = half;
      let b = half;
      for (let x = 0; x < n; x++) {
        const w = c.weights[k + x] as number;
        const p = row + (first + x) * 3;
        // Math.imul keeps C's 32-bit int arithmetic (the sums fit, as in Pillow).
        r += Math.imul(image.data[p] as number, w);
        g += Math.imul(image.data[p + 1] as number, w);
        b += Math.imul(image.data[p + 2] as number, w);
      }
      const o = (y * width + xx) * 3;
      out[o] = clip8(r);
      out[o + 1] = clip8(g);
      out[o + 2] = clip8(b);
    }
  }
  return { width, height: image.height, data: out };
}

function vertical(image: Rgb8, height: number, filter: Filter): Rgb8 {
  const c = coefficients(image.height, height, filter);
  const rowBytes = image.width * 3;
  const out = new Uint8Array(rowBytes * height);
  const half = 1 << (PRECISION_BITS - 1);
  for (let yy = 0; yy < height; yy++) {
    const first = c.first[yy] as number;
    const n = c.count[yy] as number;
    const k = yy * c.stride;
    for (let i = 0; i < rowBytes; i++) {
      let sum = half;
      for (let y = 0; y < n; y++) {
        sum += Math.imul(image.data[(first + y) * rowBytes + i] as number, c.weights[k + y] as number);
      }
      out[yy * rowBytes + i] = clip8(sum);
    }
  }
  return { width: image.width, height, data: out };
}
