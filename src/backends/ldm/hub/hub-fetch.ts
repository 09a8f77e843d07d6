/**
 * The `fetch` every request of a pull goes through: handed to @huggingface/hub's functions as their `fetch`
 * option, and used for the file bodies. It adds the two things the package leaves to its caller:
 *
 * - The token goes to the hub's origin only. The package puts `Authorization` on every request and lets
 *   fetch follow redirects; here redirects are followed by hand (`redirect: "manual"`) and the header is
 *   dropped for any other origin, so the CDN the hub redirects LFS files to (pre-signed URLs) never sees it,
 *   whatever the fetch implementation does on a cross-origin redirect.
 * - A deadline. Each request must answer (connect and response headers) within `timeoutMs`, and a body that
 *   is being read must deliver a chunk at least every `timeoutMs`. Without it undici waits 300 s for headers
 *   and 300 s per body chunk, and `easel models pull` looks hung for five minutes.
 */

/** How long the hub (or its CDN) may keep a pull waiting: for an answer, or between two chunks of a body. */
export const DEFAULT_HUB_TIMEOUT_MS = 30_000;

/** Redirect hops followed per request; the hub needs one (resolve → CDN). */
const MAX_REDIRECTS = 10;

/** A request the server accepted but did not answer, or a body that stopped arriving, within the deadline. */
export class HubTimeoutError extends Error {
  constructor(
    readonly url: URL,
    readonly stage: "answer" | "body",
    readonly timeoutMs: number,
  ) {
    super(`${url.host} ${stage === "answer" ? "did not answer" : "stopped sending"} within ${timeoutMs} ms`);
    this.name = "HubTimeoutError";
  }
}

export interface HubFetchOptions {
  /** The hub's base URL: the one origin that gets the `Authorization` header. */
  endpoint: URL;
  timeoutMs?: number;
  /** Cancels every request, including bodies being read. */
  signal?: AbortSignal;
  fetch?: typeof fetch;
}

/** A fetch with the hub's token kept on the hub and a deadline on every answer and every body chunk. */
export function hubFetch(options: HubFetchOptions): typeof fetch {
  const timeoutMs = options.timeoutMs ?? DEFAULT_HUB_TIMEOUT_MS;
  const inner = options.fetch ?? fetch;
  return async (input, init = {}) => {
    let url = new URL(input instanceof Request ? input.url : input);
    const headers = new Headers(init.headers);
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      if (url.origin !== options.endpoint.origin) headers.delete("authorization");
      const controller = new AbortController();
      const signals = [controller.signal, options.signal, init.signal].filter((s) => s != null);
      const res = await deadline(controller, new HubTimeoutError(url, "answer", timeoutMs), () =>
        inner(url, { ...init, headers, redirect: "manual", signal: AbortSignal.any(signals) }),
      );
      const location = res.headers.get("location");
      if (res.status >= 300 && res.status < 400 && location !== null) {
        await res.body?.cancel();
        url = new URL(location, url);
        continue;
      }
      return watchBody(res, url, timeoutMs, controller);
    }
    throw new Error(`more than ${MAX_REDIRECTS} redirects from ${url.origin}`);
  };
}

/**
 * Runs `start`, failing with `timeout` when it takes longer than its deadline; the request is aborted then, so
 * the connection goes too. The race does not trust the fetch given to honour the signal.
 */
async function deadline<T>(
  controller: AbortController,
  timeout: HubTimeoutError,
  start: () => Promise<T>,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort(timeout);
      reject(timeout);
    }, timeout.timeoutMs);
    timer.unref();
  });
  try {
    return await Promise.race([start(), expired]);
  } catch (err) {
    throw controller.signal.aborted ? controller.signal.reason : err;
  } finally {
    clearTimeout(timer);
  }
}

/** The response with a body that errors (and drops the connection) when a read waits over `ms` for a chunk. */
function watchBody(res: Response, url: URL, ms: number, controller: AbortController): Response {
  const reader = res.body?.getReader();
  const body =
    reader &&
    new ReadableStream<Uint8Array>(
      {
        async pull(sink) {
          try {
            const chunk = await deadline(controller, new HubTimeoutError(url, "body", ms), () =>
              reader.read(),
            );
            if (chunk.done) sink.close();
            else sink.enqueue(chunk.value);
          } catch (err) {
            sink.error(err);
          }
        },
        cancel: (reason) => reader.cancel(reason),
      },
      // Pull only while someone reads: the clock runs while the reader waits for the network, not for the disk.
      { highWaterMark: 0 },
    );
  const watched = new Response(body ?? null, {
    status: res.status,
    statusText: res.statusText,
    headers: res.headers,
  });
  // A constructed Response has no url of its own; HubApiError reports it.
  Object.defineProperty(watched, "url", { value: url.href });
  return watched;
}
