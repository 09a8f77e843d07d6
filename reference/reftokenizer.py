"""`!`-padded tokenizer cases (SD 2.x / SDXL tokenizer_2): what transformers' slow CLIPTokenizer returns.

Both of transformers' text-cleaning paths are recorded:
  * with_ftfy: ftfy 6.3.1 importable (the usual install): fix_text -> whitespace_clean -> lower;
  * without_ftfy: what CLIPTokenizer does when ftfy is missing: BasicTokenizer(strip_accents=False,
    do_split_on_punc=False) instead (set here by giving the tokenizer object that fallback).
"""
import os

from refio import write_json

PROMPTS = ["!", "!!!", "hello!!!world", "hello !!! world", "!hello", "hello!", "!hello!", "! ! !", "wow!!",
           "a cat!", "a cat !", "!!!!!!!!!!", "hi!?", "?!", "a photo of a cat!!! masterpiece!",
           "<|endoftext|>!", "", "A cat. A dog!"]


def run(out, versions, bpe_dir):
    from transformers import CLIPTokenizer
    from transformers.models.bert.tokenization_bert import BasicTokenizer

    folder = os.path.join(out, "tokenizer-bang-pad")
    os.makedirs(folder, exist_ok=True)
    mk = lambda: CLIPTokenizer(os.path.join(bpe_dir, "vocab.json"), os.path.join(bpe_dir, "merges.txt"),  # noqa: E731
                               pad_token="!", model_max_length=77)
    tok = mk()
    assert tok.fix_text is not None, "ftfy not importable"
    nof = mk()
    nof.fix_text = None
    nof.nlp = BasicTokenizer(strip_accents=False, do_split_on_punc=False)
    sd1 = CLIPTokenizer(os.path.join(bpe_dir, "vocab.json"), os.path.join(bpe_dir, "merges.txt"),
                        pad_token="<|endoftext|>", model_max_length=77)
    cases = []
    for i, p in enumerate(PROMPTS + ["word! " * 40]):
        c = {"id": f"b{i:02d}", "text": p}
        for name, t in (("with_ftfy", tok), ("without_ftfy", nof)):
            enc = t(p, padding="max_length", max_length=77, truncation=True)
            c[name] = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                       "tokens": t.tokenize(p)}
        c["same"] = c["with_ftfy"]["input_ids"] == c["without_ftfy"]["input_ids"]
        e = sd1(p, padding="max_length", max_length=77, truncation=True)
        c["sd1_tokenizer_pad_eos_with_ftfy"] = {"input_ids": e["input_ids"], "tokens": sd1.tokenize(p)}
        cases.append(c)
    header = {
        "description": "CLIPTokenizer (transformers slow tokenizer) with pad_token '!' (id 0), model_max_length 77, "
                       "vocab/merges = src/backends/ldm/tokenizer/clip-bpe; call: tokenizer(text, padding='max_length', "
                       "max_length=77, truncation=True) as the SD/SDXL pipelines do. '!' in a prompt is also id 0 "
                       "(or part of a merged token such as '!!'), so ids alone cannot tell pad from text: use the "
                       "attention_mask (the SDXL pipeline does not pass it to the text encoder). NOTE: because pad_token '!' "
                       "becomes a special (added, never-split) token, transformers splits EVERY '!' out of the text before "
                       "BPE: '!!!' -> three id-0 tokens, 'hello!' -> 'hello</w>', '!' (id 0, not '!</w>' 256). The same "
                       "prompts through the SD1 tokenizer (pad <|endoftext|>) are in sd1_tokenizer_pad_eos_with_ftfy "
                       "for contrast (plain BPE there).",
        "pad_token": "!", "pad_token_id": tok.pad_token_id, "bos": tok.bos_token_id, "eos": tok.eos_token_id,
        "versions": versions,
    }
    write_json(os.path.join(folder, "cases.json"), header, cases)
