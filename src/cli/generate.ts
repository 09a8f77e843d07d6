import { mkdtemp, readFile, rmdir, stat, writeFile } from "node:fs/promises";
import { dirname, extname, join, resolve } from "node:path";
import { nativeSideOf } from "../backends/ldm/model-family.ts";
import {
  listModelNames,
  type ModelFolder,
  readModelFolder,
  resolveModelDir,
} from "../backends/ldm/model-folder.ts";
import type { GenerateParams } from "../backends/ldm/pipeline.ts";
import type { Config } from "../config.ts";
import { describeSize, type Parsed } from "../core/aspect.ts";
import { EaselError, isEaselError } from "../core/errors.ts";
import {
  formatA1111GridParameters,
  formatA1111Parameters,
  type ImageParameters,
} from "../core/parameters.ts";
import {
  flagLabel,
  HARD_LIMITS,
  type PromptFlags,
  parsePromptFlags,
  type RequestOptions,
  showText,
} from "../core/prompt-flags.ts";
import {
  buildRequest,
  DEFAULT_NATIVE_SIDE,
  type RequestContext,
  type RequestInput,
} from "../core/request.ts";
import { effectiveLimits } from "../core/settings.ts";
import { IMAGE_FILE_EXTENSIONS, type ImageFileFormat, imageFileFormat } from "../render/encode-file.ts";
import type { RgbImage } from "../render/png.ts";
import { defaultModelName } from "./models.ts";
import { ProgressBar } from "./progress-bar.ts";
import { count, orRefuse, type PromptSource, readPromptText, UsageError } from "./usage.ts";

/**
 * `easel generate`: one txt2img or img2img call on a local model, written to image files with their settings.
 *
 * The prompt and options go through the bot's own buildRequest (prompt flags, readOptions, the operator's
 * EASEL_MAX_* limits, the pixel limit, sizes in multiples of 8), with options named as the CLI spells them.
 * Everything is checked before onnxruntime is imported or a model loaded; only then does the request get the
 * model's own defaults and native size, as the bot's does once its worker has loaded the model.
 */

/** The options of `easel generate`, as commander parsed them (values are still text). */
export interface GenerateOptions {
  model?: string;
  negative?: string;
  seed?: string;
  steps?: string;
  cfg?: string;
  sampler?: string;
  size?: string;
  ar?: string;
  n?: string;
  init?: string;
  strength?: string;
  out?: string;
  device?: "auto" | "cuda" | "cpu";
  promptFile?: string;
  /** commander's `--no-safety-checker`: false when given. */
  safetyChecker?: boolean;
}

/** The generate options that are request settings, and the field each sets. */
const REQUEST_FIELDS = {
  seed: "seed",
  steps: "steps",
  cfg: "guidance",
  sampler: "sampler",
  size: "size",
  ar: "aspect",
  n: "count",
  strength: "strength",
  negative: "negativePrompt",
  model: "model",
} as const satisfies Partial<Record<keyof GenerateOptions, keyof RequestOptions>>;

/** How a refusal names a field: the CLI option that sets it ("--cfg", "--negative"), else the prompt flag. */
function cliLabel(field: keyof PromptFlags): string {
  const option = Object.entries(REQUEST_FIELDS).find(([, f]) => f === field)?.[0];
  return option === undefined ? flagLabel(field) : `--${option}`;
}

/** The label of a ratio the CLI took from the --init image rather than from the user. */
const INIT_SHAPE = "the --init image's shape";

const CLI_REQUESTER = { platform: "cli", workspaceId: "cli", channelId: "cli", userId: "cli" } as const;

/** The W:H nearest an image's shape that --ar accepts (whole numbers up to 100, at most 4:1). */
function aspectOf(width: number, height: number): string {
  const target = Math.min(4, Math.max(1 / 4, width / height));
  let best = { w: 1, h: 1, error: Number.POSITIVE_INFINITY };
  for (let h = 1; h <= 100; h++) {
    const w = Math.round(target * h);
    if (w < 1 || w > 100 || w / h > 4 || h / w > 4) continue;
    const error = Math.abs(Math.log(w / h / target));
    // Strictly better only, so that the first (smallest) h wins a tie and the ratio comes out reduced.
    if (error < best.error - 1e-12) best = { w, h, error };
  }
  return `${best.w}:${best.h}`;
}

