#!/usr/bin/env python3
"""Convert the public QKeras jet tagger `qkeras_3layer` into fastml-compile's model.json v1.

Usage (from the repository root):

    python3 models/qkeras_3layer/convert.py [--json PATH] [--h5 PATH] [--x PATH] [--y PATH] [--out PATH]

Needs only numpy and h5py. All default paths are relative to the repository root
(the directory two levels above this file), so the script works from any working directory.

What it does:
  1. reads the Keras architecture (qkeras_3layer.json) and the float weights (qkeras_3layer_weights.h5);
  2. quantises every QDense kernel and bias as QKeras `quantized_bits(6,0,alpha=1)` does at inference
     (mantissa = clip(round_half_even(w * 32), -32, 31), type fixed<6,1>);
  3. maps each `quantized_relu(6)` to ReLU -> Quantize ufixed<6,0,RND_CONV,SAT> (exactly equal, see README);
  4. writes model.json (one node per line, deterministic);
  5. re-reads the written file and runs a plain-numpy float64 forward pass of it (from the mantissas)
     on the 8 reference jets, applies softmax and compares with QKeras's own predictions
     (y_qkeras.npy[:8]); exits with status 1 if the max abs difference exceeds 1e-5.
"""

import argparse
import json
import os
import re
import sys

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
REF = os.path.normpath(os.path.join(REPO, "..", "shared", "reference"))

DEFAULTS = {
    "json": os.path.join(REF, "example-models", "keras", "qkeras_3layer.json"),
    "h5": os.path.join(REF, "example-models", "keras", "qkeras_3layer_weights.h5"),
    "x": os.path.join(REF, "test-hls4ml-backend", "data_X_inputs.dat"),
    "y": os.path.join(REF, "hls4ml-super", "tb_data", "y_qkeras.npy"),
    "out": os.path.join(HERE, "model.json"),
}

INPUT_TYPE = "fixed<16,6>"  # hls4ml config: fc1_input result ap_fixed<16,6> (TRN, WRAP by default)
TOLERANCE = 1e-5


# --------------------------------------------------------------------------------------------------
# QKeras quantisers, reproduced exactly for the configurations this model uses
# --------------------------------------------------------------------------------------------------

def quantized_bits_mantissa(w, cfg):
    """Integer mantissas of QKeras quantized_bits(bits, integer, symmetric, keep_negative, alpha).

    QKeras (qkeras/quantizers.py, quantized_bits.__call__, non-"auto" alpha branch):
        unsigned_bits = bits - keep_negative;  m = 2**unsigned_bits;  m_i = 2**integer
        p  = x * m / m_i
        xq = m_i * clip(round(p), keep_negative * (-m + symmetric), m - 1) / m
        xq = alpha * xq
    with round = tf.round (half to even). Returns (mantissas, type string).
    """
    bits = int(cfg["bits"])
    integer = int(cfg["integer"])
    symmetric = int(bool(cfg.get("symmetric", 0)))
    keep_negative = bool(cfg.get("keep_negative", True))
    alpha = cfg.get("alpha", None)
    if alpha not in (None, 1, 1.0):
        raise SystemExit(f"unsupported quantized_bits alpha={alpha!r} (only None or 1 map to a plain fixed type)")
    if cfg.get("use_stochastic_rounding", False):
        raise SystemExit("stochastic rounding is not supported")
    if float(cfg.get("qnoise_factor", 1.0)) != 1.0:
        raise SystemExit("qnoise_factor != 1 is not supported")
    unsigned_bits = bits - int(keep_negative)
    if unsigned_bits <= 0:
        raise SystemExit("1-bit (binary) quantized_bits is not supported")
    frac = unsigned_bits - integer  # value = mantissa * 2**-frac
    # float32 like TF; scaling by a power of two is exact, so float64 gives the same result
    p = np.asarray(w, dtype=np.float32).astype(np.float64) * (2.0 ** frac)
    lo = -(2 ** unsigned_bits) + symmetric if keep_negative else 0
    hi = 2 ** unsigned_bits - 1
    q = np.clip(np.rint(p), lo, hi)  # np.rint = round half to even = tf.round
    mant = q.astype(np.int64)
    assert np.array_equal(mant, q)
    # the mantissa range [lo, hi] is exactly the range of the fixed type below
    if keep_negative:
        typ = f"fixed<{bits},{integer + 1}>"
    else:
        typ = f"ufixed<{bits},{integer}>"
    stats = {
        "ties": int(np.sum(np.abs(p - np.floor(p) - 0.5) == 0)),
        "clipped": int(np.sum((np.rint(p) < lo) | (np.rint(p) > hi))),
    }
    return mant, typ, stats


