import { describe, expect, it } from "vitest";
import { noiseSchedule } from "../src/backends/ldm/schedulers/base.ts";
import { resolveSchedulerConfig } from "../src/backends/ldm/schedulers/config.ts";
import {
  createScheduler,
  createSchedulerForClass,
  SCHEDULER_NAMES,
  type Scheduler,
  schedulerNameForClass,
} from "../src/backends/ldm/schedulers/index.ts";
import { TorchGenerator } from "../src/backends/ldm/torch-random.ts";
import { type EaselErrorCode, isEaselError } from "../src/core/errors.ts";
import { SD15_SCHEDULER_CONFIG } from "./support.ts";

const SD15 = SD15_SCHEDULER_CONFIG;

function thrown(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error("expected an error, none was thrown");
}

function expectEaselError(fn: () => unknown, code: EaselErrorCode, ...fragments: string[]): void {
  const error = thrown(fn);
  expect(isEaselError(error, code), `${error.name}: ${error.message}`).toBe(true);
  for (const fragment of fragments) expect(error.message).toContain(fragment);
}

/** Runs a whole fake denoising loop and returns the final latents. */
function run(scheduler: Scheduler, steps: number, seed = 7): Float32Array {
  scheduler.setTimesteps(steps);
  const generator = new TorchGenerator(seed);
  let latents: Float32Array = generator.randn(64).map((v) => v * scheduler.initNoiseSigma);
  for (let i = 0; i < scheduler.timesteps.length; i++) {
    const input = scheduler.scaleModelInput(latents, i);
    const eps = input.map((x, j) => 0.2 * x + 0.01 * Math.sin(j + scheduler.timestepForUnet(i) / 100));
    latents = scheduler.step(eps, i, latents, generator).prevSample;
  }
  return latents;
}

describe("createScheduler", () => {
  it("rejects an unknown name with a message listing every valid name", () => {
    const error = thrown(() => createScheduler("euler_a", SD15));
    expect(isEaselError(error, "unknown_scheduler")).toBe(true);
    expect(error.message).toContain('"euler_a"');
    for (const name of SCHEDULER_NAMES) expect(error.message).toContain(name);
  });

  it.each(["constructor", "__proto__", "toString", "hasOwnProperty"])(
    "rejects the inherited property name %s like any unknown name",
    (name) => {
      const error = thrown(() => createScheduler(name, SD15));
      expect(isEaselError(error, "unknown_scheduler")).toBe(true);
    },
  );

  it("accepts names case-insensitively and the golden alias for SD-Turbo's Euler", () => {
    expect(createScheduler(" Euler_Ancestral ", SD15).name).toBe("euler_ancestral");
    const turbo = createScheduler("euler_trailing_sd_turbo", SD15);
    expect(turbo.name).toBe("euler_trailing");
    turbo.setTimesteps(1);
    expect(turbo.timesteps).toEqual([999]);
  });

  it("gives each class its diffusers default spacing when the hub config has none", () => {
    const euler = createScheduler("euler", SD15);
    euler.setTimesteps(20);
    expect(euler.timesteps[0]).toBe(999); // linspace
    const pndm = createScheduler("pndm", SD15);
    pndm.setTimesteps(20);
    expect(pndm.timesteps.slice(0, 3)).toEqual([951, 901, 901]); // leading + steps_offset, PLMS repeat
    const dpm = createScheduler("dpmpp_2m", SD15);
    dpm.setTimesteps(4);
    expect(dpm.timesteps).toEqual([999, 749, 500, 250]); // round(linspace(0, 999, 5))[::-1][:-1], half to even
  });

  it("ignores keys the chosen class does not take, as diffusers' from_config does", () => {
    const ancestral = createScheduler("euler_ancestral", {
      ...SD15,
      use_karras_sigmas: true,
      junk: { a: 1 },
    });
    expect(ancestral.config.use_karras_sigmas).toBe(false);
    expect(ancestral.config).not.toHaveProperty("junk");
  });

  it("lets the name decide what it implies over the model's config", () => {
    const config = { ...SD15, _class_name: "DPMSolverMultistepScheduler", use_karras_sigmas: true };
    expect(createScheduler("dpmpp_2m", config).config.use_karras_sigmas).toBe(false);
    expect(createScheduler("euler_trailing", SD15).config.timestep_spacing).toBe("trailing");
  });

  it("maps a model's diffusers class to the matching name", () => {
    expect(schedulerNameForClass("PNDMScheduler")).toBe("pndm");
    expect(schedulerNameForClass("EulerDiscreteScheduler", { timestep_spacing: "trailing" })).toBe(
      "euler_trailing",
    );
    expect(schedulerNameForClass("DPMSolverMultistepScheduler", { use_karras_sigmas: true })).toBe(
      "dpmpp_2m_karras",
    );
    expect(createSchedulerForClass("LCMScheduler", SD15).name).toBe("lcm");
    expectEaselError(
      () => createSchedulerForClass("UniPCMultistepScheduler", SD15),
      "unknown_scheduler",
      "UniPC",
    );
  });
});

