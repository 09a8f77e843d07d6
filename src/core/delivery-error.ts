import { EaselError } from "./errors.ts";

/**
 * A platform's answer to a post, as the delivery machine (core/relay.ts) needs it: `permanent` when trying again
 * cannot help (the channel or webhook is gone, the bot was removed or lost access, the channel is archived),
 * so the result ends `undeliverable` at once; otherwise the machine tries again later. Outlets translate their
 * SDK's errors into it once, at the edge; an error they did not translate counts as transient.
 */
export class DeliveryError extends EaselError {
  readonly permanent: boolean;

  constructor(message: string, options: { permanent: boolean; cause?: unknown }) {
    super("delivery_failed", message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "DeliveryError";
    this.permanent = options.permanent;
  }
}

/** True when trying the post again cannot help (see DeliveryError). */
export function isPermanentDeliveryError(err: unknown): boolean {
  return err instanceof DeliveryError && err.permanent;
}
