"""Small output helpers for the reference scripts: float32-exact JSON, raw float32 blobs, ONNX I/O summaries."""
import hashlib
import json
import math
import os

import numpy as np


class F32:
    """A flat float32 array, written to JSON as the shortest decimal that round-trips each float32
    (parse as double, then Math.fround, gives the float32 back exactly)."""

    def __init__(self, a):
        self.a = np.asarray(a, dtype=np.float32).reshape(-1)

    def dumps(self):
        for x in self.a:
            if not np.isfinite(x):
                raise ValueError("non-finite value")
        return "[" + ",".join(repr(v) for v in self.a) + "]"


def f32list(a):
    return F32(a)


def dumps(o):
    if isinstance(o, F32):
        return o.dumps()
    if isinstance(o, dict):
        return "{" + ", ".join(json.dumps(str(k)) + ": " + dumps(v) for k, v in o.items()) + "}"
    if isinstance(o, (list, tuple)):
        return "[" + ", ".join(dumps(v) for v in o) + "]"
    if isinstance(o, float) and not math.isfinite(o):
        # JSON has no infinities (scheduler configs hold -inf): written as strings, as in test/golden/vectors.
        return json.dumps(str(o).replace("inf", "Infinity").replace("nan", "NaN"))
    return json.dumps(o)


def stats(a):
    a = np.asarray(a, dtype=np.float32)
    a64 = a.astype(np.float64)
    return {
        "shape": list(a.shape),
        "min": float(a.min()),
        "max": float(a.max()),
        "mean_f64": float(a64.mean()),
        "sum_f64": float(a64.sum()),
        "sum_sq_f64": float((a64 * a64).sum()),
    }


def inline(a):
    a = np.asarray(a, dtype=np.float32)
    return {"shape": list(a.shape), "values": f32list(a)}


def blob(folder, rel, a):
    """Write a as raw little-endian float32 (C order) at folder/rel; return its descriptor."""
    a = np.ascontiguousarray(np.asarray(a, dtype="<f4"))
    path = os.path.join(folder, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = a.tobytes()
    with open(path, "wb") as f:
        f.write(data)
    d = {"file": rel, "dtype": "float32-le", "sha256": hashlib.sha256(data).hexdigest()}
    d.update(stats(a))
    return d


def onnx_io(path):
    import onnx

    m = onnx.load(path, load_external_data=False)
    names = {1: "float32", 7: "int64", 6: "int32", 10: "float16", 9: "bool", 11: "float64"}

    def desc(v):
        t = v.type.tensor_type
        dims = [d.dim_param if d.dim_param else d.dim_value for d in t.shape.dim]
        return {"name": v.name, "dtype": names.get(t.elem_type, str(t.elem_type)), "dims": dims}

    inits = {i.name for i in m.graph.initializer}
    return {
        "opset": max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")),
        "inputs": [desc(v) for v in m.graph.input if v.name not in inits],
        "outputs": [desc(v) for v in m.graph.output],
    }


def write_json(path, header, cases):
    """Header keys first, then "cases" with one case per line (like test/golden/vectors)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("{\n")
        for k, v in header.items():
            f.write(f"  {json.dumps(k)}: {dumps(v)},\n")
        f.write('  "cases": [\n')
        for i, c in enumerate(cases):
            f.write("    " + dumps(c) + ("," if i + 1 < len(cases) else "") + "\n")
        f.write("  ]\n}\n")
