import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as ort from "onnxruntime-node";
import { EaselError } from "../../core/errors.ts";
import { toFloat16Array } from "./float16.ts";

/**
 * Creating onnxruntime sessions on the right execution provider. ORT throws when the CUDA provider is asked
 * for but its libraries are missing (no silent fallback), so `auto` catches that once, says so in one log line,
 * and uses the CPU for every later session; `cuda` fails with the fix.
 */

/** Where the pipeline should run (`EASEL_DEVICE`). */
export type DeviceRequest = "auto" | "cuda" | "cpu";

/** Options for every session of one model. */
export interface SessionSettings {
  device: DeviceRequest;
  /** CUDA device index (default 0). */
  deviceId?: number;
  /** Threads per operator on the CPU; default: ORT's choice (all cores). */
  intraOpThreads?: number;
  /** Receives the one line that says a GPU was asked for but the CPU is used. */
  log?: (line: string) => void;
}

/** Chooses the provider once per process and creates sessions on it. */
export class SessionFactory {
  private cudaFailed: string | undefined;
  private warned = false;

  constructor(private readonly settings: SessionSettings) {}

  /** The provider sessions are created on now: `cuda` until it failed under `auto`, or as configured. */
  get provider(): "cuda" | "cpu" {
    return this.settings.device === "cpu" || this.cudaFailed !== undefined ? "cpu" : "cuda";
  }

  /**
   * Loads one ONNX file into a session; a corrupt or missing file gives a `model_file` error naming it.
   * `bytes`: the file's graph as easel changed it at load (see vae-encoder-graph.ts), in place of the file.
   */
  async create(modelPath: string, bytes?: Uint8Array): Promise<ort.InferenceSession> {
    if (!bytes && !existsSync(modelPath)) {
      throw new EaselError("model_file", `model file ${modelPath} is missing`);
    }
    const open = (options: ort.InferenceSession.SessionOptions) =>
      bytes ? ort.InferenceSession.create(bytes, options) : ort.InferenceSession.create(modelPath, options);
    const base: ort.InferenceSession.SessionOptions = {
      graphOptimizationLevel: "all",
      // ORT's intra-op threads spin after every operator by default, waiting for the next: between UNet steps they
      // take the cores the pipeline's own work (scheduler, noise, previews) and the bot need. Off, the bench model's
      // UNet step on 2 cores went from 14 ms to 10 ms and the work between steps got its core back.
      extra: { session: { intra_op: { allow_spinning: "0" } } },
      ...(this.settings.intraOpThreads === undefined
        ? {}
        : { intraOpNumThreads: this.settings.intraOpThreads }),
    };
    if (this.provider === "cuda" && !cudaProviderInstalled()) {
      this.providerFailed(
        "the CUDA provider libraries are not installed (the default install skips them)",
        undefined,
      );
    }
    if (this.provider === "cuda") {
      try {
        // The CUDA provider's options, chosen by what onnxruntime-node 1.30 can pass: its binding reads only
        // deviceId (session_options_helper.cc), so the provider runs with ORT's defaults, which suit diffusion:
        // cuDNN's exhaustive convolution search (the fastest kernels for each shape; the first step at a new
        // size or batch pays for the search once), the BFC arena growing by powers of two (VRAM is kept for the
        // next step, not returned), TF32 on, copies on the default stream. Graph optimisation: all levels (the
        // fusions for attention and group norm). Device-resident outputs and I/O binding exist in the binding for
        // WebGPU only, so each step's latents go to the device and back: 2×4×64×64 values at 512², 64 KiB in fp16,
        // microseconds on PCIe. fp16 models stay fp16 end to end (easel converts on the host by table).
        return await open({
          ...base,
          executionProviders: [{ name: "cuda", deviceId: this.settings.deviceId ?? 0 }],
        });
      } catch (cause) {
        const reason = errorText(cause);
        if (!isProviderFailure(reason)) throw modelFileError(modelPath, cause);
        this.providerFailed(reason, cause);
      }
    }
    if (this.cudaFailed !== undefined && !this.warned) {
      this.warned = true;
      this.settings.log?.(
        `GPU unavailable, running on the CPU (slow): onnxruntime's CUDA provider did not start (${this.cudaFailed.slice(0, 160)}). ` +
          "Run `npm run setup:cuda` on a GPU host.",
      );
    }
    try {
      return await open({ ...base, executionProviders: ["cpu"] });
    } catch (cause) {
      throw modelFileError(modelPath, cause);
    }
  }

  /** Under `cuda` a failed provider is fatal (with the fix); under `auto` every later session uses the CPU. */
  private providerFailed(reason: string, cause: unknown): void {
    if (this.settings.device === "cuda") {
      throw new EaselError(
        "device_unavailable",
        `EASEL_DEVICE=cuda but onnxruntime's CUDA provider cannot start (${reason.slice(0, 200)}). ` +
          "Install it with `npm run setup:cuda` (needs CUDA 12 and cuDNN 9), or set EASEL_DEVICE=auto or cpu.",
        { cause },
      );
    }
    this.cudaFailed = reason;
  }
}

/** Whether onnxruntime-node's CUDA provider libraries are present (`npm run setup:cuda` adds them). */
function cudaProviderInstalled(): boolean {
  const root = dirname(createRequire(import.meta.url).resolve("onnxruntime-node/package.json"));
  return existsSync(
    join(root, "bin", "napi-v6", process.platform, process.arch, "libonnxruntime_providers_cuda.so"),
  );
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** ORT's messages when a provider library is missing or cannot initialise (as opposed to a bad model). */
function isProviderFailure(message: string): boolean {
  return /provider|shared library|libcuda|cudnn|CUDA|cublas/i.test(message);
}

function modelFileError(modelPath: string, cause: unknown): EaselError {
  return new EaselError(
    "model_file",
    `model file ${modelPath} cannot be loaded: ${errorText(cause).slice(0, 300)}`,
    {
      cause,
    },
  );
}

/** A float tensor in the dtype a graph input wants (float16 inputs take the converted bits). */
export function floatTensor(type: "float32" | "float16", data: Float32Array, dims: number[]): ort.Tensor {
  return type === "float16"
    ? new ort.Tensor("float16", toFloat16Array(data), dims)
    : new ort.Tensor("float32", data, dims);
}

export { ort };
