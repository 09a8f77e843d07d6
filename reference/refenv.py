"""Import-path bootstrap for the reference scripts.

diffusers, transformers and huggingface_hub are imported from source trees (see README.md);
safetensors (a Rust extension, not in Debian bookworm) is replaced by a stub that raises if used
(nothing here loads weight files). importlib.metadata entries are synthesised so the version checks
done at import time by transformers/diffusers pass. Nothing is downloaded; HF_HUB_OFFLINE is set.
"""
import os
import sys
import tempfile

SRC = {
    "diffusers": os.environ.get("REF_DIFFUSERS_SRC", "/tmp/diffusers/src"),
    "transformers": os.environ.get("REF_TRANSFORMERS_SRC", "/tmp/transformers/src"),
    "huggingface_hub": os.environ.get("REF_HFHUB_SRC", "/tmp/hfhub/src"),
    "ftfy": os.environ.get("REF_FTFY_SRC", "/tmp/ftfy"),
}
# versions written into the synthetic dist-info (must match the source trees)
VERSIONS = {"diffusers": "0.35.2", "transformers": "4.45.0.dev0", "huggingface_hub": "0.35.3", "safetensors": "0.4.5"}


def setup():
    # One thread everywhere, set before torch is imported. With OpenMP threads (torch 1.13 Debian build,
    # MKL-DNN, 2 cores) about 1 in 4 fresh processes produced NaN from finite inputs in a Conv2d / attention
    # of the tiny models; with OMP_NUM_THREADS=1 no NaN was seen in repeated runs.
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("DIFFUSERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("HF_HOME", os.path.join(tempfile.gettempdir(), "ref-hf-home"))
    stub = os.path.join(tempfile.gettempdir(), "ref-pystubs")
    os.makedirs(os.path.join(stub, "safetensors"), exist_ok=True)
    with open(os.path.join(stub, "safetensors", "__init__.py"), "w") as f:
        f.write("__version__ = '0.4.5'\n"
                "class SafetensorError(Exception):\n    pass\n"
                "def safe_open(*a, **k):\n    raise RuntimeError('safetensors stub: no weight files are read')\n")
    with open(os.path.join(stub, "safetensors", "torch.py"), "w") as f:
        f.write("def _no(*a, **k):\n    raise RuntimeError('safetensors stub: no weight files are read')\n"
                "load_file = save_file = load = save = save_model = load_model = _no\n"
                "def storage_ptr(t):\n    return t.storage().data_ptr()\n"
                "def storage_size(t):\n    return t.storage().nbytes()\n"
                "def _find_shared_tensors(sd):\n    return []\n")
    # tokenizers (Rust) is absent: transformers.integrations.ggml imports names from it at module level.
    # This stub only satisfies those imports; with no dist-info, is_tokenizers_available() stays False,
    # so only the slow (pure Python) CLIPTokenizer is used.
    os.makedirs(os.path.join(stub, "tokenizers"), exist_ok=True)
    with open(os.path.join(stub, "tokenizers", "__init__.py"), "w") as f:
        f.write("class _Stub:\n    def __init__(self, *a, **k):\n        raise RuntimeError('tokenizers stub')\n"
                "AddedToken = Regex = Tokenizer = _Stub\n"
                "import types as _t\n"
                "decoders = normalizers = pre_tokenizers = processors = _t.SimpleNamespace()\n")
    with open(os.path.join(stub, "tokenizers", "models.py"), "w") as f:
        f.write("from . import _Stub\nBPE = Unigram = WordPiece = _Stub\n")
    for name, ver in VERSIONS.items():
        d = os.path.join(stub, f"{name}-{ver}.dist-info")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "METADATA"), "w") as f:
            f.write(f"Metadata-Version: 2.1\nName: {name}\nVersion: {ver}\n")
        with open(os.path.join(d, "top_level.txt"), "w") as f:
            f.write(name + "\n")
    for p in [stub] + list(SRC.values()):
        if not os.path.isdir(p) and p != stub:
            raise SystemExit(f"missing source tree {p}: see reference/README.md")
        if p not in sys.path:
            sys.path.insert(0, p)
    shim_torch()


def shim_torch():
    """torch 1.13 has no float8 dtypes; diffusers 0.35.2 names them in a module-level tuple of its torchao
    quantizer (never used here). Give them inert placeholder values so the import succeeds."""
    import torch
    for n in ("float8_e4m3fn", "float8_e5m2"):
        if not hasattr(torch, n):
            setattr(torch, n, f"<unavailable torch.{n}>")
    import types
    # diffusers' Attention.get_attention_scores (AttnProcessor, the path used on torch < 2) calls
    # torch.baddbmm(torch.empty(...), q, k^T, beta=0, alpha=scale). Defensive: zero the ignored input when
    # beta == 0, so NaN garbage in the uninitialised buffer can never leak; the result is exactly what a
    # NaN-free buffer gives (beta=0 means the input does not contribute).
    if not getattr(torch.baddbmm, "_ref_zero_beta", False):
        _baddbmm = torch.baddbmm

        def baddbmm(input, batch1, batch2, *, beta=1, alpha=1, out=None):
            if beta == 0:
                input = torch.zeros_like(input)
            if out is not None:
                return _baddbmm(input, batch1, batch2, beta=beta, alpha=alpha, out=out)
            return _baddbmm(input, batch1, batch2, beta=beta, alpha=alpha)

        baddbmm._ref_zero_beta = True
        torch.baddbmm = baddbmm
    if not hasattr(torch, "compiler"):
        # used by diffusers 0.35.2 only as @torch.compiler.disable / @torch.compiler.disable() decorators
        # and torch.compiler.is_compiling() checks; no compilation happens here.
        def disable(fn=None, recursive=True):
            return fn if fn is not None else (lambda f: f)
        torch.compiler = types.SimpleNamespace(disable=disable, is_compiling=lambda: False)
    for dev in ("xpu", "mps"):
        if not hasattr(torch, dev):
            setattr(torch, dev, types.SimpleNamespace(is_available=lambda: False, device_count=lambda: 0,
                                                      empty_cache=lambda: None, manual_seed=lambda s: None))
    return torch


def patch_transformers():
    """Without the `tokenizers` package, transformers (this commit) falls back to a pure-Python AddedToken
    dataclass(eq=True) that has no __hash__, and the slow CLIPTokenizer's __init__ then fails with
    "unhashable type: 'AddedToken'". tokenizers' own AddedToken hashes by its content; give the fallback the
    same hash (equality unchanged), which is what a normal install behaves like. It also lacks the
    __setstate__ that _add_tokens calls; add one that updates the attributes (as tokenizers' does)."""
    import transformers.tokenization_utils_base as tub

    if getattr(tub.AddedToken, "__hash__", None) is None:
        tub.AddedToken.__hash__ = lambda self: hash(self.content)
    if not hasattr(tub.AddedToken, "__setstate__"):
        tub.AddedToken.__setstate__ = lambda self, state: self.__dict__.update(state)
        # and its __getstate__ returns the live __dict__, which save_pretrained then mutates (pops "special");
        # tokenizers returns a fresh dict
        tub.AddedToken.__getstate__ = lambda self: dict(self.__dict__)
