#!/usr/bin/env python3
"""Validate the hand-written model.json files and show what they exercise.

Usage:  python3 models/handwritten/check.py [FILE.json ...]      (default: every *.json next to this script)

Standard library only. For each file it:
  * checks the rules of docs/model-json.md (fields, types, mantissa ranges, shapes, graph, BatchNorm placement);
  * runs an exact interpreter (Python Fractions, no floats) on a deterministic set of in-range, on-grid
    input vectors (corner mantissas, all combinations where that is small, plus 3000 random mantissas);
  * prints, for each Quantize node (each element if it has per-element `types`), how often the rounding was
    inexact, how often it hit an exact tie, and how often the overflow mode acted (the rounded mantissa was
    outside the type's range), so you can see that each mode really does something;
  * does the same for the Input's own quantisation on real values (off-grid, ties, out of range), which is
    what a host does before it drives the input port.
Exit status 1 if a file breaks a rule.
"""

import glob
import json
import os
import random
import re
import sys
from fractions import Fraction

ROUNDING = ["TRN", "TRN_ZERO", "RND", "RND_ZERO", "RND_INF", "RND_MIN_INF", "RND_CONV"]
OVERFLOW = ["WRAP", "SAT", "SAT_ZERO", "SAT_SYM"]
TYPE_RE = re.compile(r"^(?:ap_)?(u?)fixed<(-?\d+),(-?\d+)(?:,(\w+),(\w+))?>$")

TOP_FIELDS = {"format", "version", "name", "nodes", "description"}
OP_FIELDS = {
    "Input": {"shape", "type", "types"},
    "Dense": {"weight", "bias"},
    "BatchNorm": {"scale", "shift"},
    "ReLU": set(),
    "Quantize": {"type", "types"},
    "Output": set(),
}


class Bad(Exception):
    pass


def parse_type(s, where):
    if not isinstance(s, str):
        raise Bad(f"{where}: type must be a string")
    m = TYPE_RE.match(s.replace(" ", ""))
    if not m:
        raise Bad(f"{where}: bad type {s!r}")
    uns, w, i, q, o = m.groups()
    W, I = int(w), int(i)
    if not 1 <= W <= 64:
        raise Bad(f"{where}: W={W} not in 1..64")
    q = (q or "TRN")
    o = (o or "WRAP")
    q = q[3:] if q.startswith("AP_") else q
    o = o[3:] if o.startswith("AP_") else o
    if q not in ROUNDING or o not in OVERFLOW:
        raise Bad(f"{where}: unknown mode in {s!r}")
    signed = uns == ""
    lo, hi = (-(1 << (W - 1)), (1 << (W - 1)) - 1) if signed else (0, (1 << W) - 1)
    return {"s": s, "signed": signed, "W": W, "I": I, "F": W - I, "Q": q, "O": o, "lo": lo, "hi": hi}


def types_of(obj, n, where):
    if ("type" in obj) == ("types" in obj):
        raise Bad(f"{where}: exactly one of type/types")
    if "type" in obj:
        return [parse_type(obj["type"], where + ".type")] * n
    ts = obj["types"]
    if not isinstance(ts, list) or len(ts) != n:
        raise Bad(f"{where}.types: need {n} types")
    return [parse_type(t, f"{where}.types[{k}]") for k, t in enumerate(ts)]


def tensor(t, shape, where):
    if not isinstance(t, dict) or set(t) - {"shape", "type", "types", "data"}:
        raise Bad(f"{where}: bad tensor fields")
    if t.get("shape") != shape:
        raise Bad(f"{where}.shape: expected {shape}, got {t.get('shape')}")
    n = 1
    for d in shape:
        n *= d
    data = t.get("data")
    if not isinstance(data, list) or len(data) != n:
        raise Bad(f"{where}.data: need {n} integers")
    tys = types_of(t, n, where)
    vals = []
    for k, (d, ty) in enumerate(zip(data, tys)):
        if not isinstance(d, int) or isinstance(d, bool):
            raise Bad(f"{where}.data[{k}]: not an integer")
        if not ty["lo"] <= d <= ty["hi"]:
            raise Bad(f"{where}.data[{k}]: mantissa {d} does not fit {ty['s']}")
        vals.append(Fraction(d) / Fraction(2) ** ty["F"])
    return vals, data


