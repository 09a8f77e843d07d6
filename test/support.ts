import type { GenerationRequest } from "../src/core/request.ts";

/** Stable Diffusion 1.5's scheduler_config.json as the hub ships it (no timestep_spacing key). */
export const SD15_SCHEDULER_CONFIG = {
  _class_name: "PNDMScheduler",
  _diffusers_version: "0.6.0",
  beta_end: 0.012,
  beta_schedule: "scaled_linear",
  beta_start: 0.00085,
  num_train_timesteps: 1000,
  set_alpha_to_one: false,
  skip_prk_steps: true,
  steps_offset: 1,
  trained_betas: null,
  clip_sample: false,
};

/** A valid OpenAI-backend request (gpt-image-1, 1024²) with `extra` applied. */
export function openAiRequest(extra: Partial<GenerationRequest> = {}): GenerationRequest {
  return {
    prompt: "a lighthouse in a storm",
    negativePrompt: "",
    seed: 42,
    steps: 20,
    guidance: 7.5,
    sampler: "euler_ancestral",
    width: 1024,
    height: 1024,
    count: 1,
    backend: "openai",
    model: "gpt-image-1",
    requester: { platform: "discord", workspaceId: "g1", channelId: "c1", userId: "u1" },
    ...extra,
  };
}

/** The error a promise rejects with; fails the test when it resolves instead. */
export async function failure(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error("expected a failure");
}

/** A promise's outcome as it comes, readable without awaiting it: to check while fake time stands still. */
export function watch<T>(promise: Promise<T>): { settled: boolean; value?: T; error?: unknown } {
  const state: { settled: boolean; value?: T; error?: unknown } = { settled: false };
  promise.then(
    (value) => {
      state.settled = true;
      state.value = value;
    },
    (error: unknown) => {
      state.settled = true;
      state.error = error;
    },
  );
  return state;
}

/** The real clock's timer, taken before any test fakes it: for waiting on real work (sockets, files). */
const realSetTimeout = globalThis.setTimeout;

/**
 * Waits, on the real event loop, until `check` holds: for round trips that take real time whatever the clock.
 * The fake clock does not move meanwhile (unlike vi.waitFor, which advances it).
 */
export async function untilReal(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2_000; i++) {
    if (check()) return;
    await new Promise((r) => realSetTimeout(r, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}
