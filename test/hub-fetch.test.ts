import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { DEFAULT_HUB_TIMEOUT_MS, HubTimeoutError, hubFetch } from "../src/backends/ldm/hub/hub-fetch.ts";
import { watch } from "./support.ts";

/** The fetch the wrapper is given: records each call, answers with `answer` (or never). */
function stubFetch(answer: (url: URL, init: RequestInit) => Response | Promise<Response>) {
  const calls: {
    url: string;
    authorization: string | null;
    redirect?: RequestInit["redirect"];
    signal?: AbortSignal;
  }[] = [];
  const fetch: typeof globalThis.fetch = async (input, init = {}) => {
    const url = new URL(input instanceof Request ? input.url : input);
    calls.push({
      url: url.href,
      authorization: new Headers(init.headers).get("authorization"),
      ...(init.redirect ? { redirect: init.redirect } : {}),
      ...(init.signal ? { signal: init.signal } : {}),
    });
    return answer(url, init);
  };
  return { fetch, calls };
}

const HUB = new URL("https://hub.test");
const never = () => new Promise<Response>(() => {});

describe("hubFetch deadlines (fake clock)", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("gives up on a request that gets no answer after 30 s by default, aborting it", async () => {
    expect(DEFAULT_HUB_TIMEOUT_MS).toBe(30_000);
    const stub = stubFetch(never);
    const state = watch(
      hubFetch({ endpoint: HUB, fetch: stub.fetch })("https://hub.test/api/models/a/b/tree/main"),
    );
    await vi.advanceTimersByTimeAsync(29_999);
    expect(state.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(state.error).toBeInstanceOf(HubTimeoutError);
    expect(state.error).toMatchObject({ stage: "answer", timeoutMs: 30_000 });
    expect((state.error as HubTimeoutError).url.host).toBe("hub.test");
    expect(stub.calls[0]?.signal?.aborted).toBe(true);
  });

  it("fails a body read that waits longer than the deadline for its next chunk", async () => {
    let sent = 0;
    const stub = stubFetch(
      () =>
        new Response(
          new ReadableStream<Uint8Array>({
            pull(sink) {
              // One chunk, then silence: the connection stays open and sends nothing more.
              if (sent++ === 0) sink.enqueue(new Uint8Array(10));
            },
          }),
          { status: 200 },
        ),
    );
    const res = await hubFetch({ endpoint: HUB, fetch: stub.fetch, timeoutMs: 5000 })("https://hub.test/x");
    const reader = res.body?.getReader();
    expect((await reader?.read())?.value?.length).toBe(10);
    if (!reader) throw new Error("no body");
    const state = watch(reader.read());
    await vi.advanceTimersByTimeAsync(4999);
    expect(state.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(state.error).toMatchObject({ stage: "body", timeoutMs: 5000 });
    expect(stub.calls[0]?.signal?.aborted).toBe(true);
  });

  it("starts the clock again for every chunk, so a slow body that keeps coming is not cut", async () => {
    let chunks = 0;
    const stub = stubFetch(
      () =>
        new Response(
          new ReadableStream<Uint8Array>({
            async pull(sink) {
              await new Promise((done) => setTimeout(done, 4000));
              if (chunks++ < 5) sink.enqueue(new Uint8Array(1));
              else sink.close();
            },
          }),
        ),
    );
    const res = await hubFetch({ endpoint: HUB, fetch: stub.fetch, timeoutMs: 5000 })("https://hub.test/x");
    const state = watch(res.arrayBuffer());
    await vi.advanceTimersByTimeAsync(6 * 4000);
    expect(state.settled).toBe(true);
    expect(state.error).toBeUndefined();
    expect(state.value).toBeInstanceOf(ArrayBuffer);
  });
});

describe("hubFetch and the token", () => {
  it("follows the hub's redirect itself and sends Authorization to the hub's origin only", async () => {
    const stub = stubFetch((url) =>
      url.host === "hub.test"
        ? new Response(null, { status: 302, headers: { location: "https://cdn.test/blob?sig=1" } })
        : new Response("bytes", { status: 200 }),
    );
    const res = await hubFetch({ endpoint: HUB, fetch: stub.fetch })("https://hub.test/a/b/resolve/main/x", {
      headers: { authorization: "Bearer hf_secret" },
    });
    expect(await res.text()).toBe("bytes");
    expect(res.url).toBe("https://cdn.test/blob?sig=1");
    expect(stub.calls.map((c) => [c.url, c.authorization, c.redirect])).toEqual([
      ["https://hub.test/a/b/resolve/main/x", "Bearer hf_secret", "manual"],
      ["https://cdn.test/blob?sig=1", null, "manual"],
    ]);
  });

  it("keeps the token on a redirect within the hub, and drops it on a request straight to another origin", async () => {
    const stub = stubFetch((url) =>
      url.pathname === "/old"
        ? new Response(null, { status: 307, headers: { location: "/new" } })
        : new Response("ok", { status: 200 }),
    );
    const fetch = hubFetch({ endpoint: HUB, fetch: stub.fetch });
    const auth = { headers: { authorization: "Bearer hf_secret" } };
    await fetch("https://hub.test/old", auth);
    await fetch("https://elsewhere.test/file", auth);
    expect(stub.calls.map((c) => [c.url, c.authorization])).toEqual([
      ["https://hub.test/old", "Bearer hf_secret"],
      ["https://hub.test/new", "Bearer hf_secret"],
      ["https://elsewhere.test/file", null],
    ]);
  });

  it("stops after ten redirects", async () => {
    const stub = stubFetch(() => new Response(null, { status: 302, headers: { location: "/again" } }));
    await expect(hubFetch({ endpoint: HUB, fetch: stub.fetch })("https://hub.test/loop")).rejects.toThrow(
      /more than 10 redirects/,
    );
    expect(stub.calls).toHaveLength(11);
  });

  it("cancels a request waiting for its answer when the caller's signal aborts", async () => {
    const controller = new AbortController();
    const stub = stubFetch(
      (_url, init) =>
        new Promise<Response>((_, reject) =>
          init.signal?.addEventListener("abort", () => reject(init.signal?.reason)),
        ),
    );
    const pending = hubFetch({ endpoint: HUB, fetch: stub.fetch, signal: controller.signal })(
      "https://hub.test/x",
    );
    controller.abort(new Error("stop"));
    await expect(pending).rejects.toThrow("stop");
  });
});