def quantize(v, ty, stats=None):
    """Exact ap_fixed quantisation of a Fraction; returns the quantised Fraction."""
    s = v * Fraction(2) ** ty["F"]
    fl = s.numerator // s.denominator
    r = s - fl
    half = Fraction(1, 2)
    q = ty["Q"]
    if r == 0:
        m = fl
    elif q == "TRN":
        m = fl
    elif q == "TRN_ZERO":
        m = fl if s > 0 else fl + 1
    elif r != half:
        m = fl if r < half else fl + 1
    elif q == "RND":
        m = fl + 1
    elif q == "RND_ZERO":
        m = fl if s > 0 else fl + 1
    elif q == "RND_INF":
        m = fl + 1 if s > 0 else fl
    elif q == "RND_MIN_INF":
        m = fl
    else:  # RND_CONV
        m = fl if fl % 2 == 0 else fl + 1
    lo, hi = ty["lo"], ty["hi"]
    o = ty["O"]
    # As in ap_fixed (overflow_adjust): SAT_SYM acts only on overflow; an in-range -2^(W-1) stays.
    at_min = o == "SAT_SYM" and ty["signed"] and m == lo
    ovf = not lo <= m <= hi
    if ovf and o == "WRAP":
        m = (m - lo) % (1 << ty["W"]) + lo
    elif ovf and o == "SAT":
        m = min(max(m, lo), hi)
    elif ovf and o == "SAT_ZERO":
        m = 0
    elif ovf and o == "SAT_SYM":
        m = min(max(m, -hi if ty["signed"] else 0), hi)
    if stats is not None:
        stats["n"] += 1
        stats["inexact"] += r != 0
        stats["tie"] += r == half
        stats["ovf"] += ovf
        stats["min_sym"] += at_min
    return Fraction(m) / Fraction(2) ** ty["F"]


def validate(model):
    if not isinstance(model, dict) or set(model) - TOP_FIELDS:
        raise Bad(f"top level: unknown fields {sorted(set(model) - TOP_FIELDS)}")
    if model.get("format") != "fastml-model" or model.get("version") != 1:
        raise Bad("format/version")
    nodes = model["nodes"]
    byname = {}
    for k, n in enumerate(nodes):
        w = f"nodes[{k}]"
        op = n.get("op")
        if op not in OP_FIELDS:
            raise Bad(f"{w}.op: unknown {op!r}")
        extra = set(n) - {"name", "op", "inputs"} - OP_FIELDS[op]
        if extra:
            raise Bad(f"{w}: unknown fields {sorted(extra)}")
        if n["name"] in byname:
            raise Bad(f"{w}.name: duplicate {n['name']!r}")
        byname[n["name"]] = (k, n)
        if op == "Input":
            if n.get("inputs"):
                raise Bad(f"{w}: Input takes no inputs")
        elif not isinstance(n.get("inputs"), list) or len(n["inputs"]) != 1:
            raise Bad(f"{w}.inputs: exactly one input")
    inputs = [n for n in nodes if n["op"] == "Input"]
    if len(inputs) != 1:
        raise Bad("exactly one Input")
    if not any(n["op"] == "Output" for n in nodes):
        raise Bad("at least one Output")
    consumers = {n["name"]: [] for n in nodes}
    for n in nodes:
        for i in n.get("inputs", []):
            if i not in byname:
                raise Bad(f"node {n['name']!r}: unknown input {i!r}")
            consumers[i].append(n["name"])
    # topological order + widths + constants
    order, state = [], {}

    def visit(name):
        if state.get(name) == 1:
            raise Bad(f"cycle through {name!r}")
        if state.get(name) == 2:
            return
        state[name] = 1
        for i in byname[name][1].get("inputs", []):
            visit(i)
        state[name] = 2
        order.append(name)

    for n in nodes:
        visit(n["name"])
    width, const = {}, {}
    for name in order:
        k, n = byname[name]
        w = f"nodes[{k}]"
        op = n["op"]
        if op == "Input":
            if not (isinstance(n.get("shape"), list) and len(n["shape"]) == 1 and n["shape"][0] >= 1):
                raise Bad(f"{w}.shape: need [n]")
            width[name] = n["shape"][0]
            const[name] = types_of(n, width[name], w)
            continue
        src = n["inputs"][0]
        nin = width[src]
        if op == "Dense":
            wt, _ = tensor(n["weight"], [nin, n["weight"].get("shape", [0, 0])[1]], w + ".weight")
            nout = n["weight"]["shape"][1]
            b = tensor(n["bias"], [nout], w + ".bias")[0] if "bias" in n else [Fraction(0)] * nout
            width[name] = nout
            const[name] = (wt, b)
        elif op == "BatchNorm":
            if byname[src][1]["op"] != "Dense" or len(consumers[src]) != 1:
                raise Bad(f"{w}: BatchNorm must directly follow a Dense with no other consumer")
            width[name] = nin
            const[name] = (tensor(n["scale"], [nin], w + ".scale")[0], tensor(n["shift"], [nin], w + ".shift")[0])
        elif op == "Quantize":
            width[name] = nin
            const[name] = types_of(n, nin, w)
        else:
            width[name] = nin
    return byname, order, width, const


