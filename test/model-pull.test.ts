import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { planFiles } from "../src/backends/ldm/hub/layout.ts";
import {
  type KnownModel,
  loadKnownModels,
  type PullOptions,
  type PullProgress,
  pullModel,
} from "../src/backends/ldm/hub-download.ts";
import { MODEL_FAMILIES } from "../src/backends/ldm/model-family.ts";
import { readModelFolder } from "../src/backends/ldm/model-folder.ts";
import { EaselError } from "../src/core/errors.ts";
import { FakeHub, type FakeHubFile, type FakeHubRepo } from "./fakes/fake-hub.ts";
import { untilReal, watch } from "./support.ts";

const text = (value: string) => Buffer.from(value);
const json = (value: unknown) => text(JSON.stringify(value, null, 2));

/** A small export in the diffusers ONNX layout, plus the files a real repo has that a pull must skip. */
function fakeExport(): FakeHubFile[] {
  return [
    { path: ".gitattributes", content: text("*.onnx filter=lfs diff=lfs merge=lfs -text\n") },
    { path: "README.md", content: text("# fake export\n") },
    { path: "model_index.json", content: json({ _class_name: "OnnxStableDiffusionPipeline" }) },
    {
      path: "scheduler/scheduler_config.json",
      content: json({ _class_name: "PNDMScheduler", num_train_timesteps: 1000 }),
    },
    { path: "tokenizer/vocab.json", content: json({ "a</w>": 320 }) },
    { path: "tokenizer/merges.txt", content: text("#version: 0.2\na b\n") },
    { path: "tokenizer/tokenizer_config.json", content: json({ model_max_length: 77 }) },
    { path: "tokenizer/special_tokens_map.json", content: json({ pad_token: "<|endoftext|>" }) },
    { path: "text_encoder/model.onnx", content: randomBytes(40_000) },
    { path: "unet/model.onnx", content: randomBytes(20_000) },
    { path: "unet/weights.pb", content: randomBytes(700_000) },
    { path: "vae_decoder/model.onnx", content: randomBytes(30_000) },
    { path: "vae_encoder/model.onnx", content: randomBytes(25_000) },
    { path: "safety_checker/model.onnx", content: randomBytes(9_000) },
    { path: "feature_extractor/preprocessor_config.json", content: json({ crop_size: 224 }) },
    { path: "unet/diffusion_pytorch_model.safetensors", content: randomBytes(5_000) },
  ];
}

const LAYOUT = [
  "model_index.json",
  "scheduler/scheduler_config.json",
  "text_encoder/model.onnx",
  "tokenizer/merges.txt",
  "tokenizer/special_tokens_map.json",
  "tokenizer/tokenizer_config.json",
  "tokenizer/vocab.json",
  "unet/model.onnx",
  "unet/weights.pb",
  "vae_decoder/model.onnx",
  "vae_encoder/model.onnx",
];

const known = (name: string, repo: string, extra: Partial<KnownModel> = {}): KnownModel => ({
  name,
  repo,
  revision: "onnx",
  description: "a fake export",
  family: "sd1",
  license: "test",
  gated: false,
  ...extra,
});

const TOKEN = "hf_fakeSecretToken123";
const exportFiles = fakeExport();
const repos: FakeHubRepo[] = [
  { repo: "fake/sd", revision: "onnx", files: exportFiles },
  { repo: "fake/paged", revision: "onnx", files: exportFiles, pageSize: 4 },
  { repo: "fake/gated", revision: "onnx", files: exportFiles, token: TOKEN },
  {
    repo: "fake/not-onnx",
    revision: "onnx",
    files: exportFiles.filter((f) => f.path !== "unet/model.onnx"),
  },
];
const MODELS: KnownModel[] = [
  known("fake-sd", "fake/sd"),
  known("fake-paged", "fake/paged"),
  known("fake-gated", "fake/gated", { gated: true }),
  known("fake-not-onnx", "fake/not-onnx"),
];
const contentOf = (path: string) => {
  const file = exportFiles.find((f) => f.path === path);
  if (!file) throw new Error(`no ${path}`);
  return Buffer.from(file.content);
};

