import { DeliveryError } from "./delivery-error.ts";

/**
 * A platform SDK's errors as core takes them, for every adapter: one line of text for the log, and the
 * delivery machine's error, permanent for the codes the adapter lists (its SDK knowledge), transient otherwise.
 */

/** An error as one log line: its name and message. */
export function errorText(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/** What an adapter knows of its SDK's error codes. */
export interface PlatformErrorCodes<C> {
  /** The platform, as a transient error names it ("Discord did not take the message (…)"). */
  service: string;
  /** The platform's error code in `err`, if it has one. */
  codeOf(err: unknown): C | undefined;
  /** The codes no retry can change, with what the requester is told. */
  permanent: ReadonlyMap<C, string>;
  /** How a transient error is named (default: {@link errorText}). */
  describe?(err: unknown): string;
}

/** `err` as the delivery machine's error. */
export function deliveryErrorOf<C>(codes: PlatformErrorCodes<C>, err: unknown): DeliveryError {
  if (err instanceof DeliveryError) return err;
  const code = codes.codeOf(err);
  const why = code === undefined ? undefined : codes.permanent.get(code);
  if (why) return new DeliveryError(why, { permanent: true, cause: err });
  const what = (codes.describe ?? errorText)(err);
  return new DeliveryError(`${codes.service} did not take the message (${what})`, {
    permanent: false,
    cause: err,
  });
}

/** What `call` answers; what it throws, as `classify` makes it (the delivery machine's error). */
export async function classified<T>(
  classify: (err: unknown) => DeliveryError,
  call: () => Promise<T>,
): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw classify(err);
  }
}
