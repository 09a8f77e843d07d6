import { DEVICE_TEXT } from "../../core/messages.ts";
import type { SettingsDefaults } from "../../core/settings.ts";
import { familyCostWeight, familyOfFolder, type ModelFamily, nativeSideOf } from "./model-family.ts";
import { readModelFolder, resolveModelDir } from "./model-folder.ts";
import type { LoadedModelInfo, WorkerModelSpec } from "./worker-protocol.ts";
import { LdmWorkerSupervisor, type SupervisorOptions } from "./worker-supervisor.ts";

/**
 * The bot's local-model workers: one supervised worker process per model, made when the model is first used,
 * and what the loaded ones report (the device really in use, a model's own defaults, its native size). The
 * composition root makes one; the LDM backend asks it for a model's worker.
 */

export class LdmWorkerPool {
  private readonly workers = new Map<string, LdmWorkerSupervisor>();
  private readonly folderFamilies = new Map<string, ModelFamily | undefined>();

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

  /** The native square side of `model`: its worker's report, or before that what its folder says (else 512). */
  nativeSide(model: string): number {
    return nativeSideOf(this.family(model));
  }

  /** The cost weight of `model`'s family for ETAs, known as its native side is (see {@link nativeSide}). */
  costWeight(model: string): number {
    return familyCostWeight(this.family(model));
  }

  /** `model`'s family as its worker reported it, else as its folder's files say (read once). */
  private family(model: string): ModelFamily | string | undefined {
    const reported = this.loaded(model)?.io.family;
    if (reported !== undefined) return reported;
    if (!this.folderFamilies.has(model)) {
      let family: ModelFamily | undefined;
      try {
        family = familyOfFolder(readModelFolder(resolveModelDir(this.spec.modelsDir, model), model));
      } catch {
        family = undefined; // a broken folder: its worker's load will say what is wrong
      }
      this.folderFamilies.set(model, family);
    }
    return this.folderFamilies.get(model);
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
