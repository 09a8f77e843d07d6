/**
 * The AUTOMATIC1111 "parameters" text that easel writes into every PNG, so other tools (A1111's PNG Info,
 * ComfyUI, Civitai) read the settings back.
 */

/** Scheduler names as A1111 shows them; easel's names are the keys. */
const A1111_SAMPLER_NAMES: Record<string, string> = {
  ddim: "DDIM",
  pndm: "PLMS",
  euler: "Euler",
  euler_ancestral: "Euler a",
  dpmpp_2m: "DPM++ 2M",
  dpmpp_2m_karras: "DPM++ 2M Karras",
  lcm: "LCM",
  euler_trailing: "Euler",
};

/** The settings of one rendered image. */
export interface ImageParameters {
  prompt: string;
  negativePrompt?: string;
  steps: number;
  sampler: string;
  cfgScale: number;
  seed: number | string;
  width: number;
  height: number;
  model: string;
  /** img2img strength, when the image started from another. */
  denoisingStrength?: number;
}

/**
 * Metadata text without control characters. The rule: "\n" stays (A1111 keeps a prompt's line breaks),
 * "\r\n" and a lone "\r" become "\n", a tab becomes a space (CLIP reads any whitespace as one space, so the
 * image is the same), and every other C0 control, DEL, C1 control and U+2028/U+2029 (line breaks to tools
 * that split with Python's `splitlines`) becomes a visible `\u001b`-style escape. tEXt forbids NUL, the PNG
 * spec gives the other controls no meaning, and a raw ESC or BEL would drive the terminal of anyone who
 * prints the metadata; an escape still shows that something was there.
 */
export function escapeControlCharacters(text: string): string {
  let out = "";
  for (const ch of text.replace(/\r\n?/g, "\n")) {
    const code = ch.codePointAt(0) ?? 0;
    if (ch === "\t") out += " ";
    else if (ch !== "\n" && isControl(code)) out += `\\u${code.toString(16).padStart(4, "0")}`;
    else out += ch;
  }
  return out;
}

/** C0, DEL, C1, and the Unicode line and paragraph separators. */
const isControl = (code: number): boolean =>
  code < 0x20 || (code >= 0x7f && code <= 0x9f) || code === 0x2028 || code === 0x2029;

/** Formats `ImageParameters` as A1111 does: prompt, "Negative prompt: …", then "Key: value" pairs. */
export function formatA1111Parameters(p: ImageParameters): string {
  const lines = [p.prompt];
  if (p.negativePrompt) lines.push(`Negative prompt: ${p.negativePrompt}`);
  lines.push(settingsLine(p).join(", "));
  return escapeControlCharacters(lines.join("\n"));
}

/** The "Key: value" pairs of A1111's last line. */
function settingsLine(p: ImageParameters): string[] {
  // A1111 splits the settings line on ", " and reads the prompt up to "\nNegative prompt:", so newlines in
  // the prompt stay but the settings line must not contain any.
  const oneLine = (s: string) => s.replace(/[\r\n\u2028\u2029]+/g, " ");
  return [
    `Steps: ${p.steps}`,
    `Sampler: ${A1111_SAMPLER_NAMES[p.sampler] ?? p.sampler}`,
    ...(p.sampler === "euler_trailing" ? ["Schedule type: Trailing"] : []),
    `CFG scale: ${p.cfgScale}`,
    `Seed: ${oneLine(String(p.seed))}`,
    `Size: ${p.width}x${p.height}`,
    `Model: ${oneLine(p.model)}`,
    ...(p.denoisingStrength === undefined ? [] : [`Denoising strength: ${p.denoisingStrength}`]),
  ];
}

/** Everything but the seed, to tell whether two images differ only in it. */
const withoutSeed = (p: ImageParameters): string => formatA1111Parameters({ ...p, seed: 0 });

/**
 * The `parameters` text of a grid (images in grid order, row by row). Format: image 1's A1111 text, as A1111
 * stores a batch grid, so PNG Info tools show settings that reproduce image 1; its settings line adds
 * `Grid seeds: "42, 43, 44, 45"`, every image's seed in order, so each tile can be rendered again alone. An
 * image that differs from image 1 in more than its seed also gets `Grid image N: "<its A1111 text>"`. Both
 * values are JSON strings in double quotes, the form A1111's parser reads for values with commas.
 */
export function formatA1111GridParameters(images: ImageParameters[]): string {
  const first = images[0];
  if (first === undefined) return "";
  const text = formatA1111Parameters(first);
  if (images.length === 1) return text;
  const seeds = images.map((p) => escapeControlCharacters(String(p.seed)).replace(/[\n,]/g, " ")).join(", ");
  const extra = [`Grid seeds: ${JSON.stringify(seeds)}`];
  const base = withoutSeed(first);
  images.forEach((p, i) => {
    if (i > 0 && withoutSeed(p) !== base)
      extra.push(`Grid image ${i + 1}: ${JSON.stringify(formatA1111Parameters(p))}`);
  });
  // JSON.stringify escapes newlines and quotes, so the extra pairs keep the settings line one line.
  return `${text}, ${extra.join(", ")}`;
}