def run(byname, order, width, const, x, stats):
    val = {}
    for name in order:
        n = byname[name][1]
        op = n["op"]
        if op == "Input":
            val[name] = [quantize(v, t, stats[name][k]) for k, (v, t) in enumerate(zip(x, const[name]))]
            continue
        a = val[n["inputs"][0]]
        if op == "Dense":
            wt, b = const[name]
            nout = width[name]
            val[name] = [sum((a[i] * wt[i * nout + j] for i in range(len(a))), Fraction(0)) + b[j]
                         for j in range(nout)]
        elif op == "BatchNorm":
            sc, sh = const[name]
            val[name] = [a[j] * sc[j] + sh[j] for j in range(len(a))]
        elif op == "ReLU":
            val[name] = [max(v, Fraction(0)) for v in a]
        elif op == "Quantize":
            val[name] = [quantize(v, t, stats[name][k]) for k, (v, t) in enumerate(zip(a, const[name]))]
        else:
            val[name] = a
    return val


def grid_vectors(in_types, rng, n_random=3000):
    """In-range, on-grid inputs (what the design's input port can carry): corners and random mantissas."""
    import itertools
    per = []
    for t in in_types:
        ms = {0, t["lo"], t["hi"], t["lo"] + 1, t["hi"] - 1, 1, -1 if t["signed"] else 2}
        per.append(sorted(m for m in ms if t["lo"] <= m <= t["hi"]))
    n = len(in_types)
    total = 1
    for p in per:
        total *= len(p)
    if total <= 20000:
        mvecs = [list(c) for c in itertools.product(*per)]
    else:
        mvecs = []
        for k in range(n):
            for m in per[k]:
                vec = [0] * n
                vec[k] = m
                mvecs.append(vec)
    for _ in range(n_random):
        mvecs.append([rng.randint(t["lo"], t["hi"]) for t in in_types])
    return [[Fraction(m) / Fraction(2) ** t["F"] for m, t in zip(mv, in_types)] for mv in mvecs]


def real_values(t, rng, n_random=3000):
    """Real values for one Input element: off-grid, ties and out of range (1.5x), to exercise input quantisation."""
    step = Fraction(1) / Fraction(2) ** t["F"]
    lo, hi = t["lo"] * step, t["hi"] * step
    vals = [hi + step / 2, lo - step / 2, step / 2, -step / 2, step / 4, -3 * step / 4, hi + step, lo - step,
            2 * hi, 2 * lo - step]
    span = t["hi"] - t["lo"] + 1
    for _ in range(n_random):
        m = rng.randrange(t["lo"] * 16 - span * 4, t["hi"] * 16 + span * 4 + 1)
        vals.append(Fraction(m, 16) * step)
    return vals


def fmt(n, op, label, t, st):
    return (f"  {op:8s} {label:16s} {t['s']:36s} inexact {st['inexact']:5d}  ties {st['tie']:5d}"
            f"  overflow {st['ovf']:5d} / {st['n']}"
            + (f"  (in-range -2^(W-1) kept under SAT_SYM: {st['min_sym']})" if st["min_sym"] else ""))


def check_file(path):
    with open(path) as f:
        model = json.load(f)
    byname, order, width, const = validate(model)
    inp = next(n for n in model["nodes"] if n["op"] == "Input")
    new = lambda: {"n": 0, "inexact": 0, "tie": 0, "ovf": 0, "min_sym": 0}
    stats = {name: [new() for _ in range(width[name])]
             for name in order if byname[name][1]["op"] in ("Input", "Quantize")}
    rng = random.Random(12345)
    vecs = grid_vectors(const[inp["name"]], rng)
    for x in vecs:
        run(byname, order, width, const, x, stats)
    print(f"{os.path.basename(path)}: OK ({len(model['nodes'])} nodes; {len(vecs)} in-range input vectors)")
    for k, t in enumerate(const[inp["name"]]):
        if "types" not in inp and k > 0:
            break
        st = new()
        for v in real_values(t, rng):
            quantize(v, t, st)
        print(fmt(st["n"], "Input", f"{inp['name']}[{k}] (reals)", t, st))
    for name in order:
        n = byname[name][1]
        if n["op"] != "Quantize":
            continue
        if "types" in n:
            for k, st in enumerate(stats[name]):
                print(fmt(st["n"], "Quantize", f"{name}[{k}]", const[name][k], st))
        else:
            agg = {key: sum(s[key] for s in stats[name]) for key in new()}
            print(fmt(agg["n"], "Quantize", name, const[name][0], agg))
    return 0


def main():
    files = sys.argv[1:] or sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "*.json")))
    rc = 0
    for p in files:
        try:
            check_file(p)
        except Bad as e:
            print(f"{p}: INVALID: {e}")
            rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
