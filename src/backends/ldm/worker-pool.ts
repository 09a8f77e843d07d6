import { DEVICE_TEXT } from "../../core/messages.ts";
import type { SettingsDefaults } from "../../core/settings.ts";
import type { LoadedModelInfo, WorkerModelSpec } from "./worker-protocol.ts";
import { LdmWorkerSupervisor, type SupervisorOptions } from "./worker-supervisor.ts";

/**
 * The bot's local-model workers: one supervised worker process per model, made when the model is first used,
 * and what the loaded ones report (the device really in use, a model's own defaults, its native size). The
 * composition root makes one; the LDM backend asks it for a model's worker.
 */

/** Native square side of a model family: SD 2.x v-prediction models were trained at 768, the others at 512. */
export function nativeSideOf(family: string | undefined): number {
  return family === "sd2-v" ? 768 : 512;
}

export class LdmWorkerPool {
  private readonly workers = new Map<string, LdmWorkerSupervisor>();

  /**
   * `spec`: what every worker loads its model with (the models folder, the device asked for); `options`: the
   * supervisors' (idle unload, log, the worker's environment).
   */
  constructor(
    private readonly spec: Omit<WorkerModelSpec, "model">,
    private readonly options: SupervisorOptions = {},
  ) {}

  /** The worker of `model`, made (not started) on first use. */
  worker(model: string): LdmWorkerSupervisor {
    let worker = this.workers.get(model);
    if (!worker) {
      worker = new LdmWorkerSupervisor({ ...this.spec, model }, this.options);
      this.workers.set(model, worker);
    }
    return worker;
  }

  /** What the worker of `model` reported when it loaded it; undefined before that. */
  loaded(model: string): LoadedModelInfo | undefined {
    return this.workers.get(model)?.info;
  }

  /** The defaults `model` brings (SD-Turbo: 1 step, no CFG), once its worker has loaded it. */
  modelDefaults(model: string): SettingsDefaults | undefined {
    const info = this.loaded(model);
    return info
      ? { steps: info.defaults.steps, guidance: info.defaults.guidance, sampler: info.defaults.scheduler }
      : undefined;
  }

  /** The native square side of `model` (512 until its worker has loaded it and said otherwise). */
  nativeSide(model: string): number {
    return nativeSideOf(this.loaded(model)?.io.family);
  }

  /**
   * The device `/info` names: the one really in use once a model has loaded ("cpu", "cuda:0": onnxruntime may
   * have fallen back to the CPU); before that, the one asked for.
   */
  deviceInUse(): string {
    const provider = [...this.workers.values()].find((w) => w.info)?.info?.provider;
    if (provider) return provider === "cuda" ? `cuda:${this.spec.deviceId ?? 0}` : "cpu";
    return DEVICE_TEXT.notLoadedYet(this.spec.device);
  }

  /** Stops every worker (each frees its model). */
  async stop(): Promise<void> {
    await Promise.all([...this.workers.values()].map((w) => w.stop()));
  }
}