let hub: FakeHub;
let modelsDir: string;
const temps: string[] = [];

beforeEach(async () => {
  hub = await FakeHub.start(repos);
  modelsDir = mkdtempSync(join(tmpdir(), "easel-pull-"));
  temps.push(modelsDir);
});
afterEach(async () => {
  await hub.close();
});
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

const options = (extra: Partial<PullOptions> = {}): PullOptions => ({
  modelsDir,
  endpoint: hub.url,
  models: MODELS,
  ...extra,
});

async function failure(promise: Promise<unknown>): Promise<EaselError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof EaselError) return err;
    throw err;
  }
  throw new Error("expected the pull to fail");
}

const servedTotal = (repo: string) => LAYOUT.reduce((sum, path) => sum + hub.bytesServed(repo, path), 0);

describe("easel models pull", () => {
  it("downloads every file of the ONNX layout, verified against the tree's checksums, and nothing else", async () => {
    const result = await pullModel("fake-sd", options());
    expect(result.dir).toBe(join(modelsDir, "fake-sd"));
    expect(result.files.map((f) => f.path).sort()).toEqual(LAYOUT);
    for (const path of LAYOUT) {
      expect(readFileSync(join(result.dir, path)).equals(contentOf(path))).toBe(true);
      expect(existsSync(join(result.dir, `${path}.part`))).toBe(false);
    }
    for (const skipped of ["README.md", ".gitattributes", "safety_checker", "feature_extractor"]) {
      expect(existsSync(join(result.dir, skipped))).toBe(false);
    }
    expect(existsSync(join(result.dir, "unet/diffusion_pytorch_model.safetensors"))).toBe(false);
    const weights = result.files.find((f) => f.path === "unet/weights.pb");
    expect(weights).toMatchObject({ bytes: 700_000, resumed: false, skipped: false });
    // The folder is one the pipeline's loader accepts.
    expect(readModelFolder(result.dir).unet).toBe(join(result.dir, "unet", "model.onnx"));
  });

  it("follows the hub's redirect to the CDN for LFS files and serves small files from the hub", async () => {
    await pullModel("fake-sd", options());
    const cdn = hub.requests.filter((r) => r.server === "cdn").length;
    expect(cdn).toBe(LAYOUT.filter((p) => p.endsWith(".onnx") || p.endsWith(".pb")).length);
    expect(hub.requests.some((r) => r.status === 302)).toBe(true);
  });

  it("follows Link rel=next pages of the tree listing", async () => {
    const result = await pullModel("fake-paged", options());
    expect(result.files).toHaveLength(LAYOUT.length);
    const pages = hub.requests.filter((r) => r.url.includes("/api/models/fake/paged/tree/"));
    expect(pages.length).toBeGreaterThan(3);
  });

  it("resumes a file after a dropped connection with a Range request instead of starting over", async () => {
    hub.dropConnectionOnce("fake/sd", "unet/weights.pb", 300_000);
    const err = await failure(pullModel("fake-sd", options()));
    expect(err.code).toBe("download_failed");
    expect(err.message).toContain("unet/weights.pb");
    expect(err.message).toMatch(/rerun .*easel models pull fake-sd.* resume/);
    const part = join(modelsDir, "fake-sd", "unet", "weights.pb.part");
    const kept = statSync(part).size;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThanOrEqual(300_000);
    const servedBefore = hub.bytesServed("fake/sd", "unet/weights.pb");

    const result = await pullModel("fake-sd", options());
    expect(result.files.find((f) => f.path === "unet/weights.pb")).toMatchObject({ resumed: true });
    expect(hub.requests.some((r) => r.server === "cdn" && r.range === `bytes=${kept}-`)).toBe(true);
    expect(hub.bytesServed("fake/sd", "unet/weights.pb") - servedBefore).toBe(700_000 - kept);
    expect(readFileSync(join(result.dir, "unet/weights.pb")).equals(contentOf("unet/weights.pb"))).toBe(true);
    expect(existsSync(part)).toBe(false);
  });

  it("finishes a complete part file by its checksum, without asking the hub for it again", async () => {
    const dir = join(modelsDir, "fake-sd", "unet");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "weights.pb.part"), contentOf("unet/weights.pb"));
    const result = await pullModel("fake-sd", options());
    expect(hub.requests.filter((r) => r.url.endsWith("/unet/weights.pb"))).toEqual([]);
    expect(hub.bytesServed("fake/sd", "unet/weights.pb")).toBe(0);
    expect(result.files.find((f) => f.path === "unet/weights.pb")).toMatchObject({ resumed: true });
    expect(readFileSync(join(dir, "weights.pb")).equals(contentOf("unet/weights.pb"))).toBe(true);
    expect(existsSync(join(dir, "weights.pb.part"))).toBe(false);
  });

  it("downloads again a part of the full size whose checksum is wrong", async () => {
    const dir = join(modelsDir, "fake-sd", "unet");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "weights.pb.part"), Buffer.alloc(700_000, 0xff));
    const result = await pullModel("fake-sd", options());
    expect(hub.bytesServed("fake/sd", "unet/weights.pb")).toBe(700_000);
    expect(result.files.find((f) => f.path === "unet/weights.pb")).toMatchObject({ resumed: false });
    expect(readFileSync(join(dir, "weights.pb")).equals(contentOf("unet/weights.pb"))).toBe(true);
  });

  it("starts a part over when the server ignores Range and sends the whole file with 200", async () => {
    const dir = join(modelsDir, "fake-sd", "unet");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "weights.pb.part"), Buffer.alloc(1000, 0xff));
    hub.ignoreRange = true;
    const result = await pullModel("fake-sd", options());
    expect(result.files.find((f) => f.path === "unet/weights.pb")).toMatchObject({ resumed: false });
    expect(readFileSync(join(dir, "weights.pb")).equals(contentOf("unet/weights.pb"))).toBe(true);
  });

  it("stops with a cancelled error when aborted mid-file, keeping the part for a later resume", async () => {
    const controller = new AbortController();
    const onProgress = (p: PullProgress) => {
      if (p.file === "unet/weights.pb" && p.received > 0) controller.abort();
    };
    const err = await failure(pullModel("fake-sd", options({ signal: controller.signal, onProgress })));
    expect(err.code).toBe("cancelled");
    expect(err.message).toMatch(/resume/);
    const part = join(modelsDir, "fake-sd", "unet", "weights.pb.part");
    expect(statSync(part).size).toBeGreaterThan(0);
    const result = await pullModel("fake-sd", options());
    expect(result.files.find((f) => f.path === "unet/weights.pb")).toMatchObject({ resumed: true });
    expect(readFileSync(join(result.dir, "unet/weights.pb")).equals(contentOf("unet/weights.pb"))).toBe(true);
  });

  it("fails on a sha256 mismatch naming the file, and leaves neither the file nor its part", async () => {
    hub.corrupt("fake/sd", "unet/weights.pb");
    const err = await failure(pullModel("fake-sd", options()));
    expect(err.code).toBe("download_failed");
    expect(err.message).toContain("checksum mismatch for unet/weights.pb");
    expect(err.message).toContain("sha256");
    const path = join(modelsDir, "fake-sd", "unet", "weights.pb");
    expect(existsSync(path)).toBe(false);
    expect(existsSync(`${path}.part`)).toBe(false);
  });

  it("verifies small non-LFS files by their git blob sha1", async () => {
    hub.corrupt("fake/sd", "tokenizer/vocab.json");
    const err = await failure(pullModel("fake-sd", options()));
    expect(err.message).toContain("checksum mismatch for tokenizer/vocab.json");
    expect(err.message).toContain("git blob sha1");
    expect(existsSync(join(modelsDir, "fake-sd", "tokenizer", "vocab.json"))).toBe(false);
  });

  it("asks for HF_TOKEN on a gated repo, works with the token, and never shows the token", async () => {
    const missing = await failure(pullModel("fake-gated", options()));
    expect(missing.code).toBe("download_failed");
    expect(missing.message).toContain("HF_TOKEN");
    expect(missing.message).toContain("gated");

    const wrong = await failure(pullModel("fake-gated", options({ token: "hf_wrongToken456" })));
    expect(wrong.message).toContain("HF_TOKEN");
    expect(wrong.message).toContain("403");
    expect(wrong.message).not.toContain("hf_wrongToken456");

    hub.corrupt("fake/gated", "unet/model.onnx");
    const corrupt = await failure(pullModel("fake-gated", options({ token: TOKEN })));
    hub.corrupt("fake/gated", "unet/model.onnx", false);
    hub.dropConnectionOnce("fake/gated", "vae_decoder/model.onnx", 1000);
    const dropped = await failure(pullModel("fake-gated", options({ token: TOKEN })));
    for (const err of [missing, wrong, corrupt, dropped]) {
      expect(err.message).not.toContain(TOKEN);
      expect(String(err.stack)).not.toContain(TOKEN);
    }

    const result = await pullModel("fake-gated", options({ token: TOKEN }));
    expect(result.files).toHaveLength(LAYOUT.length);
    expect(readFileSync(join(result.dir, "unet/model.onnx")).equals(contentOf("unet/model.onnx"))).toBe(true);
    // The token goes to the hub only, never to the CDN the hub redirects to.
    expect(hub.requests.some((r) => r.server === "hub" && r.authorization === `Bearer ${TOKEN}`)).toBe(true);
    expect(hub.requests.filter((r) => r.server === "cdn" && r.authorization !== undefined)).toEqual([]);
  });

  it("rejects an unknown name, listing the known models", async () => {
    const err = await failure(pullModel("no-such-model", { modelsDir, endpoint: hub.url }));
    expect(err.code).toBe("invalid_argument");
    const names = loadKnownModels().map((m) => m.name);
    expect(names.length).toBeGreaterThan(0);
    for (const name of names) expect(err.message).toContain(name);
    expect(hub.requests).toEqual([]);
  });

  it("refuses a repo whose tree disagrees with a pinned sha256, before downloading anything", async () => {
    const pinned = known("fake-pinned", "fake/sd", {
      files: [{ path: "unet/weights.pb", sha256: "0".repeat(64) }],
    });
    const err = await failure(pullModel("fake-pinned", options({ models: [pinned] })));
    expect(err.code).toBe("download_failed");
    expect(err.message).toContain("unet/weights.pb");
    expect(err.message).toContain("pins");
    expect(servedTotal("fake/sd")).toBe(0);
  });

  it("refuses a repo that lacks a required part of the ONNX layout", async () => {
    const err = await failure(pullModel("fake-not-onnx", options()));
    expect(err.code).toBe("not_supported");
    expect(err.message).toContain("unet/model.onnx");
    expect(servedTotal("fake/not-onnx")).toBe(0);
  });

  it("reports progress that adds up to the total", async () => {
    const events: PullProgress[] = [];
    await pullModel("fake-sd", options({ onProgress: (p) => events.push({ ...p }) }));
    const total = LAYOUT.reduce((sum, path) => sum + contentOf(path).length, 0);
    expect(events.every((e) => e.overallTotal === total)).toBe(true);
    expect(events.at(-1)?.overallReceived).toBe(total);
    for (let i = 1; i < events.length; i++) {
      expect(events[i]?.overallReceived).toBeGreaterThanOrEqual(events[i - 1]?.overallReceived ?? 0);
    }
    for (const path of LAYOUT) {
      const last = events.filter((e) => e.file === path).at(-1);
      expect(last).toMatchObject({ received: contentOf(path).length, total: contentOf(path).length });
    }
    expect(events.at(-1)).toMatchObject({
      downloaded: total,
      index: LAYOUT.length - 1,
      count: LAYOUT.length,
    });
  });

  it("counts only bytes that arrive as downloaded, not files checked on disk or the part resumed from", async () => {
    await pullModel("fake-sd", options());
    const vae = join(modelsDir, "fake-sd", "vae_decoder", "model.onnx");
    writeFileSync(`${vae}.part`, readFileSync(vae).subarray(0, 10_000));
    rmSync(vae);
    const events: PullProgress[] = [];
    await pullModel("fake-sd", options({ onProgress: (p) => events.push({ ...p }) }));
    expect(events.at(-1)?.downloaded).toBe(20_000);
    expect(events.some((e) => e.file === "unet/weights.pb" && e.stage === "checking")).toBe(true);
  });

  it("skips files already present with the right checksum on a second pull", async () => {
    await pullModel("fake-sd", options());
    const before = servedTotal("fake/sd");
    const resolvesBefore = hub.requests.filter((r) => r.url.includes("/resolve/")).length;
    // A damaged file is not trusted because of its size: it is fetched again.
    const vae = join(modelsDir, "fake-sd", "vae_decoder", "model.onnx");
    const damaged = readFileSync(vae);
    damaged[0] = (damaged[0] ?? 0) ^ 1;
    writeFileSync(vae, damaged);

    const second = await pullModel("fake-sd", options());
    const fetched = second.files.filter((f) => !f.skipped).map((f) => f.path);
    expect(fetched).toEqual(["vae_decoder/model.onnx"]);
    expect(servedTotal("fake/sd") - before).toBe(30_000);
    expect(hub.requests.filter((r) => r.url.includes("/resolve/")).length - resolvesBefore).toBe(1);
    expect(readFileSync(vae).equals(contentOf("vae_decoder/model.onnx"))).toBe(true);
  });
});

