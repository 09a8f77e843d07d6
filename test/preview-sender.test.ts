import { describe, expect, it } from "vitest";
import type { GenerateProgress } from "../src/backends/ldm/pipeline.ts";
import { PreviewSender } from "../src/backends/ldm/preview-sender.ts";

const preview = (step: number): GenerateProgress => ({
  step,
  total: 20,
  previews: [{ width: 1, height: 1, data: Uint8Array.of(step, step, step) }],
});

/** A channel that holds every preview until the test says it has been written. */
function channel() {
  const posted: { step: number; preview: number | undefined }[] = [];
  const unsent: (() => void)[] = [];
  const record = (p: GenerateProgress) => posted.push({ step: p.step, preview: p.previews?.[0]?.data[0] });
  const sender = new PreviewSender(record, (p, sent) => {
    record(p);
    unsent.push(sent);
  });
  return { sender, posted, flush: () => unsent.shift()?.() };
}

describe("PreviewSender", () => {
  it("sends step counts at once and a preview whenever the channel is free", () => {
    const { sender, posted, flush } = channel();
    sender.progress({ step: 1, total: 20 });
    sender.progress(preview(4));
    flush();
    sender.progress(preview(8));
    expect(posted).toEqual([
      { step: 1, preview: undefined },
      { step: 4, preview: 4 },
      { step: 8, preview: 8 },
    ]);
  });

  it("while a preview is being written, keeps only the newest one waiting and never goes back a step", () => {
    const { sender, posted, flush } = channel();
    sender.progress(preview(4));
    sender.progress(preview(8)); // waits
    sender.progress(preview(12)); // replaces 8, which is stale
    sender.progress({ step: 13, total: 20 });
    flush(); // 4 is written: 12 goes out, labelled with the newest step sent
    expect(posted).toEqual([
      { step: 4, preview: 4 },
      { step: 8, preview: undefined },
      { step: 12, preview: undefined },
      { step: 13, preview: undefined },
      { step: 13, preview: 12 },
    ]);
  });

  it("drops a waiting preview when the job ends", () => {
    const { sender, posted, flush } = channel();
    sender.progress(preview(4));
    sender.progress(preview(8));
    sender.finish();
    flush();
    expect(posted.filter((p) => p.preview !== undefined).map((p) => p.preview)).toEqual([4]);
  });
});
