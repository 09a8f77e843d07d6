import { compileModerationRules, findBanned, type ModerationRules } from "../src/core/moderation.ts";
import { quantile, report, timeRuns } from "./measure.ts";

// Patterns a backtracking engine needs years for on the hostile texts below, among ordinary ones; the half
// with ^ $ \b runs on the marked text (src/core/banned-pattern.ts).
const PATTERNS = [
  "(a+)+$",
  "(x+x+)+y",
  "(a|aa)*b",
  ".*.*.*.*.*z",
  "(\\w+\\s?)+$",
  "a{0,30}a{0,30}a{0,30}b",
  "\\bgore\\b",
  "\\bкот\\b",
  "n\\s*s\\s*f\\s*w",
  "(?:\\d{1,3}\\.){3}\\d{1,3}",
];

function rules(): ModerationRules {
  const compiled = compileModerationRules({ bannedWords: [], bannedPatterns: PATTERNS });
  if (!compiled.ok) throw new Error(compiled.reason);
  return compiled.value;
}

/**
 * `moderation_hostile_ms`: checking a 2000-character hostile prompt (the matcher's text limit) against ten
 * catastrophic-backtracking patterns; `moderation_prompt_ms`: an ordinary prompt against the same.
 */
export function benchModeration(): void {
  const r = rules();
  const hostile = [`${"a".repeat(1999)}!`, `${"x".repeat(1999)}!`, `${"word ".repeat(399)}!`];
  const times = timeRuns(() => {
    for (const text of hostile) {
      const hit = findBanned(text, r);
      if (hit) throw new Error(`hostile text matched ${hit.pattern}`);
    }
  }, 50);
  report("moderation_hostile_ms", quantile(times, 0.5) / hostile.length);
  const prompt =
    "a lighthouse on a cliff in a violent storm, crashing waves, dramatic lightning, volumetric light";
  report(
    "moderation_prompt_ms",
    quantile(
      timeRuns(() => findBanned(prompt, r), 500),
      0.5,
    ),
    3,
  );
}