describe("a hub that does not answer", () => {
  it("fails within the deadline naming the hub and HF_ENDPOINT when the hub accepts but never answers", async () => {
    hub.neverAnswer = true;
    // The deadline itself is pinned with a fake clock in hub-fetch.test.ts; here, that it ends a real pull.
    const err = await failure(pullModel("fake-sd", options({ timeoutMs: 300 })));
    expect(err.code).toBe("download_failed");
    expect(err.message).toContain(`the Hugging Face hub at ${hub.url} did not answer within 0.3 s`);
    expect(err.message).toContain("the file list");
    expect(err.message).toContain("HF_ENDPOINT");
    // The connection was made and the request sent: it is the answer that never came.
    expect(hub.requests.map((r) => r.status)).toEqual([0]);
  }, 15_000);

  it("fails when a body stalls on the CDN, keeping the part, and resumes from it", async () => {
    hub.stallOnce("fake/sd", "unet/weights.pb", 200_000);
    // 2 s: long enough that a busy machine never stalls a healthy answer that long.
    const err = await failure(pullModel("fake-sd", options({ timeoutMs: 2000 })));
    expect(err.code).toBe("download_failed");
    expect(err.message).toMatch(
      /^127\.0\.0\.1:\d+ \(where the hub at .* sent the download\) stopped sending for 2 s/,
    );
    expect(err.message).toContain("unet/weights.pb after 200000 of 700000 bytes");
    expect(err.message).toMatch(/rerun .*easel models pull fake-sd.* resume/);
    const part = join(modelsDir, "fake-sd", "unet", "weights.pb.part");
    expect(statSync(part).size).toBe(200_000);

    const result = await pullModel("fake-sd", options({ timeoutMs: 2000 }));
    expect(result.files.find((f) => f.path === "unet/weights.pb")).toMatchObject({ resumed: true });
    expect(hub.requests.some((r) => r.server === "cdn" && r.range === "bytes=200000-")).toBe(true);
    expect(readFileSync(join(result.dir, "unet/weights.pb")).equals(contentOf("unet/weights.pb"))).toBe(true);
  }, 15_000);

  it("does not time out a download that is slow but keeps sending", async () => {
    // The deadlines on a fake clock (the sockets and files stay real): each chunk of the CDN's bodies comes
    // 1.5 s after the last, under the 2 s per-chunk deadline every time and far past 2 s in all, which a
    // deadline counted from the start would cut. (The restart with each chunk is pinned in hub-fetch.test.ts.)
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    try {
      let held: (() => void) | undefined;
      const slow: typeof fetch = async (input, init) => {
        const res = await fetch(input, init);
        if (!res.body || !String(input).includes("/cdn/")) return res;
        const reader = res.body.getReader();
        const body = new ReadableStream<Uint8Array>({
          async pull(sink) {
            await new Promise<void>((go) => {
              held = go;
            });
            const chunk = await reader.read();
            if (chunk.done) sink.close();
            else sink.enqueue(chunk.value);
          },
        });
        return new Response(body, { status: res.status, headers: res.headers });
      };
      const pulling = watch(pullModel("fake-sd", options({ timeoutMs: 2000, fetch: slow })));
      let chunks = 0;
      for (;;) {
        await untilReal(() => held !== undefined || pulling.settled, "a chunk or the end");
        if (pulling.settled) break;
        await vi.advanceTimersByTimeAsync(1_500);
        const go = held;
        held = undefined;
        go?.();
        chunks += 1;
      }
      expect(pulling.error).toBeUndefined();
      expect(pulling.value?.files).toHaveLength(LAYOUT.length);
      expect(chunks * 1_500).toBeGreaterThan(2 * 2_000);
    } finally {
      vi.useRealTimers();
    }
  }, 15_000);
});

