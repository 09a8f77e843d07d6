import { mkdtempSync, writeFileSync, mkdirSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { LdmModel } from "../src/backends/ldm/ldm-model.ts";
import { readModelFolder, resolveModelDir } from "../src/backends/ldm/model-folder.ts";
import { SessionFactory } from "../src/backends/ldm/onnx-session.ts";
import { generate, type GenerateParams } from "../src/backends/ldm/pipeline.ts";
import { createScheduler } from "../src/backends/ldm/schedulers/index.ts";
import { TINY_MODEL_VARIANTS, writeTinyModel } from "../src/backends/ldm/tiny-model.ts";
import { isEaselError } from "../src/core/errors.ts";

const TOK = resolve("../shared/fixtures/clip-tokenizer");
const dir = mkdtempSync(join(tmpdir(), "rev-"));
await writeTinyModel(join(dir, "sd1"), TINY_MODEL_VARIANTS.sd1, TOK);
const factory = new SessionFactory({ device: "cpu" });
const m = await LdmModel.load(readModelFolder(resolveModelDir(dir, "sd1")), factory);
const BASE: GenerateParams = { prompt: "a", seed: 1, steps: 2, guidance: 7.5, scheduler: "euler", width: 64, height: 64, count: 1 };
async function probe(label: string, p: Partial<GenerateParams> | any) {
  try { const r = await generate(m, { ...BASE, ...p }); console.log("OK  ", label, r.width, r.height, r.notes, r.images.length); }
  catch (e) { console.log(isEaselError(e) ? "EASL" : "RAW ", label, (e as any).code ?? (e as Error).constructor.name, "|", (e as Error).message.slice(0, 160)); }
}
for (const s of ["__proto__", "constructor", "toString", "hasOwnProperty", "EULER", " euler "]) await probe(`scheduler ${s}`, { scheduler: s });
await probe("steps Infinity", { steps: Infinity });
await probe("steps -1", { steps: -1 });
await probe("steps 2.5", { steps: 2.5 });
await probe("steps '4' string", { steps: "4" });
await probe("guidance -1", { guidance: -1 });
await probe("guidance 1e308", { guidance: 1e308 });
await probe("width NaN", { width: NaN });
await probe("width 71", { width: 71 });
await probe("width 64.5", { width: 64.5 });
await probe("width 2049", { width: 2049 });
await probe("count 0", { count: 0 });
await probe("count NaN", { count: NaN });
await probe("seed 2^32", { seed: 2**32 });
await probe("seed 2^32-1 count 2", { seed: 2**32-1, count: 2 });
await probe("seed NaN", { seed: NaN });
await probe("prompt undefined", { prompt: undefined });
await probe("negative number", { negativePrompt: 5 });
await probe("negative 200k", { negativePrompt: "storm ".repeat(40000) });
await probe("strength 0", { init: { image: { width: 64, height: 64, data: new Uint8Array(64*64*3) }, strength: 0 } });
await probe("strength NaN", { init: { image: { width: 64, height: 64, data: new Uint8Array(64*64*3) }, strength: NaN } });
await probe("strength 1.5", { init: { image: { width: 64, height: 64, data: new Uint8Array(64*64*3) }, strength: 1.5 } });
await probe("init data wrong len", { init: { image: { width: 64, height: 64, data: new Uint8Array(5) }, strength: 0.5 } });
await probe("init null image", { init: { image: null, strength: 0.5 } });
await probe("previewEvery -1", { previewEvery: -1 });
await probe("lcm sched on sd1 60 steps", { scheduler: "lcm", steps: 60 });
await probe("pndm 150 steps", { scheduler: "pndm", steps: 150 });
await probe("dpmpp_2m 150", { scheduler: "dpmpp_2m", steps: 150 });
await probe("ddim trailing? ", { scheduler: "ddim", steps: 3 });
for (const s of ["__proto__", "constructor"]) { try { createScheduler(s, {}); console.log("createScheduler ok", s); } catch (e) { console.log("createScheduler", s, isEaselError(e) ? "EASL" : "RAW", (e as Error).message.slice(0,120)); } }
// model names
for (const n of ["../sd1", "sd1\0", "sd1/.", "SD1", "sd1 ", "constructor"]) { try { resolveModelDir(dir, n); console.log("name ok", JSON.stringify(n)); } catch (e) { console.log("name", JSON.stringify(n), isEaselError(e) ? "EASL" : "RAW", (e as Error).message.slice(0,100)); } }
// symlink escape
mkdirSync(join(dir, "outside", "unet"), { recursive: true });
const models2 = join(dir, "m2"); mkdirSync(models2);
symlinkSync(join(dir, "outside"), join(models2, "evil"));
try { console.log("symlink resolves to", resolveModelDir(models2, "evil")); } catch (e) { console.log("symlink refused", (e as Error).message); }
await m.release();
