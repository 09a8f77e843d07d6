import type { EaselErrorCode } from "../../core/errors.ts";
import type { ModelDefaults, ModelInterface } from "./ldm-model.ts";
import type { DeviceRequest } from "./onnx-session.ts";
import type { GenerateParams, GenerateProgress, GenerateResult } from "./pipeline.ts";

/**
 * Messages between the bot process and the LDM worker process. They travel over Node's IPC channel with
 * `serialization: "advanced"` (structured clone), so image buffers cross as bytes, not base64 text.
 */

/** What the worker needs to load one model. */
export interface WorkerModelSpec {
  modelsDir: string;
  model: string;
  device: DeviceRequest;
  deviceId?: number;
  intraOpThreads?: number;
  /** EASEL_SAFETY_CHECKER: a checker folder lent to models without their own. */
  lentSafetyChecker?: string;
}

/** What the worker reports about the loaded model. */
export interface LoadedModelInfo {
  name: string;
  provider: "cuda" | "cpu";
  io: ModelInterface;
  defaults: ModelDefaults;
  hasVaeEncoder: boolean;
  loadMs: number;
}

/** Bot → worker. */
export type ToWorker =
  | { type: "load"; spec: WorkerModelSpec }
  | { type: "generate"; id: number; params: GenerateParams }
  | { type: "cancel"; id: number };

/** Worker → bot. */
export type FromWorker =
  | { type: "loaded"; info: LoadedModelInfo }
  | { type: "progress"; id: number; progress: GenerateProgress }
  | { type: "result"; id: number; result: GenerateResult }
  | { type: "error"; id: number | null; code: EaselErrorCode | "internal"; message: string }
  | { type: "log"; line: string };
