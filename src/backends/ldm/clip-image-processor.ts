import { readFileSync } from "node:fs";
import { EaselError } from "../../core/errors.ts";
import { pilResize, type ResampleFilter, type Rgb8 } from "./pil-resize.ts";

/**
 * transformers' CLIPImageProcessor, as diffusers runs it before the safety checker, read from a model's
 * `feature_extractor/preprocessor_config.json`: resize the shortest edge (Pillow's filter), center crop,
 * rescale to [0, 1] in float64 then float32, normalise with the config's mean and std in float32, channels
 * first. Each step rounds as transformers does, so `clip_input` equals the reference's.
 */

export interface ClipImageConfig {
  /** The shortest edge after resizing; undefined: no resize. */
  shortestEdge: number | undefined;
  resample: ResampleFilter;
  /** Height and width of the center crop; undefined: no crop. */
  crop: { height: number; width: number } | undefined;
  /** undefined: no rescale. */
  rescaleFactor: number | undefined;
  /** undefined: no normalisation. */
  mean: [number, number, number] | undefined;
  std: [number, number, number] | undefined;
}

/** Pillow's resampling codes that CLIP configs use. */
const RESAMPLE: Readonly<Record<number, ResampleFilter>> = { 2: "bilinear", 3: "bicubic" };

/** Reads and checks a preprocessor_config.json; errors name the file and the field. */
export function readClipImageConfig(path: string): ClipImageConfig {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  } catch (cause) {
    throw new EaselError("model_file", `${path} cannot be read as JSON`, { cause });
  }
  const fail = (what: string): never => {
    throw new EaselError("model_file", `${path}: ${what}`);
  };
  const flag = (name: string) => raw[name] === undefined || raw[name] === true;
  const side = (value: unknown, name: string): number =>
    typeof value === "number" && Number.isInteger(value) && value > 0 && value <= 4096
      ? value
      : fail(`${name} must be a positive whole number of pixels`);

  let shortestEdge: number | undefined;
  if (flag("do_resize")) {
    const size = raw.size;
    if (typeof size === "number") shortestEdge = side(size, "size");
    else if (typeof size === "object" && size !== null && "shortest_edge" in size) {
      shortestEdge = side((size as { shortest_edge: unknown }).shortest_edge, "size.shortest_edge");
    } else fail('size must be a number or {"shortest_edge": n} (CLIP resizes the shortest edge)');
  }
  const resample = RESAMPLE[typeof raw.resample === "number" ? raw.resample : 3];
  if (!resample) fail(`resample ${String(raw.resample)} is not supported (2: bilinear, 3: bicubic)`);

  let crop: ClipImageConfig["crop"];
  if (flag("do_center_crop")) {
    const size = raw.crop_size;
    if (typeof size === "number") crop = { height: side(size, "crop_size"), width: side(size, "crop_size") };
    else if (typeof size === "object" && size !== null) {
      const { height, width } = size as { height?: unknown; width?: unknown };
      crop = { height: side(height, "crop_size.height"), width: side(width, "crop_size.width") };
    } else fail("crop_size must be a number or {height, width}");
  }
  const triple = (name: string): [number, number, number] => {
    const value = raw[name];
    return Array.isArray(value) && value.length === 3 && value.every((v) => typeof v === "number")
      ? (value as [number, number, number])
      : fail(`${name} must be three numbers`);
  };
  const normalise = flag("do_normalize");
  const rescale = flag("do_rescale");
  const factor = raw.rescale_factor ?? 1 / 255;
  if (rescale && typeof factor !== "number") fail("rescale_factor must be a number");
  return {
    shortestEdge,
    resample: resample as ResampleFilter,
    crop,
    rescaleFactor: rescale ? (factor as number) : undefined,
    mean: normalise ? triple("image_mean") : undefined,
    std: normalise ? triple("image_std") : undefined,
  };
}

/** The (height, width) transformers resizes to: the shortest edge to `edge`, the other in proportion, truncated. */
function resizedSize(width: number, height: number, edge: number): { width: number; height: number } {
  const short = Math.min(width, height);
  const long = Math.max(width, height);
  const newLong = Math.trunc((edge * long) / short);
  return width <= height ? { width: edge, height: newLong } : { width: newLong, height: edge };
}

/** transformers' center_crop: the top-left corner rounded down; zero padding where the image is smaller. */
function centerCrop(image: Rgb8, height: number, width: number): Rgb8 {
  const out = new Uint8Array(width * height * 3);
  const top = Math.floor((image.height - height) / 2);
  const left = Math.floor((image.width - width) / 2);
  for (let y = 0; y < height; y++) {
    const sy = y + top;
    if (sy < 0 || sy >= image.height) continue;
    for (let x = 0; x < width; x++) {
      const sx = x + left;
      if (sx < 0 || sx >= image.width) continue;
      out.set(
        image.data.subarray((sy * image.width + sx) * 3, (sy * image.width + sx) * 3 + 3),
        (y * width + x) * 3,
      );
    }
  }
  return { width, height, data: out };
}

/** The checker's `clip_input` [count, 3, h, w] for RGB images (each the uint8 image diffusers makes). */
export function clipPixelValues(
  config: ClipImageConfig,
  images: readonly Rgb8[],
): { data: Float32Array; height: number; width: number } {
  const prepared = images.map((image) => {
    let current = image;
    if (config.shortestEdge !== undefined) {
      const size = resizedSize(current.width, current.height, config.shortestEdge);
      current = pilResize(current, size.width, size.height, config.resample);
    }
    if (config.crop) current = centerCrop(current, config.crop.height, config.crop.width);
    return current;
  });
  const first = prepared[0];
  const height = first?.height ?? 0;
  const width = first?.width ?? 0;
  const plane = height * width;
  const data = new Float32Array(prepared.length * 3 * plane);
  const mean = config.mean?.map(Math.fround);
  const std = config.std?.map(Math.fround);
  prepared.forEach((image, n) => {
    if (image.width !== width || image.height !== height) {
      throw new EaselError("internal", "safety checker inputs of different sizes in one batch");
    }
    for (let c = 0; c < 3; c++) {
      const base = (n * 3 + c) * plane;
      for (let p = 0; p < plane; p++) {
        let v = image.data[p * 3 + c] as number;
        if (config.rescaleFactor !== undefined) v = Math.fround(v * config.rescaleFactor);
        if (mean && std) v = Math.fround(Math.fround(v - (mean[c] as number)) / (std[c] as number));
        data[base + p] = v;
      }
    }
  });
  return { data, height, width };
}
