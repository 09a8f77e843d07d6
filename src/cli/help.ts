import { SAMPLER_ALIASES, SAMPLER_NAMES } from "../core/prompt-flags.ts";

/** The help texts that list values the CLI accepts, built from the lists the code checks against. */

/** A sampler name as parseSampler compares it (canonical names only have "_" to drop). */
const compact = (name: string): string => name.replace(/_/g, "");

/** Every sampler with the other spellings `--sampler` accepts, one line each. */
export function samplerHelp(): string {
  const width = Math.max(...SAMPLER_NAMES.map((name) => name.length)) + 2;
  const lines = SAMPLER_NAMES.map((name) => {
    const aliases = Object.entries(SAMPLER_ALIASES)
      .filter(([alias, target]) => target === name && alias !== compact(name))
      .map(([alias]) => alias);
    return `  ${aliases.length === 0 ? name : `${name.padEnd(width)}also ${aliases.join(", ")}`}`;
  });
  return [
    'Samplers (--sampler). Case, spaces, "_", "-" and "." are ignored and "+" reads as "p", so euler_a,',
    '"Euler a" and "DPM++ 2M Karras" (A1111\'s names) work too:',
    ...lines,
  ].join("\n");
}

/** The `make-tiny` variants, wrapped to the help's width. */
export function variantHelp(variants: readonly string[]): string {
  const lines = ["Tiny test models (easel models make-tiny NAME --variant V; default sd1):"];
  let line = " ";
  for (const [i, name] of variants.entries()) {
    const word = ` ${name}${i < variants.length - 1 ? "," : ""}`;
    if (line.length + word.length > 100) {
      lines.push(line);
      line = " ";
    }
    line += word;
  }
  lines.push(line);
  return lines.join("\n");
}
