import type OpenAI from "openai";
import { APIConnectionError, APIError } from "openai";
import { EaselError } from "../../core/errors.ts";
import { OPENAI_SETUP_TEXT } from "../../core/messages.ts";
import { networkFailure } from "../../core/startup.ts";
import { describeFailure, isModelNotFound, type OpenAiErrorContext, translateOpenAiError } from "./errors.ts";

/**
 * The OpenAI start-up check: one GET /models/{model}, once, when the bot starts (never per request). A key the
 * server refuses, or a model it does not offer (dall-e-2 and dall-e-3 since OpenAI retired them on 2026-05-12),
 * is an operator error naming the variable to change; a server that cannot be reached now, or that has no
 * models endpoint (some OpenAI-compatible servers), is a warning, since jobs will say so themselves.
 */

/** What the check found that the operator should read, though the backend can start. */
export interface SetupCheck {
  warnings: string[];
}

/** The check's own limits: start-up should not hang on a slow server. */
const CHECK_TIMEOUT_MS = 15_000;

const RETIRED = new Set(["dall-e-2", "dall-e-3"]);

/** Runs the check with `client`; throws a "config" EaselError naming OPENAI_API_KEY or OPENAI_IMAGE_MODEL. */
export async function checkOpenAiSetup(client: OpenAI, ctx: OpenAiErrorContext): Promise<SetupCheck> {
  const warnings: string[] = [];
  try {
    const info = await client.models.retrieve(ctx.model, {
      maxRetries: 1,
      timeout: Math.min(ctx.timeoutMs, CHECK_TIMEOUT_MS),
    });
    const shutdown = (info as { shutdown_date?: unknown }).shutdown_date;
    if (typeof shutdown === "string" && shutdown !== "")
      warnings.push(OPENAI_SETUP_TEXT.shutsDown(ctx.model, ctx.host, shutdown));
    return { warnings };
  } catch (err) {
    const translated = translateOpenAiError(err, ctx);
    const detail = describeFailure(translated.cause as Parameters<typeof describeFailure>[0]);
    const status = err instanceof APIError ? err.status : undefined;
    const say = OPENAI_SETUP_TEXT;
    const cause = { cause: translated.cause };
    if (status === 401) throw new EaselError("config", say.keyRefused(ctx.host, detail), cause);
    if (status === 403) throw new EaselError("config", say.noAccess(ctx.model, ctx.host, detail), cause);
    if (isModelNotFound(err))
      throw new EaselError("config", say.modelMissing(ctx.model, ctx.host, RETIRED.has(ctx.model)), cause);
    if (translated.code === "config") throw translated;
    const why = unreachable(err);
    warnings.push(
      status === 404 || status === 405
        ? say.noModelsEndpoint(ctx.host, ctx.model, detail)
        : why
          ? say.unreachable(ctx.host, why)
          : say.notChecked(detail),
    );
    return { warnings };
  }
}

/** Why the server could not be reached (the SDK's connection error, or a network code under it), if so. */
function unreachable(err: unknown): string | undefined {
  const network = networkFailure(err);
  if (network || !(err instanceof APIConnectionError)) return network;
  // The SDK wraps fetch's TypeError, whose own cause says why ("bad port", "other side closed").
  let cause: unknown = err;
  while (cause instanceof Error && cause.cause instanceof Error) cause = cause.cause;
  return cause instanceof Error ? cause.message : err.message;
}