def quantized_relu_type(cfg):
    """Type of the Quantize node that, after a ReLU node, equals QKeras quantized_relu(bits, integer).

    QKeras (quantized_relu.__call__, use_sigmoid=0, negative_slope=0):
        m = 2**bits; m_i = 2**integer
        p  = x * m / m_i
        xq = m_i * clip(round(p) / m, 0.0, 1.0 - 1.0/m)
    i.e. round half to even at step 2**(integer-bits), then clamp to [0, 2**integer - step]
    = ufixed<bits, integer, RND_CONV, SAT> applied to max(x, 0).
    """
    if cfg.get("use_sigmoid", 0):
        raise SystemExit("quantized_relu with use_sigmoid is not supported")
    if float(cfg.get("negative_slope", 0.0)) != 0.0:
        raise SystemExit("quantized_relu with negative_slope is not supported")
    if cfg.get("use_stochastic_rounding", False):
        raise SystemExit("stochastic rounding is not supported")
    if float(cfg.get("qnoise_factor", 1.0)) != 1.0:
        raise SystemExit("qnoise_factor != 1 is not supported")
    if cfg.get("relu_upper_bound", None) is not None:
        # only used when is_quantized_clip=False, and then only for the STE gradient path; the forward value
        # is still the clipped xq. Refuse anyway to keep the mapping obviously exact.
        raise SystemExit("relu_upper_bound is not supported")
    return f"ufixed<{int(cfg['bits'])},{int(cfg['integer'])},RND_CONV,SAT>"


# --------------------------------------------------------------------------------------------------
# conversion
# --------------------------------------------------------------------------------------------------

def convert(json_path, h5_path):
    with open(json_path) as f:
        arch = json.load(f)
    layers = arch["config"]["layers"]
    h5 = h5py.File(h5_path, "r")

    nodes = []
    report = []
    prev = None
    for layer in layers:
        cls = layer["class_name"]
        cfg = layer["config"]
        name = cfg["name"]
        if cls == "InputLayer":
            shape = cfg["batch_input_shape"][1:]
            nodes.append({"name": name, "op": "Input", "shape": shape, "type": INPUT_TYPE})
            prev = name
        elif cls == "QDense":
            if prev is None:  # Sequential without an explicit InputLayer
                shape = cfg["batch_input_shape"][1:]
                nodes.append({"name": "input", "op": "Input", "shape": shape, "type": INPUT_TYPE})
                prev = "input"
            if cfg.get("activation", "linear") != "linear":
                raise SystemExit(f"{name}: fused activation {cfg['activation']!r} not supported")
            grp = h5[name][name]
            kernel = np.array(grp["kernel:0"])
            km, ktype, kstats = quantized_bits_mantissa(kernel, cfg["kernel_quantizer"]["config"])
            node = {"name": name, "op": "Dense", "inputs": [prev],
                    "weight": {"shape": list(kernel.shape), "type": ktype, "data": km.reshape(-1).tolist()}}
            bstats = None
            if cfg.get("use_bias", True):
                bias = np.array(grp["bias:0"])
                bm, btype, bstats = quantized_bits_mantissa(bias, cfg["bias_quantizer"]["config"])
                node["bias"] = {"shape": list(bias.shape), "type": btype, "data": bm.tolist()}
            nodes.append(node)
            report.append((name, kernel.shape, int(np.count_nonzero(km)), km.size,
                           int(np.count_nonzero(bm)) if bstats else 0, bm.size if bstats else 0,
                           kstats, bstats))
            prev = name
        elif cls == "QActivation":
            act = cfg["activation"]
            if isinstance(act, str) or act.get("class_name") != "quantized_relu":
                raise SystemExit(f"{name}: only quantized_relu activations are supported, got {act!r}")
            qtype = quantized_relu_type(act["config"])
            # ReLU node keeps the Keras name; the Quantize node gets a derived name
            nodes.append({"name": name, "op": "ReLU", "inputs": [prev]})
            nodes.append({"name": name + "_q", "op": "Quantize", "inputs": [name], "type": qtype})
            prev = name + "_q"
        elif cls == "Activation" and cfg.get("activation") == "softmax":
            # softmax is not part of the hardware: the design outputs the logits
            continue
        else:
            raise SystemExit(f"{name}: unsupported layer {cls}")
    nodes.append({"name": "y", "op": "Output", "inputs": [prev]})

    model = {
        "format": "fastml-model",
        "version": 1,
        "name": "qkeras_3layer",
        "description": ("QKeras jet tagger qkeras_3layer (fastmachinelearning/example-models "
                        "keras/qkeras_3layer.json + qkeras_3layer_weights.h5), converted by "
                        "models/qkeras_3layer/convert.py. Output = logits of classes g,q,t,w,z "
                        "(softmax omitted)."),
        "nodes": nodes,
    }
    return model, report


