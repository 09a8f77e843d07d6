import { describe, expect, it } from "vitest";
import {
  createScheduler,
  createSchedulerForClass,
  type Scheduler,
  schedulerNameOf,
} from "../../src/backends/ldm/schedulers/index.ts";
import { TorchGenerator } from "../../src/backends/ldm/torch-random.ts";
import { loadGolden, toFloat32Array } from "./golden-dir.ts";

interface TrajectoryCase {
  scheduler: string;
  class: string;
  num_inference_steps: number;
  seed: number | string;
  timesteps: number[];
  init_noise_sigma: number;
  generator_passed_to_step: boolean;
  eta: number | null;
  guidance: { scale: number } | null;
  initial_latents: number[];
  latents_after_first_step: number[];
  final_latents: number[];
  denoised_after_first_step?: number[];
  per_step?: { t: number; sum: number; x0: number }[];
}
interface TrajectoriesGolden {
  schedulers: Record<string, { class: string; config: Record<string, unknown> }>;
  cases: TrajectoryCase[];
}

const golden = loadGolden<TrajectoriesGolden>("scheduler_trajectories.json");

/** The golden guidance check's text branch: `eps_text = eps_uncond + 0.02` (a float32 add). */
const TEXT_OFFSET = Math.fround(0.02);

/** The header's stand-in UNet, in float64 left to right, rounded once to float32. */
function fakeModel(x: Float32Array, t: number): Float32Array {
  const out = new Float32Array(x.length);
  const c = Math.cos(t / 300);
  for (let i = 0; i < x.length; i++)
    out[i] = 0.3 * (x[i] as number) * c + 0.05 * Math.sin(t / 100 + i * 0.01);
  return out;
}

/** Classifier-free guidance as the golden file does it, in float32 torch ops. */
function guided(epsUncond: Float32Array, scale: number): Float32Array {
  const f32 = Math.fround;
  return epsUncond.map((u) => {
    const text = f32(u + TEXT_OFFSET);
    return f32(u + f32(scale * f32(text - u)));
  });
}

function build(c: TrajectoryCase): Scheduler {
  const entry = golden.schedulers[c.scheduler];
  const config = entry?.config ?? {};
  if (schedulerNameOf(c.scheduler) !== undefined)
    return createScheduler(c.scheduler, config, { eta: c.eta ?? 0 });
  return createSchedulerForClass(entry?.class ?? c.class, config, { eta: c.eta ?? 0 });
}

/** Asserts `|got - want| <= 1e-4 * max(1, max|want|)` elementwise, naming the worst element on failure. */
function expectClose(got: Float32Array, wantValues: readonly number[], what: string): void {
  const want = toFloat32Array(wantValues);
  expect(got.length, `${what} length`).toBe(want.length);
  let scale = 1;
  for (const w of want) scale = Math.max(scale, Math.abs(w));
  let worst = 0;
  let worstAt = 0;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs((got[i] as number) - (want[i] as number));
    if (!(err <= worst)) {
      worst = err;
      worstAt = i;
    }
  }
  expect(worst, `${what}: worst |diff| at index ${worstAt}`).toBeLessThanOrEqual(1e-4 * scale);
}

describe("scheduler trajectories match diffusers v0.35.2 (scheduler_trajectories.json)", () => {
  it("has cases to check", () => {
    expect(golden.cases.length).toBeGreaterThan(0);
  });

  it.each(
    golden.cases.map((c) => {
      const cfg = c.guidance === null ? "" : ` cfg=${c.guidance.scale}`;
      return [`${c.scheduler} steps=${c.num_inference_steps} seed=${c.seed}${cfg}`, c] as const;
    }),
  )("%s", (_label, c) => {
    const scheduler = build(c);
    scheduler.setTimesteps(c.num_inference_steps);
    expect([...scheduler.timesteps]).toEqual([...toFloat32Array(c.timesteps)]);
    expect(Math.abs(scheduler.initNoiseSigma - c.init_noise_sigma)).toBeLessThanOrEqual(
      1e-6 * Math.max(1, c.init_noise_sigma),
    );

    // One generator draws the initial noise and then every step's noise, as diffusers pipelines do.
    const generator = new TorchGenerator(c.seed);
    const sigma = scheduler.initNoiseSigma;
    // The procedure's [1, 4, 8, 8]: only the element count matters to torch.randn and the fake UNet.
    let latents: Float32Array = generator.randn(c.initial_latents.length).map((v) => v * sigma);
    expectClose(latents, c.initial_latents, "initial_latents");

    const stepScale = Math.max(
      1,
      ...[c.initial_latents, c.latents_after_first_step, c.final_latents].flat().map(Math.abs),
    );
    const stepGenerator = c.generator_passed_to_step ? generator : undefined;
    for (let i = 0; i < scheduler.timesteps.length; i++) {
      const t = scheduler.timestepForUnet(i);
      const input = scheduler.scaleModelInput(latents, i);
      const epsUncond = fakeModel(input, t);
      const eps = c.guidance === null ? epsUncond : guided(epsUncond, c.guidance.scale);
      const out = scheduler.step(eps, i, latents, stepGenerator);
      latents = out.prevSample;

      if (i === 0) {
        expectClose(latents, c.latents_after_first_step, "latents_after_first_step");
        if (c.denoised_after_first_step !== undefined) {
          expect(out.denoised, "denoised").toBeDefined();
          expectClose(
            out.denoised ?? new Float32Array(0),
            c.denoised_after_first_step,
            "denoised_after_first_step",
          );
        }
      }
      const record = c.per_step?.[i];
      if (record !== undefined) {
        let sum = 0;
        for (const v of latents) sum += v;
        expect(t, `per_step[${i}].t`).toBe(Math.fround(record.t));
        // Intermediate latents have no recorded maximum: use the largest of the recorded arrays. The sum
        // adds up n elements' errors, so it gets n times the per-element allowance.
        const allowance = 1e-4 * stepScale;
        expect(Math.abs(sum - record.sum), `per_step[${i}].sum`).toBeLessThanOrEqual(
          allowance * latents.length,
        );
        expect(Math.abs((latents[0] as number) - record.x0), `per_step[${i}].x0`).toBeLessThanOrEqual(
          allowance,
        );
      }
    }
    expect(c.per_step === undefined || c.per_step.length === scheduler.timesteps.length).toBe(true);
    expectClose(latents, c.final_latents, "final_latents");
  });
});
