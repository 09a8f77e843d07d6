import { describe, expect, it } from "vitest";
import { noiseSchedule } from "../../src/backends/ldm/schedulers/base.ts";
import { resolveSchedulerConfig } from "../../src/backends/ldm/schedulers/config.ts";
import {
  createScheduler,
  createSchedulerForClass,
  type Scheduler,
  schedulerNameOf,
} from "../../src/backends/ldm/schedulers/index.ts";
import { loadGolden, toFloat32Array } from "./golden-dir.ts";

interface SchedulerEntry {
  class: string;
  config: Record<string, unknown>;
}
interface SchedulerCase {
  scheduler: string;
  class: string;
  num_inference_steps: number;
  timesteps: number[];
  timesteps_dtype: "int64" | "float32";
  sigmas?: number[];
  init_noise_sigma: number;
}
interface SchedulersGolden {
  base_config_sd15: Record<string, unknown>;
  schedulers: Record<string, SchedulerEntry>;
  betas_float32?: number[];
  alphas_cumprod_float32?: number[];
  cases: SchedulerCase[];
}

const golden = loadGolden<SchedulersGolden>("schedulers.json");

/** Builds the case's scheduler from the file's resolved config, by easel name or else by diffusers class. */
function build(c: SchedulerCase): Scheduler {
  const entry = golden.schedulers[c.scheduler];
  const config = entry?.config ?? golden.base_config_sd15;
  if (schedulerNameOf(c.scheduler) !== undefined) return createScheduler(c.scheduler, config);
  return createSchedulerForClass(entry?.class ?? c.class, config);
}

/** Largest |a - b| / max(1e-30, |b|) over two equally long arrays. */
function maxRelativeError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const w = want[i] as number;
    const err = Math.abs((got[i] as number) - w) / Math.max(1e-30, Math.abs(w));
    if (!(err <= worst)) worst = err;
  }
  return worst;
}

describe("scheduler tables match diffusers v0.35.2 (schedulers.json)", () => {
  it("has cases to check", () => {
    expect(golden.cases.length).toBeGreaterThan(0);
  });

  it.runIf(golden.betas_float32 !== undefined)("computes SD 1.5 betas bit-exactly as torch float32", () => {
    const schedule = noiseSchedule(resolveSchedulerConfig("PNDMScheduler", golden.base_config_sd15));
    expect(schedule.betas).toEqual(toFloat32Array(golden.betas_float32 ?? []));
  });

  it.runIf(golden.alphas_cumprod_float32 !== undefined)(
    "computes SD 1.5 alphas_cumprod bit-exactly as torch float32",
    () => {
      const schedule = noiseSchedule(resolveSchedulerConfig("PNDMScheduler", golden.base_config_sd15));
      expect(schedule.alphasCumprod).toEqual(toFloat32Array(golden.alphas_cumprod_float32 ?? []));
    },
  );

  it.each(golden.cases.map((c) => [`${c.scheduler} steps=${c.num_inference_steps}`, c] as const))(
    "%s",
    (_label, c) => {
      const scheduler = build(c);
      scheduler.setTimesteps(c.num_inference_steps);

      // Timesteps are exact: int64 ones as integers, float32 ones as the same float32.
      const want = c.timesteps_dtype === "float32" ? [...toFloat32Array(c.timesteps)] : c.timesteps;
      expect(scheduler.timestepKind).toBe(c.timesteps_dtype === "float32" ? "float" : "int");
      expect([...scheduler.timesteps]).toEqual(want);

      if (c.sigmas === undefined) {
        expect(scheduler.sigmas).toBeUndefined();
      } else {
        const sigmas = scheduler.sigmas;
        expect(sigmas).toBeDefined();
        expect(sigmas?.length).toBe(c.sigmas.length);
        // float32 sigmas: bit-exact in practice; a few ulps of slack for libm differences in log/pow.
        expect(maxRelativeError(sigmas ?? [], toFloat32Array(c.sigmas))).toBeLessThanOrEqual(1e-6);
      }

      expect(Math.abs(scheduler.initNoiseSigma - c.init_noise_sigma)).toBeLessThanOrEqual(
        1e-6 * Math.max(1, Math.abs(c.init_noise_sigma)),
      );
    },
  );
});
