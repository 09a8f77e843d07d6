import { z } from "zod";
import { EaselError } from "../../../core/errors.ts";

/** The diffusers scheduler classes easel implements, by their `_class_name`. */
export const SCHEDULER_CLASSES = [
  "DDIMScheduler",
  "PNDMScheduler",
  "EulerDiscreteScheduler",
  "EulerAncestralDiscreteScheduler",
  "DPMSolverMultistepScheduler",
  "LCMScheduler",
] as const;

/** One of the diffusers scheduler classes easel implements. */
export type SchedulerClass = (typeof SCHEDULER_CLASSES)[number];

/** The most inference steps easel accepts for any scheduler (user-facing limit). */
export const MAX_STEPS = 150;

/** A number that may be written as the string "-Infinity"/"Infinity", as diffusers' JSON dumps do. */
const extendedNumber = z.preprocess(
  (v) => (v === "-Infinity" ? Number.NEGATIVE_INFINITY : v === "Infinity" ? Number.POSITIVE_INFINITY : v),
  z.custom<number>((v) => typeof v === "number" && !Number.isNaN(v), {
    message: 'expected a number, "-Infinity" or "Infinity"',
  }),
);

const beta = z.number().gt(0).lt(1);

/**
 * Every `scheduler_config.json` key easel reads, with diffusers' value domains. Keys easel does not know
 * (`_class_name`, `_diffusers_version`, flow-matching options …) are dropped, as `from_config` drops keys a
 * class does not take.
 */
const rawConfigSchema = z.object({
  num_train_timesteps: z.number().int().min(2).max(100_000),
  beta_start: beta,
  beta_end: beta,
  beta_schedule: z.enum(["linear", "scaled_linear", "squaredcos_cap_v2"]),
  trained_betas: z.array(beta).nullable(),
  prediction_type: z.enum(["epsilon", "v_prediction", "sample"]),
  timestep_spacing: z.enum(["linspace", "leading", "trailing"]),
  steps_offset: z.number().int().min(0).max(100_000),
  rescale_betas_zero_snr: z.boolean(),
  set_alpha_to_one: z.boolean(),
  clip_sample: z.boolean(),
  clip_sample_range: z.number().positive(),
  thresholding: z.boolean(),
  dynamic_thresholding_ratio: z.number().gt(0).lte(1),
  sample_max_value: z.number().positive(),
  skip_prk_steps: z.boolean(),
  interpolation_type: z.enum(["linear", "log_linear"]),
  use_karras_sigmas: z.boolean(),
  use_exponential_sigmas: z.boolean(),
  use_beta_sigmas: z.boolean(),
  use_lu_lambdas: z.boolean(),
  use_flow_sigmas: z.boolean(),
  sigma_min: z.number().positive().nullable(),
  sigma_max: z.number().positive().nullable(),
  timestep_type: z.enum(["discrete", "continuous"]),
  final_sigmas_type: z.enum(["zero", "sigma_min"]),
  solver_order: z.number().int().min(1).max(3),
  algorithm_type: z.enum(["dpmsolver", "dpmsolver++", "sde-dpmsolver", "sde-dpmsolver++"]),
  solver_type: z.enum(["midpoint", "heun"]),
  lower_order_final: z.boolean(),
  euler_at_final: z.boolean(),
  lambda_min_clipped: extendedNumber,
  variance_type: z.enum(["learned", "learned_range"]).nullable(),
  original_inference_steps: z.number().int().min(1).max(100_000),
  timestep_scaling: z.number().positive(),
});

/** A resolved scheduler config: diffusers' constructor arguments, keyed as in `scheduler_config.json`. */
export type SchedulerConfig = z.infer<typeof rawConfigSchema>;

/**
 * Values for keys a class does not take, so every scheduler sees one complete config; they are the values that
 * make such a key a no-op (e.g. no Karras sigmas for Euler ancestral, which has no such option).
 */
const NEUTRAL: SchedulerConfig = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: "linear",
  trained_betas: null,
  prediction_type: "epsilon",
  timestep_spacing: "leading",
  steps_offset: 0,
  rescale_betas_zero_snr: false,
  set_alpha_to_one: true,
  clip_sample: false,
  clip_sample_range: 1,
  thresholding: false,
  dynamic_thresholding_ratio: 0.995,
  sample_max_value: 1,
  skip_prk_steps: true,
  interpolation_type: "linear",
  use_karras_sigmas: false,
  use_exponential_sigmas: false,
  use_beta_sigmas: false,
  use_lu_lambdas: false,
  use_flow_sigmas: false,
  sigma_min: null,
  sigma_max: null,
  timestep_type: "discrete",
  final_sigmas_type: "zero",
  solver_order: 2,
  algorithm_type: "dpmsolver++",
  solver_type: "midpoint",
  lower_order_final: true,
  euler_at_final: false,
  lambda_min_clipped: Number.NEGATIVE_INFINITY,
  variance_type: null,
  original_inference_steps: 50,
  timestep_scaling: 10,
};

const COMMON = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: "linear",
  trained_betas: null,
  prediction_type: "epsilon",
  steps_offset: 0,
} as const satisfies Partial<SchedulerConfig>;

const THRESHOLDING = {
  thresholding: false,
  dynamic_thresholding_ratio: 0.995,
  sample_max_value: 1,
} as const satisfies Partial<SchedulerConfig>;

