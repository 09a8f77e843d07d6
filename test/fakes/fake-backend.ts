import type { BackendCallContext, BackendResult, ImageBackend } from "../../src/core/backend.ts";
import { EaselError } from "../../src/core/errors.ts";
import type { BackendName, GenerationRequest } from "../../src/core/request.ts";

/**
 * A stand-in renderer for engine tests: each call waits until the test finishes or fails it (by prompt), so
 * tests control exactly when jobs end. It honours AbortSignal like the real worker: it stops, after
 * `abortDelayMs`, and only then does its promise settle.
 */
export class FakeBackend implements ImageBackend {
  /** Prompts in the order their calls started. */
  readonly started: string[] = [];
  /** Calls currently running, by prompt. */
  readonly running = new Map<
    string,
    {
      resolve: () => void;
      reject: (err: unknown) => void;
      request: GenerationRequest;
      context: BackendCallContext;
    }
  >();
  /** Finish every call at once after this many ms (undefined: wait for the test). */
  autoFinishMs: number | undefined;
  /** How long an aborted call takes to really stop. */
  abortDelayMs = 0;
  /** Failures to throw, per prompt, one per attempt. */
  readonly failures = new Map<string, EaselError[]>();

  constructor(readonly name: BackendName = "ldm") {}

  generate(request: GenerationRequest, context: BackendCallContext): Promise<BackendResult> {
    this.started.push(request.prompt);
    const failure = this.failures.get(request.prompt)?.shift();
    if (failure) return Promise.reject(failure);
    return new Promise<BackendResult>((resolve, reject) => {
      const finish = () => {
        this.running.delete(request.prompt);
        resolve(result(request));
      };
      this.running.set(request.prompt, {
        resolve: finish,
        reject: (err) => {
          this.running.delete(request.prompt);
          reject(err);
        },
        request,
        context,
      });
      context.signal.addEventListener(
        "abort",
        () => {
          setTimeout(() => {
            this.running.delete(request.prompt);
            reject(context.signal.reason ?? new EaselError("cancelled", "aborted"));
          }, this.abortDelayMs);
        },
        { once: true },
      );
      context.onProgress({ step: 1, total: 2 });
      if (this.autoFinishMs !== undefined) setTimeout(finish, this.autoFinishMs);
    });
  }

  /** Completes the running call for `prompt`. */
  finish(prompt: string): void {
    const call = this.running.get(prompt);
    if (!call)
      throw new Error(`no running call for "${prompt}" (running: ${[...this.running.keys()].join(", ")})`);
    call.resolve();
  }
}

function result(request: GenerationRequest): BackendResult {
  const images = Array.from({ length: request.count }, (_, i) => {
    const data = new Uint8Array(8 * 8 * 3).fill((request.seed + i) % 256);
    return { format: "rgb" as const, data, width: 8, height: 8, seed: request.seed + i };
  });
  return { images, notes: [], used: {}, renderMs: 1 };
}
