import { parsePromptFlags } from "../src/core/prompt-flags.ts";
import { quantile, report, timeRuns } from "./measure.ts";

/**
 * `prompt_flags_100kb_ms`: parsing 100 kB of hostile text (flag-like dashes, a huge negative, unicode: the
 * inputs test/prompt-flags.test.ts checks for correctness), the median of the slowest kind. Target: under 500 ms
 * (a member's message must never stall the bot).
 */
export function benchPromptFlags(): void {
  const inputs = [
    Array.from({ length: 100_000 }, (_, i) => String.fromCharCode(32 + ((i * 7919) % 95))).join(""),
    `${"a lighthouse ".repeat(8000)} --ar 16:9 --seed 1`,
    "—a ".repeat(34_000),
    "-".repeat(100_000),
    `cat --no ${"x ".repeat(50_000)}`,
    "🦊é\u0301\u200b\u2028".repeat(20_000),
  ];
  const medians = inputs.map((text) =>
    quantile(
      timeRuns(() => parsePromptFlags(text), 20, 2),
      0.5,
    ),
  );
  report("prompt_flags_100kb_ms", Math.max(...medians));
}