describe("setTimesteps", () => {
  it.each(
    SCHEDULER_NAMES.flatMap((name) =>
      [0, 151, Number.NaN, 2.5, -1, Number.POSITIVE_INFINITY].map((n) => [name, n]),
    ),
  )("%s refuses %s steps naming the range 1..150", (name, steps) => {
    const scheduler = createScheduler(name as string, SD15);
    expectEaselError(() => scheduler.setTimesteps(steps as number), "invalid_argument", "1..150");
  });

  it.each(SCHEDULER_NAMES.filter((n) => n !== "lcm"))("%s accepts 1 and 150 steps", (name) => {
    const scheduler = createScheduler(name, SD15);
    scheduler.setTimesteps(1);
    expect(scheduler.timesteps.length).toBeGreaterThanOrEqual(1);
    scheduler.setTimesteps(150);
    expect(scheduler.timesteps.length).toBeGreaterThanOrEqual(150);
  });

  it("limits LCM to original_inference_steps, as diffusers does", () => {
    const lcm = createScheduler("lcm", SD15);
    lcm.setTimesteps(50);
    expect(lcm.timesteps).toHaveLength(50);
    expectEaselError(() => lcm.setTimesteps(51), "invalid_argument", "1..50", "original_inference_steps");
  });

  it("keeps diffusers' extra trailing timestep where np.arange overshoots (61 steps → 62 timesteps)", () => {
    const turbo = createScheduler("euler_trailing", SD15);
    turbo.setTimesteps(61);
    expect(turbo.timesteps).toHaveLength(62);
    expect(turbo.timesteps.at(-1)).toBe(-1);
    expect(turbo.sigmas).toHaveLength(63);
  });
});

describe("scheduler config validation", () => {
  it.each([
    ["beta_schedule", { beta_schedule: "cubic" }, "cubic"],
    ["num_train_timesteps", { num_train_timesteps: -5 }, "-5"],
    ["prediction_type", { prediction_type: "flow" }, "flow"],
    ["timestep_spacing", { timestep_spacing: "middle" }, "middle"],
    ["steps_offset", { steps_offset: 1.5 }, "1.5"],
    ["beta_start", { beta_start: "0.00085" }, '"0.00085"'],
    ["trained_betas", { trained_betas: [0.1, "x"] }, '"x"'],
  ])("names the bad field %s and its value", (field, patch, shown) => {
    expectEaselError(() => createScheduler("ddim", { ...SD15, ...patch }), "invalid_argument", field, shown);
  });

  it("refuses a config that is not an object", () => {
    expectEaselError(() => createScheduler("euler", "scaled_linear"), "invalid_argument", "expected object");
  });

  it("refuses trained_betas whose length does not match num_train_timesteps", () => {
    expectEaselError(
      () => createScheduler("euler", { ...SD15, trained_betas: [0.001, 0.002] }),
      "invalid_argument",
      "trained_betas",
      "1000",
    );
  });

  it("refuses valid diffusers options it does not implement instead of ignoring them", () => {
    expectEaselError(
      () => createScheduler("ddim", { ...SD15, thresholding: true }),
      "not_supported",
      "thresholding",
    );
    expectEaselError(
      () => createScheduler("euler", { ...SD15, interpolation_type: "log_linear" }),
      "not_supported",
      "log_linear",
    );
    expectEaselError(
      () => createScheduler("euler_ancestral", { ...SD15, prediction_type: "sample" }),
      "not_supported",
      "sample",
    );
  });

  it("reads -Infinity written as a string, as diffusers dumps lambda_min_clipped", () => {
    const dpm = createScheduler("dpmpp_2m", { ...SD15, lambda_min_clipped: "-Infinity" });
    expect(dpm.config.lambda_min_clipped).toBe(Number.NEGATIVE_INFINITY);
  });

  it("computes squaredcos_cap_v2, linear and trained betas", () => {
    for (const patch of [
      { beta_schedule: "squaredcos_cap_v2" },
      { beta_schedule: "linear", beta_start: 0.0001, beta_end: 0.02 },
      { trained_betas: Array.from({ length: 1000 }, (_, i) => 0.0001 + i * 0.00002) },
    ]) {
      const latents = run(createScheduler("euler", { ...SD15, ...patch }), 10);
      expect(latents.every(Number.isFinite)).toBe(true);
    }
  });
});

