import { describe, expect, it } from "vitest";
import {
  formatBytes,
  formatDuration,
  formatTransfer,
  RateMeter,
  TransferLine,
} from "../src/cli/progress-bar.ts";

describe("formatBytes", () => {
  it.each([
    [0, "0 B"],
    [812, "812 B"],
    [999, "999 B"],
    [1000, "1.00 kB"],
    [41_000, "41.0 kB"],
    [999_400, "999 kB"],
    [999_600, "1.00 MB"],
    [412_000_000, "412 MB"],
    [1_720_000_000, "1.72 GB"],
    [4_300_000_000, "4.30 GB"],
    [12_345_678_901_234, "12.3 TB"],
    [-1, "? B"],
    [Number.NaN, "? B"],
  ])("%d bytes read %s", (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });
});

describe("formatDuration", () => {
  it.each([
    [0, "0:00"],
    [0.2, "0:01"],
    [34, "0:34"],
    [59.5, "1:00"],
    [725, "12:05"],
    [3723, "1:02:03"],
    [Number.POSITIVE_INFINITY, "?"],
    [-5, "?"],
  ])("%d s reads %s", (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
  });
});

describe("formatTransfer", () => {
  it("shows bytes of the total, the rate and the time left", () => {
    expect(
      formatTransfer({
        label: "unet/model.onnx",
        received: 412e6,
        total: 1.72e9,
        bytesPerSecond: 38.2e6,
      }),
    ).toBe("unet/model.onnx  412 MB / 1.72 GB  38.2 MB/s  0:35 left");
  });

  it("leaves out what it cannot know: no total, no rate yet", () => {
    expect(formatTransfer({ label: "x", received: 5e6, bytesPerSecond: 1e6 })).toBe("x  5.00 MB  1.00 MB/s");
    expect(formatTransfer({ label: "x", received: 5e6, total: 10e6 })).toBe("x  5.00 MB / 10.0 MB");
    expect(formatTransfer({ label: "x", received: 5e6, total: 10e6, bytesPerSecond: 0 })).toBe(
      "x  5.00 MB / 10.0 MB",
    );
  });
});

describe("RateMeter", () => {
  it("measures over the recent window only, so a stall shows as a falling rate", () => {
    const meter = new RateMeter(5000);
    meter.add(0, 0);
    expect(meter.bytesPerSecond()).toBeUndefined();
    meter.add(100, 1e6);
    expect(meter.bytesPerSecond()).toBeUndefined(); // under a quarter of a second: no rate yet
    for (let t = 1000; t <= 10_000; t += 1000) meter.add(t, t * 1000); // 1 MB/s
    expect(meter.bytesPerSecond()).toBeCloseTo(1e6, -3);
    for (let t = 11_000; t <= 20_000; t += 1000) meter.add(t, 10e6); // nothing more arrives
    expect(meter.bytesPerSecond()).toBe(0);
  });
});

/** A stream that records what is written, a terminal or not. */
function sink(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, stream: { isTTY, write: (text: string) => writes.push(text) } };
}

describe("TransferLine", () => {
  it("redraws one line on a terminal at most every 100 ms, always drawing the end, then ends the line", () => {
    let now = 0;
    const { writes, stream } = sink(true);
    const line = new TransferLine(stream, { now: () => now });
    for (let i = 0; i <= 100; i++) {
      now = i * 10; // 10 ms apart: ten updates per redraw
      line.update("file", i * 1e6, 100e6, i * 1e6);
    }
    line.finish();
    expect(writes.length).toBeGreaterThanOrEqual(10);
    expect(writes.length).toBeLessThanOrEqual(13);
    expect(writes.slice(0, -1).every((w) => w.startsWith("\r") && w.endsWith("\x1b[K"))).toBe(true);
    expect(writes.at(-2)).toContain("100 MB / 100 MB");
    expect(writes.at(-2)).toContain("100 MB/s");
    expect(writes.at(-1)).toBe("\n");
  });

  it("cuts a redrawn line to the terminal's width, as a wrapped line could not be redrawn", () => {
    const writes: string[] = [];
    const line = new TransferLine({ isTTY: true, columns: 20, write: (text: string) => writes.push(text) });
    line.update("a/rather/long/path/to/unet/model.onnx", 1e6, 2e6, 1e6);
    expect(writes).toEqual(["\ra/rather/long/path/\x1b[K"]);
  });

  it("writes plain lines elsewhere: the first, each tenth of the total, and every 30 s while bytes arrive", () => {
    let now = 0;
    const { writes, stream } = sink(false);
    const line = new TransferLine(stream, { now: () => now });
    // 1000 updates over 100 s for 100 MB: 1 MB/s.
    for (let i = 0; i <= 1000; i++) {
      now = i * 100;
      line.update("file", i * 1e5, 100e6, i * 1e5);
    }
    line.finish();
    expect(writes.every((w) => w.endsWith("\n") && !w.includes("\r"))).toBe(true);
    expect(writes).toHaveLength(11); // 0 %, then 10 % … 100 %: each tenth comes before 30 s pass
    expect(writes[5]).toMatch(/^file {2}50\.0 MB \/ 100 MB {2}1\.00 MB\/s {2}0:50 left\n$/);

    // A slow transfer: the tenths come rarely, a line every 30 s shows it is alive.
    const slow = sink(false);
    const slowLine = new TransferLine(slow.stream, { now: () => now });
    for (let i = 0; i <= 130; i++) {
      now = i * 1000;
      slowLine.update("file", i * 1e5, 100e6, i * 1e5); // 100 kB/s: 100 s for the first tenth
    }
    expect(slow.writes.map((w) => w.trimEnd().split("  ")[1])).toEqual([
      "0 B / 100 MB",
      "3.00 MB / 100 MB",
      "6.00 MB / 100 MB",
      "9.00 MB / 100 MB",
      "10.0 MB / 100 MB",
      "13.0 MB / 100 MB",
    ]);
  });

  it("writes nothing more on a pipe while nothing arrives", () => {
    let now = 0;
    const { writes, stream } = sink(false);
    const line = new TransferLine(stream, { now: () => now });
    line.update("file", 5e6, 100e6, 5e6);
    for (now = 1000; now < 600_000; now += 1000) line.update("file", 5e6, 100e6, 5e6);
    // The line would say the same: the 30 s rule is for showing bytes arrive, not for repeating itself.
    expect(writes).toEqual(["file  5.00 MB / 100 MB\n"]);
  });
});
