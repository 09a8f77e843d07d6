import { isEaselError } from "../../core/errors.ts";
import { LdmModel } from "./ldm-model.ts";
import { readModelFolder, resolveModelDir } from "./model-folder.ts";
import { startNoiseThread } from "./noise-thread.ts";
import { SessionFactory } from "./onnx-session.ts";
import { generate } from "./pipeline.ts";
import { PreviewSender } from "./preview-sender.ts";
import type { FromWorker, ToWorker } from "./worker-protocol.ts";

/**
 * The LDM worker process: loads one model's sessions once and runs generate calls one at a time, so that
 * onnxruntime's blocking `run()` never stalls the bot's event loop (Discord heartbeats, 3-second acks).
 * Started by LdmWorkerSupervisor with `fork`; talks only through IPC messages.
 */

/** Sends a message to the bot; `sent` is called once it has left this process. */
function send(message: FromWorker, sent?: () => void): void {
  process.send?.(message, undefined, {}, sent);
}

function sendError(id: number | null, err: unknown): void {
  send({
    type: "error",
    id,
    code: isEaselError(err) ? err.code : "internal",
    message: err instanceof Error ? err.message : String(err),
  });
}

let model: LdmModel | undefined;
let loading: Promise<LdmModel> | undefined;
const running = new Map<number, AbortController>();

async function handle(message: ToWorker): Promise<void> {
  switch (message.type) {
    case "load": {
      const started = performance.now();
      startNoiseThread();
      const { spec } = message;
      const factory = new SessionFactory({
        device: spec.device,
        ...(spec.deviceId === undefined ? {} : { deviceId: spec.deviceId }),
        ...(spec.intraOpThreads === undefined ? {} : { intraOpThreads: spec.intraOpThreads }),
        log: (line) => send({ type: "log", line }),
      });
      try {
        loading = (async () =>
          LdmModel.load(
            readModelFolder(resolveModelDir(spec.modelsDir, spec.model), spec.model),
            factory,
            spec.lentSafetyChecker ? { lentSafetyChecker: spec.lentSafetyChecker } : {},
          ))();
        model = await loading;
      } catch (err) {
        sendError(null, err);
        return;
      }
      send({
        type: "loaded",
        info: {
          name: spec.model,
          provider: model.provider,
          io: model.io,
          defaults: model.defaults,
          hasVaeEncoder: model.vaeEncoder !== undefined,
          loadMs: performance.now() - started,
        },
      });
      return;
    }
    case "generate": {
      const controller = new AbortController();
      running.set(message.id, controller);
      try {
        const loaded = model ?? (await loading);
        if (loaded === undefined) throw new Error("generate before load");
        const id = message.id;
        const previews = new PreviewSender(
          (progress) => send({ type: "progress", id, progress }),
          (progress, sent) => send({ type: "progress", id, progress }, sent),
        );
        const result = await generate(loaded, message.params, {
          signal: controller.signal,
          onProgress: (progress) => previews.progress(progress),
        });
        previews.finish();
        send({ type: "result", id: message.id, result });
      } catch (err) {
        sendError(message.id, err);
      } finally {
        running.delete(message.id);
      }
      return;
    }
    case "cancel":
      running.get(message.id)?.abort();
      return;
  }
}

process.on("message", (message: ToWorker) => {
  void handle(message);
});
// The supervisor owns this process: when the IPC channel closes, the bot is gone and so is the work.
process.on("disconnect", () => process.exit(0));
