import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { TINY_MODEL_VARIANTS, writeTinyModel } from "../src/backends/ldm/tiny-model.ts";
import { LdmWorkerSupervisor } from "../src/backends/ldm/worker-supervisor.ts";
const modelsDir = mkdtempSync(join(tmpdir(), "rev-w-"));
await writeTinyModel(join(modelsDir, "tiny"), TINY_MODEL_VARIANTS.sd1, resolve("../shared/fixtures/clip-tokenizer"));
const P = { prompt: "a", seed: 1, steps: 40, guidance: 7.5, scheduler: "euler", width: 64, height: 64, count: 1 };
// 1) hung worker, then next job immediately
const h = new LdmWorkerSupervisor({ modelsDir, model: "tiny", device: "cpu" }, { workerEntry: resolve("test/fakes/hanging-worker.ts"), stallTimeoutMs: 300 });
await h.start();
const pid1 = h.pid;
try { await h.generate(P); } catch (e) { console.log("first:", (e as any).code); }
const t0 = Date.now();
try { await h.generate(P); } catch (e) { console.log("second:", (e as any).code, "after", Date.now() - t0, "ms; starts", h.starts, "pid same?", h.pid === pid1); }
await h.stop();
// 2) cancel grace kill: real worker, cancelGraceMs small, next job right after
const w = new LdmWorkerSupervisor({ modelsDir, model: "tiny", device: "cpu" }, { cancelGraceMs: 1, stallTimeoutMs: 5000 });
await w.start();
const c = new AbortController();
try { await w.generate({ ...P, steps: 150 }, { signal: c.signal, onProgress: (p) => { if (p.step === 1) c.abort(); } }); } catch (e) { console.log("cancelled:", (e as any).code); }
const t1 = Date.now();
try { const r = await w.generate({ ...P, steps: 2 }); console.log("after cancel ok", r.images.length, Date.now() - t1, "ms starts", w.starts); } catch (e) { console.log("after cancel FAILED:", (e as any).code, (e as Error).message, Date.now() - t1, "ms starts", w.starts); }
// 3) bad scheduler through worker: what code?
try { await w.generate({ ...P, scheduler: "constructor" }); } catch (e) { console.log("constructor via worker:", (e as any).code, (e as Error).message); }
try { await w.generate({ ...P, steps: NaN }); } catch (e) { console.log("NaN via worker:", (e as any).code, (e as Error).message); }
// 4) stop with queued jobs
const q1 = w.generate({ ...P, steps: 10 }); const q2 = w.generate({ ...P, steps: 3 });
await new Promise(r => setTimeout(r, 50));
await w.stop();
const res = await Promise.allSettled([q1, q2]);
console.log("after stop:", res.map(r => r.status === "fulfilled" ? "fulfilled" : (r.reason as any).code), "starts", w.starts, "pid", w.pid);
await w.stop();
rmSync(modelsDir, { recursive: true, force: true });
