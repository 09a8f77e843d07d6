import { CLIP_BPE_DIR, ClipTokenizer } from "../src/backends/ldm/tokenizer/clip-tokenizer.ts";
import { quantile, report, timeRuns } from "./measure.ts";

/** `tokenizer_encode_us`: tokenizing a prompt that fills CLIP's 77 positions, after warm-up (word cache warm). */
export function benchTokenizer(): void {
  const tokenizer = ClipTokenizer.fromFolder(CLIP_BPE_DIR);
  const text =
    "a highly detailed digital painting of an ancient lighthouse on a cliff in a violent storm, crashing waves, " +
    "dramatic lightning, volumetric light, by greg rutkowski and alphonse mucha, trending on artstation, 8k, " +
    "masterpiece, best quality, ultra sharp focus, cinematic composition, rich colors, misty atmosphere, " +
    "seagulls, old stone tower, glowing lantern, rain on the old glass, fishing boats in the harbour";
  // The longest prefix (in words) that fits CLIP's 75 text tokens exactly: a full 77-position input.
  const words = text.split(" ");
  let prompt = "";
  for (let n = 1; n <= words.length; n++) {
    const candidate = words.slice(0, n).join(" ");
    if (tokenizer.tokenize(candidate).textTokenCount > 75) break;
    prompt = candidate;
  }
  if (tokenizer.tokenize(prompt).textTokenCount !== 75)
    throw new Error("benchmark prompt does not fill 75 tokens");
  const warm = timeRuns(() => tokenizer.tokenize(prompt), 2000, 200);
  report("tokenizer_encode_us", quantile(warm, 0.5) * 1000, 1);
  // The same prompt with BPE's word cache emptied before each call: the cost of words never seen before.
  const cold = timeRuns(
    () => {
      tokenizer.clearCache();
      tokenizer.tokenize(prompt);
    },
    500,
    50,
  );
  report("tokenizer_encode_uncached_us", quantile(cold, 0.5) * 1000, 1);
}