/** "a, b or c". */
const orList = (items: readonly string[]): string =>
  items.length < 2 ? items.join("") : `${items.slice(0, -1).join(", ")} or ${items.at(-1)}`;

/** An image file to write and its format, taken from the extension. */
export interface OutFile {
  path: string;
  format: ImageFileFormat;
}

/**
 * Checks `--out` before any rendering: an extension easel writes, a folder that exists and takes a new entry.
 * The folder is probed by making (and removing) an empty folder in it, because access() answers yes to root
 * even where writing fails (a read-only mount, /sys).
 */
export async function checkOutFile(path: string): Promise<Parsed<OutFile>> {
  const fail = (reason: string): Parsed<OutFile> => ({ ok: false, reason });
  const format = imageFileFormat(path);
  if (format === undefined)
    return fail(
      `--out must end in ${orList(Object.keys(IMAGE_FILE_EXTENSIONS))} (got "${showText(path, 80)}")`,
    );
  const folder = dirname(resolve(path));
  try {
    if (!(await stat(folder)).isDirectory()) return fail(`--out: ${folder} is not a folder`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return fail(
      code === "ENOENT"
        ? `--out: the folder ${folder} does not exist`
        : `--out: ${folder} cannot be read (${code})`,
    );
  }
  const existing = await stat(path).catch(() => undefined);
  if (existing?.isDirectory())
    return fail(`--out ${path} is a folder; give a file name, e.g. ${join(path, "image.png")}`);
  try {
    await rmdir(await mkdtemp(join(folder, ".easel-write-check-")));
  } catch (err) {
    return fail(`--out: cannot write in ${folder} (${(err as NodeJS.ErrnoException).code ?? "error"})`);
  }
  return { ok: true, value: { path, format } };
}

/** Everything `easel generate` checked and decided before loading anything heavy. */
export interface GeneratePlan {
  /** What buildRequest runs on again once the model's defaults and native side are known: the same options,
   * the seed fixed, and the --init image's shape when no size was given. */
  input: RequestInput;
  context: RequestContext;
  /** The model's name and its folder's files (checked to be there: a broken folder fails before loading). */
  model: string;
  folder: ModelFolder;
  out: OutFile;
  init?: { bytes: Buffer; name: string };
  device: "auto" | "cuda" | "cpu";
  /** Run the model's safety checker (off with --no-safety-checker). */
  safetyChecker: boolean;
}

/**
 * Checks the prompt, every option, the model name, --init and --out, without importing onnxruntime; a refusal
 * is a UsageError naming the CLI option and its limit.
 */
export async function planGenerate(
  words: string[],
  options: GenerateOptions,
  config: Config,
  stdin: PromptSource["stdin"],
): Promise<GeneratePlan> {
  const prompt = orRefuse(await readPromptText({ words, promptFile: options.promptFile, stdin }));
  if (prompt === undefined)
    throw new UsageError(
      'a prompt is needed: easel generate "a lighthouse", --prompt-file FILE, or - to read standard input',
    );
  if (options.strength !== undefined && options.init === undefined)
    throw new UsageError("--strength needs --init (the image to start from)");

  // The prompt may carry the bot's flags (a result's canonical prompt pasted back); they decide the model
  // when --model does not, so they are read here as buildRequest will read them.
  const limits = effectiveLimits(config.limits);
  const flags = orRefuse(parsePromptFlags(prompt, limits)).flags;
  const model = options.model ?? flags.model ?? orRefuse(defaultModelName(config));

  const requestOptions: Partial<Record<keyof RequestOptions, string>> = { model };
  for (const [option, field] of Object.entries(REQUEST_FIELDS)) {
    const value = options[option as keyof typeof REQUEST_FIELDS];
    if (value !== undefined) requestOptions[field] = value;
  }
  const input: RequestInput = {
    prompt,
    options: requestOptions,
    optionLabel: (field) => (field === "aspect" && options.ar === undefined ? INIT_SHAPE : cliLabel(field)),
    requester: CLI_REQUESTER,
    ...(options.init === undefined ? {} : { init: { imageId: options.init } }),
  };
  const context: RequestContext = {
    catalog: { ldm: listModelNames(config.modelsDir) },
    limits: config.limits,
    nativeSide: DEFAULT_NATIVE_SIDE,
  };
  const built = buildRequest(input, context);
  if (!built.ok) throw new UsageError(built.reason);
  let { seed } = built.value;
  const images = built.value.count;

  // Image i uses seed + i: a typed seed must leave room for every image; a drawn one is moved down to fit.
  const last = seed + images - 1;
  if (last > HARD_LIMITS.maxSeed) {
    if (options.seed !== undefined || flags.seed !== undefined)
      throw new UsageError(
        `--seed ${seed} with --n ${images} needs seeds up to ${last} (image i uses seed + i); seeds end at ${HARD_LIMITS.maxSeed}`,
      );
    seed = HARD_LIMITS.maxSeed - images + 1;
  }
  const out = orRefuse(await checkOutFile(options.out ?? `easel-${seed}.png`));
  // Once the model is loaded the request is built again with the same seed (a drawn one too).
  const renderOptions: Partial<Record<keyof RequestOptions, string>> = {
    ...requestOptions,
    seed: String(seed),
  };

  let init: GeneratePlan["init"];
  if (options.init !== undefined) {
    const name = options.init;
    let bytes: Buffer;
    try {
      bytes = await readFile(name);
    } catch (err) {
      throw new UsageError(
        `--init ${name} cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"})`,
      );
    }
    const { decodeImage } = await import("../render/decode.ts");
    const image = await decodeImage(bytes, name).catch((err: unknown) => {
      throw isEaselError(err, "invalid_argument") ? new UsageError(`--init ${err.message}`) : err;
    });
    init = { bytes, name };
    // Without a size, the start image keeps its shape, sized like --ar at the model's native pixel count.
    if (options.size === undefined && options.ar === undefined && !flags.size && !flags.aspect)
      renderOptions.aspect = aspectOf(image.width, image.height);
  }
  return {
    input: { ...input, options: renderOptions },
    context,
    model,
    folder: readModelFolder(resolveModelDir(config.modelsDir, model), model),
    out,
    ...(init ? { init } : {}),
    device: options.device ?? config.device,
    safetyChecker: options.safetyChecker !== false,
  };
}

/** The files the images go to: `out` itself for one image; for several, `out` holds the grid. */
function imageFiles(out: string, n: number): string[] {
  if (n === 1) return [out];
  const extension = extname(out);
  const base = out.slice(0, out.length - extension.length);
  return Array.from({ length: n }, (_, i) => `${base}-${i + 1}${extension}`);
}

/** Renders a plan: loads the model, runs the pipeline, writes the files and prints what was done. */
export async function renderPlan(plan: GeneratePlan, config: Config): Promise<void> {
  const [
    { LdmModel },
    { SessionFactory },
    { generate },
    { decodeImage },
    { makeGrid },
    { encodeImageFile },
    { generateParamsFor },
  ] = await Promise.all([
    import("../backends/ldm/ldm-model.ts"),
    import("../backends/ldm/onnx-session.ts"),
    import("../backends/ldm/pipeline.ts"),
    import("../render/decode.ts"),
    import("../render/grid.ts"),
    import("../render/encode-file.ts"),
    import("../backends/ldm/ldm-backend.ts"),
  ]);
  const factory = new SessionFactory({
    device: plan.device,
    deviceId: config.cudaDevice,
    ...(config.threads === undefined ? {} : { intraOpThreads: config.threads }),
    log: (line) => console.error(line),
  });
  const loadStarted = performance.now();
  const model = await LdmModel.load(
    plan.folder,
    factory,
    config.safetyCheckerDir ? { lentSafetyChecker: config.safetyCheckerDir } : {},
  );
  const loadMs = performance.now() - loadStarted;
  try {
    // The request again, now with the model's defaults (SD-Turbo: 1 step, cfg 0) and native side (768 for
    // SD 2.x v-models): nothing the user typed can be refused here, only defaults and sizes change.
    const built = buildRequest(plan.input, {
      ...plan.context,
      modelDefaults: () => ({
        steps: model.defaults.steps,
        guidance: model.defaults.guidance,
        sampler: model.defaults.scheduler,
      }),
      nativeSide: nativeSideOf(model.io.family),
    });
    if (!built.ok) throw new EaselError("invalid_argument", built.reason);
    const request = built.value;
    let init: GenerateParams["init"];
    if (plan.init && request.init) {
      const size = { width: request.width, height: request.height };
      init = {
        image: await decodeImage(plan.init.bytes, plan.init.name, size),
        strength: request.init.strength,
      };
    }
    const params = { ...generateParamsFor(request, init ? { init } : {}), safetyChecker: plan.safetyChecker };
    const bar = new ProgressBar("generating");
    // performance.now() counts from the process's start: what `easel` costs before the first image step.
    let firstStepAt: number | undefined;
    const result = await generate(model, params, {
      onProgress: (p) => {
        firstStepAt ??= performance.now();
        bar.update(p.step, p.total, p.total === 1 ? "step" : "steps");
      },
    });
    bar.finish();

    const settings = (seed: number): ImageParameters => ({
      prompt: request.prompt,
      ...(request.negativePrompt === "" ? {} : { negativePrompt: request.negativePrompt }),
      steps: result.steps,
      sampler: result.scheduler,
      cfgScale: result.guidance,
      seed,
      width: result.width,
      height: result.height,
      model: plan.model,
      ...(result.strength === undefined ? {} : { denoisingStrength: result.strength }),
    });
    const { path, format } = plan.out;
    const files = imageFiles(path, result.images.length);
    const written: string[] = [];
    for (const [i, image] of result.images.entries()) {
      const file = files[i] ?? path;
      await writeFile(
        file,
        await encodeImageFile(image.pixels, format, formatA1111Parameters(settings(image.seed))),
      );
      written.push(file);
    }
    if (result.images.length > 1) {
      const grid: RgbImage = makeGrid(result.images.map((image) => image.pixels));
      const text = formatA1111GridParameters(result.images.map((image) => settings(image.seed)));
      await writeFile(path, await encodeImageFile(grid, format, text));
      written.unshift(`${path} (grid)`);
    }

    const t = result.timings;
    const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
    for (const note of [...built.notes, ...result.notes]) console.log(`note: ${note}`);
    const seeds = result.images.map((image) => image.seed);
    console.log(`${seeds.length === 1 ? "seed" : "seeds"}: ${seeds.join(", ")}`);
    const strength = result.strength === undefined ? "" : `, strength ${result.strength}`;
    console.log(
      `settings: ${describeSize(result.width, result.height)}, ${count(result.steps, "step")}, ${result.scheduler}, cfg ${result.guidance}${strength}, model ${plan.model} (${model.io.family})`,
    );
    console.log(
      `time: ${s(t.totalMs)} on ${model.provider} (text encoder ${s(t.textEncoderMs)}, UNet ${s(t.unetMs)}, VAE ${s(t.vaeMs)}); model loaded in ${s(loadMs)}${firstStepAt === undefined ? "" : `; first step done ${Math.round(firstStepAt)} ms after start`}`,
    );
    console.log(`saved: ${written.join(", ")}`);
    // A flagged image is written black, as diffusers returns it; say which, so nobody hunts for a bug.
    for (const [i, image] of result.images.entries()) {
      if (image.flagged) console.log(`image ${i + 1} flagged by the safety checker (written black)`);
    }
    if (model.safetyChecker && !result.safetyChecked) {
      console.log("safety checker: off (--no-safety-checker)");
    } else if (result.safetyChecked && !result.images.some((image) => image.flagged)) {
      console.log("safety checker: nothing flagged");
    }
  } finally {
    await model.release();
  }
}

/** `easel generate`: plans (every check), then renders. */
export async function generateCommand(
  words: string[],
  options: GenerateOptions,
  config: Config,
  stdin: PromptSource["stdin"],
): Promise<void> {
  await renderPlan(await planGenerate(words, options, config, stdin), config);
}