/**
 * Each class's constructor defaults in diffusers v0.35.2, which are also the keys it takes. A hub config
 * without `timestep_spacing` (SD 1.x's PNDM file has none) gets the class default, exactly as diffusers'
 * `from_config`/`from_pretrained` does: leading for DDIM, PNDM and LCM; linspace for Euler, Euler ancestral and
 * DPM-Solver. (A pipeline that swaps schedulers in Python inherits PNDM's registered "leading" instead; easel
 * follows the file, so Euler on SD 1.5 starts at t = 999.)
 */
export const CLASS_DEFAULTS: Record<SchedulerClass, Partial<SchedulerConfig>> = {
  DDIMScheduler: {
    ...COMMON,
    ...THRESHOLDING,
    clip_sample: true,
    set_alpha_to_one: true,
    clip_sample_range: 1,
    timestep_spacing: "leading",
    rescale_betas_zero_snr: false,
  },
  PNDMScheduler: {
    ...COMMON,
    skip_prk_steps: false,
    set_alpha_to_one: false,
    timestep_spacing: "leading",
  },
  EulerDiscreteScheduler: {
    ...COMMON,
    interpolation_type: "linear",
    use_karras_sigmas: false,
    use_exponential_sigmas: false,
    use_beta_sigmas: false,
    sigma_min: null,
    sigma_max: null,
    timestep_spacing: "linspace",
    timestep_type: "discrete",
    rescale_betas_zero_snr: false,
    final_sigmas_type: "zero",
  },
  EulerAncestralDiscreteScheduler: {
    ...COMMON,
    timestep_spacing: "linspace",
    rescale_betas_zero_snr: false,
  },
  DPMSolverMultistepScheduler: {
    ...COMMON,
    ...THRESHOLDING,
    solver_order: 2,
    algorithm_type: "dpmsolver++",
    solver_type: "midpoint",
    lower_order_final: true,
    euler_at_final: false,
    use_karras_sigmas: false,
    use_exponential_sigmas: false,
    use_beta_sigmas: false,
    use_lu_lambdas: false,
    use_flow_sigmas: false,
    final_sigmas_type: "zero",
    lambda_min_clipped: Number.NEGATIVE_INFINITY,
    variance_type: null,
    timestep_spacing: "linspace",
    rescale_betas_zero_snr: false,
  },
  LCMScheduler: {
    ...COMMON,
    ...THRESHOLDING,
    beta_start: 0.00085,
    beta_end: 0.012,
    beta_schedule: "scaled_linear",
    original_inference_steps: 50,
    clip_sample: false,
    clip_sample_range: 1,
    set_alpha_to_one: true,
    timestep_spacing: "leading",
    timestep_scaling: 10,
    rescale_betas_zero_snr: false,
  },
};

/** Options diffusers has that easel does not implement; a config that turns one on is refused, not ignored. */
const UNSUPPORTED: { key: keyof SchedulerConfig; bad: (v: unknown) => boolean; what: string }[] = [
  { key: "thresholding", bad: (v) => v === true, what: "dynamic thresholding" },
  { key: "use_exponential_sigmas", bad: (v) => v === true, what: "exponential sigmas" },
  { key: "use_beta_sigmas", bad: (v) => v === true, what: "beta sigmas" },
  { key: "use_lu_lambdas", bad: (v) => v === true, what: "Lu lambdas" },
  { key: "use_flow_sigmas", bad: (v) => v === true, what: "flow-matching sigmas" },
  { key: "interpolation_type", bad: (v) => v === "log_linear", what: 'interpolation_type "log_linear"' },
  { key: "variance_type", bad: (v) => v !== null, what: "learned variance (variance_type)" },
];

/**
 * Parses a diffusers `scheduler_config.json` object for `schedulerClass`: class defaults, then the file's keys
 * that the class takes, then `overrides` (what a scheduler name implies). Throws `invalid_argument` naming each
 * bad field, or `not_supported` for a valid diffusers option easel does not implement.
 */
export function resolveSchedulerConfig(
  schedulerClass: SchedulerClass,
  raw: unknown,
  overrides: Partial<SchedulerConfig> = {},
): SchedulerConfig {
  const parsed = rawConfigSchema.partial().safeParse(raw ?? {});
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const path = issue.path.map(String).join(".") || "(config)";
      const got = valueAt(raw, issue.path);
      return `${path}: ${issue.message}${got === undefined ? "" : ` (got ${preview(got)})`}`;
    });
    throw new EaselError("invalid_argument", `invalid ${schedulerClass} config: ${problems.join("; ")}`);
  }
  const defaults = CLASS_DEFAULTS[schedulerClass];
  const taken: Partial<SchedulerConfig> = {};
  for (const [key, value] of Object.entries(parsed.data)) {
    if (key in defaults && value !== undefined) Object.assign(taken, { [key]: value });
  }
  const config: SchedulerConfig = { ...NEUTRAL, ...defaults, ...taken, ...overrides };

  for (const { key, bad, what } of UNSUPPORTED) {
    if (key in defaults && bad(config[key])) {
      throw new EaselError(
        "not_supported",
        `${schedulerClass}: ${what} is not supported (config key ${key})`,
      );
    }
  }
  if (config.trained_betas !== null && config.trained_betas.length !== config.num_train_timesteps) {
    throw new EaselError(
      "invalid_argument",
      `invalid ${schedulerClass} config: trained_betas has ${config.trained_betas.length} values but num_train_timesteps is ${config.num_train_timesteps}`,
    );
  }
  if (config.original_inference_steps > config.num_train_timesteps) {
    throw new EaselError(
      "invalid_argument",
      `invalid ${schedulerClass} config: original_inference_steps (${config.original_inference_steps}) exceeds num_train_timesteps (${config.num_train_timesteps})`,
    );
  }
  return config;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let value = root;
  for (const key of path) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