describe("models/known-models.json", () => {
  it("lists unique, well-formed entries", () => {
    const models = loadKnownModels();
    expect(new Set(models.map((m) => m.name)).size).toBe(models.length);
    for (const model of models) {
      expect(model.repo).toMatch(/^[\w.-]+\/[\w.-]+$/);
      expect(MODEL_FAMILIES).toContain(model.family);
    }
    expect(models.filter((m) => m.family === "sdxl" || m.family === "sdxl-turbo").map((m) => m.repo)).toEqual(
      ["stabilityai/stable-diffusion-xl-base-1.0", "stabilityai/sdxl-turbo"],
    );
  });

  it("fetches SDXL's second encoder and tokenizer, and refuses an SDXL repo without them", () => {
    const entry = (path: string) => ({ type: "file", path, size: 10, oid: "0".repeat(40) }) as never;
    const files = [
      "model_index.json",
      "scheduler/scheduler_config.json",
      "tokenizer/vocab.json",
      "tokenizer/merges.txt",
      "text_encoder/model.onnx",
      "unet/model.onnx",
      "vae_decoder/model.onnx",
    ];
    const second = ["text_encoder_2/model.onnx", "tokenizer_2/vocab.json", "tokenizer_2/merges.txt"];
    const sdxl = known("xl", "fake/xl", { family: "sdxl" });
    const planned = planFiles(
      sdxl,
      [...files, ...second, "vae/diffusion_pytorch_model.safetensors"].map(entry),
    );
    expect(planned.map((f) => f.path)).toEqual(expect.arrayContaining(second));
    expect(planned.map((f) => f.path)).not.toContain("vae/diffusion_pytorch_model.safetensors");
    expect(() => planFiles(sdxl, files.map(entry))).toThrow(/text_encoder_2\/model\.onnx/);
    // The same files are enough for an SD 1.x entry.
    expect(planFiles(known("one", "fake/one"), files.map(entry))).toHaveLength(files.length);
  });

  it("rejects a list with a name that could leave the models folder", () => {
    const dir = mkdtempSync(join(tmpdir(), "easel-known-"));
    temps.push(dir);
    const file = join(dir, "known.json");
    writeFileSync(file, JSON.stringify({ models: [{ ...known("x", "a/b"), name: "../escape" }] }));
    expect(() => loadKnownModels(file)).toThrow(/name/);
  });
});
