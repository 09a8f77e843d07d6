import { ClipTokenizer } from "../src/backends/ldm/tokenizer/clip-tokenizer.ts";
const t = ClipTokenizer.fromFolder("../shared/fixtures/clip-tokenizer");
function time(label: string, s: string) {
  const t0 = performance.now();
  try { const r = t.tokenize(s); console.log(label, (performance.now()-t0).toFixed(0), "ms", r.textTokenCount); }
  catch (e) { console.log(label, "THREW", (e as Error).constructor.name, (e as Error).message.slice(0,100)); }
}
let rnd = 1; const r = () => (rnd = (rnd * 1103515245 + 12345) % 2**31) / 2**31;
const letters = "abcdefghijklmnopqrstuvwxyz";
time("100k random letters one word", Array.from({length: 100_000}, () => letters[Math.floor(r()*26)]).join(""));
time("20k random letters one word", Array.from({length: 20_000}, () => letters[Math.floor(r()*26)]).join(""));
time("100k random CJK", Array.from({length: 30_000}, () => String.fromCodePoint(0x4e00 + Math.floor(r()*20000))).join(""));
time("100k punctuation", Array.from({length: 100_000}, () => "!@#$%^&*()_+-=[]{};:,./<>?"[Math.floor(r()*26)]).join(""));
time("lone surrogates", "\ud800abc\udfff");
time("entities", "&amp;".repeat(20000));
time("nul", "a\0b\u0085c\ufeffd");
