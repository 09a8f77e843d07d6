import { EaselError } from "../../../core/errors.ts";
import { resolveSchedulerConfig, type SchedulerClass, type SchedulerConfig } from "./config.ts";
import { type DdimOptions, DdimScheduler } from "./ddim.ts";
import { DpmSolverMultistepScheduler } from "./dpmpp-2m.ts";
import { EulerScheduler } from "./euler.ts";
import { EulerAncestralScheduler } from "./euler-ancestral.ts";
import { LcmScheduler } from "./lcm.ts";
import { PndmScheduler } from "./pndm.ts";
import { SCHEDULER_NAMES, type Scheduler, type SchedulerName } from "./types.ts";

export { MAX_STEPS, SCHEDULER_CLASSES, type SchedulerClass, type SchedulerConfig } from "./config.ts";
export { SCHEDULER_NAMES, type Scheduler, type SchedulerName, type StepOutput } from "./types.ts";

/** Other spellings accepted for a name (the golden files call SD-Turbo's scheduler `euler_trailing_sd_turbo`). */
export const SCHEDULER_ALIASES: Readonly<Record<string, SchedulerName>> = {
  euler_trailing_sd_turbo: "euler_trailing",
};

/** Options for `createScheduler` that diffusers passes to `step` rather than keeps in the config. */
export type SchedulerOptions = DdimOptions;

interface Spec {
  readonly schedulerClass: SchedulerClass;
  /** What the name means beyond the model's config (which otherwise applies as diffusers' `from_config`). */
  readonly overrides: Partial<SchedulerConfig>;
  create(name: SchedulerName, config: SchedulerConfig, options: SchedulerOptions): Scheduler;
}

const DPMPP_2M = {
  algorithm_type: "dpmsolver++",
  solver_order: 2,
} as const satisfies Partial<SchedulerConfig>;

const SPECS: Record<SchedulerName, Spec> = {
  ddim: {
    schedulerClass: "DDIMScheduler",
    overrides: {},
    create: (name, config, options) => new DdimScheduler(name, config, options),
  },
  pndm: {
    schedulerClass: "PNDMScheduler",
    // easel's PNDM is PLMS (what SD configs ask for); the PRK warm-up is not implemented.
    overrides: { skip_prk_steps: true },
    create: (name, config) => new PndmScheduler(name, config),
  },
  euler: {
    schedulerClass: "EulerDiscreteScheduler",
    overrides: {},
    create: (name, config) => new EulerScheduler(name, config),
  },
  euler_ancestral: {
    schedulerClass: "EulerAncestralDiscreteScheduler",
    overrides: {},
    create: (name, config) => new EulerAncestralScheduler(name, config),
  },
  dpmpp_2m: {
    schedulerClass: "DPMSolverMultistepScheduler",
    overrides: { ...DPMPP_2M, use_karras_sigmas: false },
    create: (name, config) => new DpmSolverMultistepScheduler(name, config),
  },
  dpmpp_2m_karras: {
    schedulerClass: "DPMSolverMultistepScheduler",
    overrides: { ...DPMPP_2M, use_karras_sigmas: true },
    create: (name, config) => new DpmSolverMultistepScheduler(name, config),
  },
  lcm: {
    schedulerClass: "LCMScheduler",
    overrides: {},
    create: (name, config) => new LcmScheduler(name, config),
  },
  euler_trailing: {
    schedulerClass: "EulerDiscreteScheduler",
    // SD-Turbo's setting: start from the very last training timestep even with one step.
    overrides: { timestep_spacing: "trailing" },
    create: (name, config) => new EulerScheduler(name, config),
  },
};

/** The canonical name for `name` (trimmed, case-insensitive, aliases resolved), or undefined if unknown. */
export function schedulerNameOf(name: string): SchedulerName | undefined {
  const key = name.trim().toLowerCase();
  if ((SCHEDULER_NAMES as readonly string[]).includes(key)) return key as SchedulerName;
  // Own properties only: "constructor" or "__proto__" must not reach Object.prototype.
  return Object.hasOwn(SCHEDULER_ALIASES, key) ? SCHEDULER_ALIASES[key] : undefined;
}

/**
 * Builds the scheduler called `name` from a model's diffusers `scheduler_config.json` object (whatever class it
 * was saved for), as `SchedulerClass.from_config(config)` would, plus what the name implies. Throws
 * `unknown_scheduler` listing every valid name, or `invalid_argument`/`not_supported` for a bad config.
 */
export function createScheduler(name: string, config: unknown, options: SchedulerOptions = {}): Scheduler {
  const canonical = schedulerNameOf(name);
  if (canonical === undefined) {
    throw new EaselError(
      "unknown_scheduler",
      `unknown scheduler "${name.slice(0, 60)}"; valid names: ${SCHEDULER_NAMES.join(", ")}`,
    );
  }
  const spec = SPECS[canonical];
  return spec.create(canonical, resolvedConfig(canonical, spec, config), options);
}

/**
 * Resolved configs by sampler and config text: checking and completing a config costs about a millisecond, and
 * the pipeline creates one scheduler per image of every call from the same few configs.
 */
const RESOLVED = new Map<string, SchedulerConfig>();
const RESOLVED_KEEP = 64;

function resolvedConfig(
  name: SchedulerName,
  spec: (typeof SPECS)[SchedulerName],
  config: unknown,
): SchedulerConfig {
  const key = `${name}\n${JSON.stringify(config)}`;
  let resolved = RESOLVED.get(key);
  if (resolved === undefined) {
    resolved = resolveSchedulerConfig(spec.schedulerClass, config, spec.overrides);
    if (RESOLVED.size >= RESOLVED_KEEP) RESOLVED.clear();
    RESOLVED.set(key, resolved);
  }
  return resolved;
}

/**
 * The easel name for a diffusers class and its config (a model's own default scheduler), e.g.
 * EulerDiscreteScheduler with trailing spacing → "euler_trailing"; undefined for a class easel lacks.
 */
export function schedulerNameForClass(className: string, config: unknown = {}): SchedulerName | undefined {
  const fields = (typeof config === "object" && config !== null ? config : {}) as Record<string, unknown>;
  switch (className) {
    case "DDIMScheduler":
      return "ddim";
    case "PNDMScheduler":
      return "pndm";
    case "EulerDiscreteScheduler":
      return fields.timestep_spacing === "trailing" ? "euler_trailing" : "euler";
    case "EulerAncestralDiscreteScheduler":
      return "euler_ancestral";
    case "DPMSolverMultistepScheduler":
      return fields.use_karras_sigmas === true ? "dpmpp_2m_karras" : "dpmpp_2m";
    case "LCMScheduler":
      return "lcm";
    default:
      return undefined;
  }
}

/**
 * The scheduler a model folder asks for: its `scheduler_config.json` `_class_name` with that config. Throws
 * `unknown_scheduler` for a class easel does not implement.
 */
export function createSchedulerForClass(
  className: string,
  config: unknown,
  options: SchedulerOptions = {},
): Scheduler {
  const name = schedulerNameForClass(className, config);
  if (name === undefined) {
    throw new EaselError(
      "unknown_scheduler",
      `scheduler class "${className.slice(0, 60)}" is not supported; easel has ${SCHEDULER_NAMES.join(", ")}`,
    );
  }
  return createScheduler(name, config, options);
}
