import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TINY_MODEL_VARIANTS, writeTinyModel } from "../src/backends/ldm/tiny-model.ts";
import { CLIP_BPE_DIR } from "../src/backends/ldm/tokenizer/clip-tokenizer.ts";
import { loadConfig } from "../src/config.ts";
import type { Actor } from "../src/core/bot-services.ts";
import type { Engine, EngineEvents } from "../src/core/engine.ts";
import { type EaselHandle, type StartOptions, startEasel } from "../src/easel.ts";

/**
 * easel as `npm start` composes it (src/easel.ts), in this process, over a temporary data folder and a tiny
 * ONNX model (rendered for real in its worker process), for the bot and platform tests.
 */

export const TOKENIZER_DIR = CLIP_BPE_DIR;

/** A folder with one tiny SD 1.x model called "tiny". */
export async function tinyModelsDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "easel-models-"));
  await writeTinyModel(join(dir, "tiny"), TINY_MODEL_VARIANTS.sd1, TOKENIZER_DIR);
  return dir;
}

export interface TestEasel {
  easel: EaselHandle;
  dataDir: string;
  /** Stops easel (grace 0 by default) and removes the data folder unless `keepData`. */
  stop(options?: { graceMs?: number; keepData?: boolean }): Promise<void>;
}

/** Starts easel with `env` over `modelsDir` and a data folder (a new one unless given). */
export async function startTestEasel(
  modelsDir: string,
  env: Record<string, string> = {},
  options: StartOptions & { dataDir?: string } = {},
): Promise<TestEasel> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), "easel-data-")));
  const config = loadConfig({
    EASEL_MODELS_DIR: modelsDir,
    EASEL_DATA_DIR: dataDir,
    EASEL_DEVICE: "cpu",
    EASEL_THREADS: "1",
    ...env,
  });
  const lines: string[] = [];
  const easel = await startEasel(config, {
    log: (line) => lines.push(line),
    minEditIntervalMs: 50,
    version: "test",
    ...options,
  });
  return {
    easel,
    dataDir,
    async stop({ graceMs = 0, keepData = false } = {}) {
      await easel.stop(graceMs);
      if (!keepData) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** A Discord member in guild g1, channel c1. */
export function actor(userId = "u1", extra: Partial<Actor> = {}): Actor {
  return {
    requester: {
      platform: "discord",
      workspaceId: "g1",
      channelId: "c1",
      userId,
      userName: `user-${userId}`,
    },
    platformAdmin: false,
    memberRoleIds: [],
    channelNsfw: false,
    isBot: false,
    ...extra,
  };
}

/** Resolves with the first `event` for `jobId`; rejects on its failure. */
export function nextEvent<K extends "done" | "started" | "cancelled">(
  engine: Engine,
  event: K,
  jobId: string,
  timeoutMs = 30_000,
): Promise<EngineEvents[K][0]> {
  return new Promise((resolveEvent, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no ${event} for job ${jobId} in ${timeoutMs} ms`)),
      timeoutMs,
    );
    const on = (e: EngineEvents[K][0]) => {
      if (e.job.id !== jobId) return;
      clearTimeout(timer);
      (engine.off as (n: string, l: unknown) => void)(event, on);
      resolveEvent(e);
    };
    (engine.on as (n: string, l: unknown) => void)(event, on);
    engine.once("failed", (e) => {
      if (e.job.id === jobId) {
        clearTimeout(timer);
        reject(new Error(`job ${jobId} failed: ${e.code}: ${e.message}`));
      }
    });
  });
}

/** A folder with "tiny" and "slow" (the bench variant: tens of ms per step at 512², for mid-job tests). */
export async function tinyAndSlowModelsDir(): Promise<string> {
  const dir = await tinyModelsDir();
  await writeTinyModel(join(dir, "slow"), TINY_MODEL_VARIANTS.bench, TOKENIZER_DIR);
  return dir;
}
