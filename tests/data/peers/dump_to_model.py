#!/usr/bin/env python3
"""Write model.json (version 2) for seed_lutnet and deepsets from the peers' layer dumps
(`<model>.weights.json`, made by shared/peers/make_seed_lutnet.py and make_family_models.py with the
Keras layers themselves: every quantiser's k/i/f and modes, quantised kernels and biases, and for
seed_lutnet every table evaluated by the Keras layer over its whole input grid).

This is a test fixture builder, not the exporter: it needs the dump, which only the training harness
can write. `fastml-export` reads the `.keras` files themselves. Standard library only.

    python3 tests/data/peers/dump_to_model.py seed_lutnet models/seed_lutnet/model.json
    python3 tests/data/peers/dump_to_model.py deepsets models/deepsets/model.json
"""

import ast
import json
import sys
from fractions import Fraction
from pathlib import Path

HERE = Path(__file__).resolve().parent


def arr(v):
    return v if isinstance(v, list) else ast.literal_eval(v)


def flat(x):
    if isinstance(x, list):
        out = []
        for e in x:
            out.extend(flat(e))
        return out
    return [x]


def kif_type(k, i, f, rm, om):
    """HGQ's fixed<k,i,f> (k sign bit, i integer bits without it) as a model.json type, or None for
    zero width (always 0)."""
    w = k + i + f
    if w <= 0:
        return None
    return f"fixed<{w},{k + i},{rm},{om}>" if k else f"ufixed<{w},{i},{rm},{om}>"


def mant(v, frac):
    m = Fraction(v) * 2**frac
    assert m.denominator == 1, (v, frac)
    return int(m)


def seed_lutnet(d):
    layers = [l for l in d["layers"] if l["class"] == "QDenseT"]
    # The Input keeps one more fractional bit than any first-layer domain and a wider wrap window, so
    # TRN to it and then each domain's RND/WRAP gives exactly the domain quantisation of the real input
    # (floor then round-half-up composes with one extra bit; wrap-around composes with a wider window).
    first = layers[0]["tables"]
    frac = max(t["in_kif"][2] for t in first) + 1
    ints = max(t["in_kif"][0] + t["in_kif"][1] for t in first) + 1
    nodes = [{"name": "x_in", "op": "Input", "shape": [16], "type": f"fixed<{frac + ints},{ints}>"}]
    prev = "x_in"
    for L in layers:
        cfg = L["input_quantizer"]["config"]
        rm, om = cfg["round_mode"], cfg["overflow_mode"]
        tables, bias = [], [Fraction(0)] * L["n_out"]
        for t in L["tables"]:
            k, i, f = t["in_kif"]
            dom = kif_type(k, i, f, rm, om)
            if dom is None:  # a zero-width domain: the table's only entry is a constant
                bias[t["out"]] += Fraction(t["values"][0])
                continue
            fo = max(t["out_kif"][2], 0)
            data = [mant(v, fo) for v in t["values"]]
            tables.append({"in": t["in"], "out": t["out"], "domain": dom,
                           "table": {"shape": [len(data)], "type": f"fixed<32,{32 - fo}>", "data": data}})
        node = {"name": L["name"], "op": "LookupDense", "inputs": [prev], "n_out": L["n_out"], "tables": tables}
        if any(bias):
            bf = max(max(b.denominator.bit_length() - 1 for b in bias), 0)
            node["bias"] = {"shape": [L["n_out"]], "type": f"fixed<32,{32 - bf}>", "data": [mant(b, bf) for b in bias]}
        nodes.append(node)
        prev = L["name"]
    nodes.append({"name": "logits", "op": "Output", "inputs": [prev]})
    return nodes


def deepsets(d):
    L = {l["path"]: l for l in d["layers"]}
    nodes = [{"name": "x_in", "op": "Input", "shape": [16], "type": "fixed<16,6>"},
             {"name": "to_set", "op": "Reshape", "inputs": ["x_in"], "shape": [16, 1]}]
    state = {"prev": "to_set", "shape": [16, 1]}

    def add(node):
        nodes.append(node)
        state["prev"] = node["name"]

    def quant(name, q):
        n = 1
        for s in state["shape"]:
            n *= s
        k, i, f = (flat(arr(q[c])) for c in "kif")
        types, zero = [], []
        for e in range(n):
            t = kif_type(k[e % len(k)], i[e % len(i)], f[e % len(f)], q["round_mode"], q["overflow_mode"])
            zero.append(t is None)
            types.append(t or "ufixed<1,0>")
        add({"name": name, "op": "Quantize", "inputs": [state["prev"]], "types": types})
        if any(zero):  # zero-width elements are always 0
            add({"name": name + "_zero", "op": "BatchNorm", "inputs": [state["prev"]],
                 "scale": {"shape": state["shape"], "type": "ufixed<1,1>", "data": [0 if z else 1 for z in zero]},
                 "shift": {"shape": state["shape"], "type": "ufixed<1,1>", "data": [0] * n}})

    def dense(name, l):
        K, B = arr(l["kernel_quantized"]), arr(l["bias_quantized"])
        frac = 12
        add({"name": name, "op": "Dense", "inputs": [state["prev"]],
             "weight": {"shape": [len(K), len(K[0])], "type": "fixed<24,12>", "data": [mant(v, frac) for r in K for v in r]},
             "bias": {"shape": [len(B)], "type": "fixed<24,12>", "data": [mant(v, frac) for v in B]}})
        state["shape"] = state["shape"][:-1] + [len(K[0])]
        if l["activation"] == "relu":
            add({"name": name + "_relu", "op": "ReLU", "inputs": [state["prev"]]})

    def q(l, role):
        return next(x for x in l["quantizers"] if x["role"] == role)

    quant("phi1_iq", q(L["phi1"], "iq"))
    dense("phi1", L["phi1"])
    quant("phi2_iq", q(L["phi2"], "iq"))
    dense("phi2", L["phi2"])
    quant("pool_iq", q(L["pool"], "iq"))
    add({"name": "pool", "op": "Reduce", "inputs": [state["prev"]], "axis": 0, "kind": "mean"})
    state["shape"] = [16]
    quant("rho1_iq", q(L["rho1"], "iq"))
    dense("rho1", L["rho1"])
    quant("output_iq", q(L["output"], "iq"))
    dense("output", L["output"])
    add({"name": "logits", "op": "Output", "inputs": [state["prev"]]})
    return nodes


def main():
    model, out = sys.argv[1], Path(sys.argv[2])
    d = json.loads((HERE / f"{model}.weights.json").read_text())
    nodes = {"seed_lutnet": seed_lutnet, "deepsets": deepsets}[model](d)
    doc = {"format": "fastml-model", "version": 2, "name": model,
           "description": f"{model}: written by tests/data/peers/dump_to_model.py from the peers' layer dump {model}.weights.json",
           "nodes": nodes}
    lines = [json.dumps(n, separators=(",", ":")) for n in nodes]
    head = json.dumps({k: v for k, v in doc.items() if k != "nodes"}, indent=2)[:-2]
    out.write_text(f'{head},\n  "nodes": [\n    ' + ",\n    ".join(lines) + "\n  ]\n}\n")


if __name__ == "__main__":
    main()