describe("stepping", () => {
  it.each(SCHEDULER_NAMES)("%s never mutates its inputs and is reproducible after setTimesteps", (name) => {
    const scheduler = createScheduler(name, SD15);
    scheduler.setTimesteps(4);
    const sample = new TorchGenerator(1).randn(64);
    const output = new TorchGenerator(2).randn(64);
    const sampleCopy = sample.slice();
    const outputCopy = output.slice();
    const scaled = scheduler.scaleModelInput(sample, 0);
    scheduler.step(output, 0, sample, new TorchGenerator(3));
    expect(scaled).not.toBe(sample);
    expect(sample).toEqual(sampleCopy);
    expect(output).toEqual(outputCopy);

    const first = run(scheduler, 6);
    const second = run(scheduler, 6);
    expect(second).toEqual(first);
    expect(first.every(Number.isFinite)).toBe(true);
  });

  it("refuses steps out of order and before setTimesteps", () => {
    const scheduler = createScheduler("dpmpp_2m", SD15);
    const x = new Float32Array(16);
    expectEaselError(() => scheduler.step(x, 0, x), "invalid_argument", "setTimesteps");
    scheduler.setTimesteps(4);
    expectEaselError(() => scheduler.step(x, 4, x), "invalid_argument", "0..3");
    expectEaselError(() => scheduler.step(x, 0, new Float32Array(8)), "invalid_argument", "8");
    scheduler.step(x, 1, x); // a run may begin part-way (img2img)
    expectEaselError(() => scheduler.step(x, 3, x), "invalid_argument", "out of order");
    scheduler.step(x, 2, x);
    scheduler.setTimesteps(4);
    scheduler.step(x, 0, x); // setTimesteps starts a new run
  });

  it.each(SCHEDULER_NAMES)("%s runs an img2img tail from addNoise at a later step", (name) => {
    const scheduler = createScheduler(name, SD15);
    scheduler.setTimesteps(8);
    const generator = new TorchGenerator(4);
    const clean = generator.randn(64);
    const start = 3;
    let latents = scheduler.addNoise(clean, generator.randn(64), start);
    for (let i = start; i < scheduler.timesteps.length; i++) {
      const eps = scheduler.scaleModelInput(latents, i).map((v) => 0.1 * v);
      latents = scheduler.step(eps, i, latents, generator).prevSample;
    }
    expect(latents.every(Number.isFinite)).toBe(true);
  });

  it("noises like diffusers' add_noise: √ᾱ·x0 + √(1−ᾱ)·n for DDIM, x0 + σ·n for Euler", () => {
    const x0 = new TorchGenerator(8).randn(32);
    const noise = new TorchGenerator(9).randn(32);
    const ddim = createScheduler("ddim", SD15);
    ddim.setTimesteps(10);
    const alphaBar = noiseSchedule(resolveSchedulerConfig("DDIMScheduler", SD15)).alphasCumprod[
      ddim.timestepForUnet(2)
    ] as number;
    const noisedDdim = ddim.addNoise(x0, noise, 2);
    const euler = createScheduler("euler", SD15);
    euler.setTimesteps(10);
    const sigma = euler.sigmas?.[2] as number;
    const noisedEuler = euler.addNoise(x0, noise, 2);
    for (let i = 0; i < 32; i++) {
      const x = x0[i] as number;
      const n = noise[i] as number;
      expect(noisedDdim[i]).toBeCloseTo(Math.sqrt(alphaBar) * x + Math.sqrt(1 - alphaBar) * n, 5);
      expect(noisedEuler[i]).toBeCloseTo(x + sigma * n, 4);
    }
  });

  it("requires the generator where a step draws noise", () => {
    const ancestral = createScheduler("euler_ancestral", SD15);
    ancestral.setTimesteps(2);
    expectEaselError(
      () => ancestral.step(new Float32Array(16), 0, new Float32Array(16)),
      "invalid_argument",
      "generator",
    );
  });

  it("draws LCM noise on every step but the last, continuing the initial-noise stream", () => {
    const n = 64;
    const lcm = createScheduler("lcm", SD15);
    const generator = new TorchGenerator(11);
    run(lcm, 4); // warm state, then the real run below
    lcm.setTimesteps(4);
    let latents = generator.randn(n);
    for (let i = 0; i < 4; i++)
      latents = lcm.step(
        latents.map((v) => 0.1 * v),
        i,
        latents,
        generator,
      ).prevSample;
    const reference = new TorchGenerator(11);
    for (let draw = 0; draw < 1 + 3; draw++) reference.randn(n);
    expect(generator.randn(n)).toEqual(reference.randn(n));
  });

  it("lands DPM++ 2M and Euler exactly on the predicted x0 at the final sigma of zero", () => {
    for (const name of ["dpmpp_2m", "euler"] as const) {
      const scheduler = createScheduler(name, SD15);
      scheduler.setTimesteps(1);
      const sample = new TorchGenerator(5).randn(32);
      const out = scheduler.step(new TorchGenerator(6).randn(32), 0, sample);
      expect(out.prevSample).toEqual(out.denoised);
    }
  });
});

