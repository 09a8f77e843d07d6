import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { loadKnownModels } from "../src/backends/ldm/hub-download.ts";
import { pullCommand } from "../src/cli/pull.ts";
import { loadConfig } from "../src/config.ts";
import { EaselError } from "../src/core/errors.ts";
import { FakeHub, type FakeHubFile } from "./fakes/fake-hub.ts";

const sd15 = loadKnownModels().find((m) => m.name === "sd15");
if (!sd15) throw new Error("sd15 is not in models/known-models.json");

const files: FakeHubFile[] = [
  { path: "model_index.json", content: Buffer.from("{}") },
  { path: "scheduler/scheduler_config.json", content: Buffer.from("{}") },
  { path: "tokenizer/vocab.json", content: Buffer.from("{}") },
  { path: "tokenizer/merges.txt", content: Buffer.from("#version: 0.2\n") },
  { path: "text_encoder/model.onnx", content: randomBytes(300_000) },
  { path: "unet/model.onnx", content: randomBytes(600_000) },
  { path: "vae_decoder/model.onnx", content: randomBytes(100_000) },
];

const temps: string[] = [];
let hub: FakeHub | undefined;
afterEach(async () => {
  await hub?.close();
  hub = undefined;
});
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

function setup(url: string) {
  const modelsDir = mkdtempSync(join(tmpdir(), "easel-pull-cli-"));
  temps.push(modelsDir);
  const config = loadConfig({ EASEL_MODELS_DIR: modelsDir, HF_ENDPOINT: url }, { scope: "cli" });
  const out: string[] = [];
  const progress: string[] = [];
  return { config, out, progress, io: { out: (line: string) => out.push(line) } };
}

describe("easel models pull NAME (the command)", () => {
  it("says what it pulls from where before the hub answers, then fails when the hub never does", async () => {
    hub = await FakeHub.start([]);
    hub.neverAnswer = true;
    const { config, out, io } = setup(hub.url);
    const stream = { isTTY: false, write: () => true };
    const pending = pullCommand(["sd15"], config, { ...io, progress: stream, timeoutMs: 300 });
    // Printed synchronously, before any request could have been answered.
    expect(out).toEqual([`pulling sd15 from ${sd15.repo}@${sd15.revision} on ${hub.url} …`]);
    const err = await pending.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EaselError);
    expect((err as EaselError).message).toContain(
      `the Hugging Face hub at ${hub.url} did not answer within 0.3 s`,
    );
    expect((err as EaselError).message).toContain("HF_ENDPOINT");
    expect(out).toHaveLength(1);
  }, 15_000);

  it("logs plain progress lines when not on a terminal, then the summary", async () => {
    hub = await FakeHub.start([{ repo: sd15.repo, revision: sd15.revision, files }]);
    const { config, out, progress, io } = setup(hub.url);
    const stream = { isTTY: false, write: (text: string) => progress.push(text) };
    await pullCommand(["sd15"], config, { ...io, progress: stream });
    expect(out[0]).toMatch(/^pulling sd15 from /);
    expect(out.slice(1)).toEqual([
      `pulled sd15 into ${join(config.modelsDir, "sd15")}: 7 files downloaded, 0 already there`,
      `checksums verified; try it: easel generate --model sd15 "a lighthouse in a storm"`,
    ]);
    expect(progress.length).toBeGreaterThan(1);
    expect(progress.length).toBeLessThanOrEqual(11);
    expect(progress.every((line) => line.endsWith("\n") && !line.includes("\r"))).toBe(true);
    expect(progress.at(-1)).toMatch(/^\[7\/7\] vae_decoder\/model\.onnx {2}1\.00 MB \/ 1\.00 MB/);
  }, 15_000);

  it("redraws one line on a terminal and ends it before the summary", async () => {
    hub = await FakeHub.start([{ repo: sd15.repo, revision: sd15.revision, files }]);
    const { config, out, progress, io } = setup(hub.url);
    const stream = { isTTY: true, write: (text: string) => progress.push(text) };
    await pullCommand(["sd15"], config, { ...io, progress: stream });
    expect(progress.length).toBeGreaterThan(1);
    expect(progress.slice(0, -1).every((text) => text.startsWith("\r"))).toBe(true);
    expect(progress.at(-2)).toContain("1.00 MB / 1.00 MB");
    expect(progress.at(-1)).toBe("\n");
    expect(out.at(-1)).toContain("checksums verified");
  }, 15_000);

  it("refuses an unknown name before any request, listing the known ones", async () => {
    hub = await FakeHub.start([]);
    const { config, out, io } = setup(hub.url);
    await expect(pullCommand(["nope"], config, io)).rejects.toThrow(
      /unknown model "nope"; known models: .*sd15/,
    );
    expect(out).toEqual([]);
    expect(hub.requests).toEqual([]);
  });
});