def dumps(model):
    """Deterministic, one node per line."""
    head = {k: v for k, v in model.items() if k != "nodes"}
    lines = ["{"]
    for k, v in head.items():
        lines.append(f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)},")
    lines.append('  "nodes": [')
    node_lines = ["    " + json.dumps(n, separators=(",", ":"), ensure_ascii=False) for n in model["nodes"]]
    lines.append(",\n".join(node_lines))
    lines.append("  ]")
    lines.append("}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------
# a small reference interpreter of model.json (float64; exact for the values of this model)
# --------------------------------------------------------------------------------------------------

TYPE_RE = re.compile(r"^\s*(?:ap_)?(u?)fixed\s*<\s*(-?\d+)\s*,\s*(-?\d+)\s*(?:,\s*(?:AP_)?(\w+)\s*)?"
                     r"(?:,\s*(?:AP_)?(\w+)\s*)?>\s*$")


def parse_type(s):
    m = TYPE_RE.match(s)
    if not m:
        raise ValueError(f"bad type {s!r}")
    uns, w, i, q, o = m.groups()
    return {"signed": uns == "", "W": int(w), "I": int(i), "Q": q or "TRN", "O": o or "WRAP"}


def tensor_values(t):
    data = np.asarray(t["data"], dtype=np.int64)
    types = t.get("types") or [t["type"]] * len(data)
    out = np.empty(len(data), dtype=np.float64)
    for k, (d, ts) in enumerate(zip(data, types)):
        ty = parse_type(ts)
        lo, hi = mant_range(ty)
        if not lo <= d <= hi:
            raise ValueError(f"mantissa {d} does not fit {ts}")
        out[k] = float(d) * 2.0 ** -(ty["W"] - ty["I"])
    return out.reshape(t["shape"])


def mant_range(ty):
    if ty["signed"]:
        return -(2 ** (ty["W"] - 1)), 2 ** (ty["W"] - 1) - 1
    return 0, 2 ** ty["W"] - 1


def quantize(x, ty):
    """ap_fixed quantisation of float64 values (exact when x * 2**F is exactly representable)."""
    F = ty["W"] - ty["I"]
    s = x * 2.0 ** F
    fl = np.floor(s)
    r = s - fl
    q = ty["Q"]
    if q == "TRN":
        m = fl
    elif q == "TRN_ZERO":
        m = np.trunc(s)
    elif q == "RND":
        m = np.floor(s + 0.5)
    elif q == "RND_ZERO":
        m = np.where(r == 0.5, np.trunc(s), np.floor(s + 0.5))
    elif q == "RND_INF":
        m = np.where(r == 0.5, np.where(s > 0, fl + 1, fl), np.floor(s + 0.5))
    elif q == "RND_MIN_INF":
        m = np.where(r == 0.5, fl, np.floor(s + 0.5))
    elif q == "RND_CONV":
        m = np.rint(s)
    else:
        raise ValueError(q)
    lo, hi = mant_range(ty)
    o = ty["O"]
    if o == "WRAP":
        mod = 2 ** ty["W"]
        m = np.mod(m - lo, mod) + lo
    elif o == "SAT":
        m = np.clip(m, lo, hi)
    elif o == "SAT_ZERO":
        m = np.where((m < lo) | (m > hi), 0, m)
    elif o == "SAT_SYM":
        m = np.clip(m, -hi if ty["signed"] else 0, hi)
    else:
        raise ValueError(o)
    return m * 2.0 ** -F


def run_model(model, x, quantize_input=True):
    """Forward pass of a model.json (dict) on a batch x (n, n_in); returns list of output arrays."""
    nodes = {n["name"]: n for n in model["nodes"]}
    vals = {}

    def ev(name):
        if name in vals:
            return vals[name]
        n = nodes[name]
        op = n["op"]
        if op == "Input":
            v = x
            if quantize_input:
                if "types" in n:
                    v = np.stack([quantize(x[:, k], parse_type(t)) for k, t in enumerate(n["types"])], axis=1)
                else:
                    v = quantize(x, parse_type(n["type"]))
        else:
            a = ev(n["inputs"][0])
            if op == "Dense":
                v = a @ tensor_values(n["weight"])
                if "bias" in n:
                    v = v + tensor_values(n["bias"])
            elif op == "BatchNorm":
                v = a * tensor_values(n["scale"]) + tensor_values(n["shift"])
            elif op == "ReLU":
                v = np.maximum(a, 0.0)
            elif op == "Quantize":
                if "types" in n:
                    v = np.stack([quantize(a[:, k], parse_type(t)) for k, t in enumerate(n["types"])], axis=1)
                else:
                    v = quantize(a, parse_type(n["type"]))
            elif op == "Output":
                v = a
            else:
                raise ValueError(op)
        vals[name] = v
        return v

    return [ev(n["name"]) for n in model["nodes"] if n["op"] == "Output"]


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for k, v in DEFAULTS.items():
        ap.add_argument("--" + k, default=v, help=f"default: {os.path.relpath(v, REPO)}")
    args = ap.parse_args()

    model, report = convert(args.json, args.h5)
    text = dumps(model)
    with open(args.out, "w") as f:
        f.write(text)
    print(f"wrote {os.path.relpath(args.out)} ({len(text)} bytes, {len(model['nodes'])} nodes)")
    for name, shape, knz, kn, bnz, bn, ks, bs in report:
        print(f"  {name:7s} kernel {shape[0]:3d}x{shape[1]:<3d} nonzero {knz:5d}/{kn:<5d} ({knz / kn:.3f})"
              f"  bias nonzero {bnz:2d}/{bn:<2d}"
              f"  exact ties {ks['ties']}+{bs['ties'] if bs else 0}  clipped {ks['clipped']}+{bs['clipped'] if bs else 0}")

    # ---- check: re-read the file just written and run it ----
    with open(args.out) as f:
        written = json.load(f)
    x = np.loadtxt(args.x, dtype=np.float64)
    y_ref = np.load(args.y)[: x.shape[0]].astype(np.float64)
    # QKeras predicted on float32 inputs without any input quantisation
    x32 = x.astype(np.float32).astype(np.float64)
    (logits,) = run_model(written, x32, quantize_input=False)
    diff = np.max(np.abs(softmax(logits) - y_ref))
    print(f"check vs y_qkeras[:{x.shape[0]}] (unquantised inputs, softmax): max abs diff = {diff:.3e}")
    # informational: the hardware quantises the inputs to the Input type first
    (logits_q,) = run_model(written, x, quantize_input=True)
    diff_q = np.max(np.abs(softmax(logits_q) - y_ref))
    agree = int(np.sum(np.argmax(logits_q, 1) == np.argmax(y_ref, 1)))
    print(f"info: with inputs quantised to {INPUT_TYPE} (as the hardware does): max abs diff = {diff_q:.3e}, "
          f"argmax agrees on {agree}/{x.shape[0]}")
    if not diff <= TOLERANCE:
        print(f"FAIL: max abs diff {diff:.3e} > {TOLERANCE:g}", file=sys.stderr)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