describe("v-prediction", () => {
  const V_CONFIG = { ...SD15, prediction_type: "v_prediction" };
  const x0 = new TorchGenerator(21).randn(32);
  const eps = new TorchGenerator(22).randn(32);

  /** Noisy sample and exact v target at step 0, in the scheduler's own parameterisation. */
  function exact(name: string): { scheduler: Scheduler; sample: Float32Array; v: Float32Array } {
    const scheduler = createScheduler(name, V_CONFIG);
    scheduler.setTimesteps(10);
    const sigma = scheduler.sigmas?.[0];
    let alpha: number;
    let noise: number;
    let sampleScale = 1;
    if (sigma !== undefined) {
      // k-diffusion space x = x0 + σε, and the UNet sees x/√(σ²+1): α = 1/√(σ²+1), σ_t = σα.
      alpha = 1 / Math.sqrt(sigma * sigma + 1);
      noise = sigma * alpha;
      sampleScale = name.startsWith("dpmpp") ? 1 : 1 / alpha;
    } else {
      const t = scheduler.timestepForUnet(0);
      const alphaBar = noiseSchedule(resolveSchedulerConfig("PNDMScheduler", SD15)).alphasCumprod[
        t
      ] as number;
      alpha = Math.sqrt(alphaBar);
      noise = Math.sqrt(1 - alphaBar);
    }
    const sample = x0.map((x, i) => sampleScale * (alpha * x + noise * (eps[i] as number)));
    const v = x0.map((x, i) => alpha * (eps[i] as number) - noise * x);
    return { scheduler, sample, v };
  }

  it.each(["ddim", "euler", "euler_ancestral", "dpmpp_2m"])(
    "%s recovers x0 from an exact v target",
    (name) => {
      const { scheduler, sample, v } = exact(name);
      const out = scheduler.step(v, 0, sample, new TorchGenerator(1));
      const denoised = out.denoised ?? new Float32Array(0);
      for (let i = 0; i < x0.length; i++) expect(denoised[i]).toBeCloseTo(x0[i] as number, 4);
    },
  );

  it("pndm steps the same with an exact v target as with the equivalent epsilon", () => {
    const { scheduler, sample, v } = exact("pndm");
    const withV = scheduler.step(v, 0, sample).prevSample;
    const epsScheduler = createScheduler("pndm", SD15);
    epsScheduler.setTimesteps(10);
    const withEps = epsScheduler.step(eps, 0, sample).prevSample;
    for (let i = 0; i < withV.length; i++) expect(withV[i]).toBeCloseTo(withEps[i] as number, 4);
  });
});
