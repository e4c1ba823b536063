"""An independent, exact evaluator of model.json (versions 1 and 2, docs/model-json.md), for tests only.

It shares no code with the exporter (fastml_export) or the compiler: it reads the JSON, and computes
with Python integers only. A tensor of a batch is an object ndarray of integer mantissas of shape
(batch, *shape) with ONE common number of fractional bits F (value = m / 2^F); every op is exact, and
rounding/overflow happen only in `Quantize`, at `Input` (real inputs) and in table domains, with the
modes of the docs' tables:

    TRN floor, TRN_ZERO towards 0, RND ties +inf, RND_ZERO ties to 0, RND_INF ties away from 0,
    RND_MIN_INF ties -inf, RND_CONV ties to even; then WRAP (keep W bits), SAT, SAT_ZERO, SAT_SYM
    (signed below the minimum -> -max; an in-range -max-1 stays).

Ops: Input, Dense (last axis, shared over leading axes), BatchNorm ([n] broadcast or the whole shape),
ReLU, Quantize, Output, Add, Mul, Reduce (sum/max/mean, mean needs a power-of-two length), Reshape,
Transpose, Concat, Table, LookupDense. The checks a reader must make (shapes, mantissas that fit their
types, table lengths 2^W, each (in, out) pair at most once) raise `ModelError`.

    from v2_eval import Model
    m = Model.load("model.json")
    outs = m.predict_reals(rows)          # rows: list of lists of Python floats (or Fractions)
    # -> list (per row) of lists of Fractions, the outputs in Output order, each row-major
"""

from __future__ import annotations

import json
import re
from fractions import Fraction
from math import prod

import numpy as np

ROUNDING = ("TRN", "TRN_ZERO", "RND", "RND_ZERO", "RND_INF", "RND_MIN_INF", "RND_CONV")
OVERFLOW = ("WRAP", "SAT", "SAT_ZERO", "SAT_SYM")


class ModelError(Exception):
    pass


class Type:
    __slots__ = ("signed", "width", "int_bits", "rounding", "overflow")

    _RE = re.compile(r"^(?:ap_)?(u?)fixed<\s*(-?\d+)\s*,\s*(-?\d+)\s*(?:,\s*(?:AP_)?([A-Z_]+)\s*)?(?:,\s*(?:AP_)?([A-Z_]+)\s*)?>$")

    def __init__(self, text: str):
        m = self._RE.match(text.strip())
        if not m:
            raise ModelError(f"bad type {text!r}")
        self.signed = m.group(1) != "u"
        self.width, self.int_bits = int(m.group(2)), int(m.group(3))
        self.rounding = m.group(4) or "TRN"
        self.overflow = m.group(5) or "WRAP"
        if not 1 <= self.width <= 64:
            raise ModelError(f"type {text!r}: width outside 1..64")
        if self.rounding not in ROUNDING or self.overflow not in OVERFLOW:
            raise ModelError(f"type {text!r}: unknown mode")

    @property
    def frac(self) -> int:
        return self.width - self.int_bits

    @property
    def lo(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def hi(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1


def _types(obj: dict, n: int, where: str) -> list[Type]:
    if ("type" in obj) == ("types" in obj):
        raise ModelError(f"{where}: exactly one of type/types")
    if "type" in obj:
        return [Type(obj["type"])] * n
    ts = obj["types"]
    if len(ts) != n:
        raise ModelError(f"{where}: {len(ts)} types for {n} elements")
    cache: dict[str, Type] = {}
    for t in ts:
        if t not in cache:
            cache[t] = Type(t)
    return [cache[t] for t in ts]


def const(obj: dict, where: str) -> tuple[np.ndarray, int]:
    """A model.json tensor as (object array of mantissas at a common frac F, F)."""
    shape = [int(d) for d in obj["shape"]]
    data = obj["data"]
    n = prod(shape)
    if len(data) != n:
        raise ModelError(f"{where}: {len(data)} data for shape {shape}")
    ts = _types(obj, n, where)
    for k, (m, t) in enumerate(zip(data, ts)):
        if not isinstance(m, int) or not t.lo <= m <= t.hi:
            raise ModelError(f"{where}.data[{k}] = {m!r} does not fit its type")
    F = max([0] + [t.frac for t in ts])  # common frac, never negative (a type's own frac may be)
    arr = np.array([m << (F - t.frac) for m, t in zip(data, ts)] + [0], dtype=object)[:-1].reshape(shape)
    return arr, F


# ---------------------------------------------------------------------------------------------------------
# exact rounding and overflow


def _shift_round(m: np.ndarray, s: int, mode: str) -> np.ndarray:
    """round(m / 2^s) by `mode` (s > 0), elementwise on an object array of ints."""
    fl = m >> s  # floor
    r = m - (fl << s)  # remainder in [0, 2^s)
    half = 1 << (s - 1)
    if mode == "TRN":
        return fl
    gt, eq, nz = r > half, r == half, r != 0
    neg = m < 0
    if mode == "TRN_ZERO":
        return np.where(neg & nz, fl + 1, fl)
    if mode == "RND":
        return np.where(gt | eq, fl + 1, fl)
    if mode == "RND_MIN_INF":
        return np.where(gt, fl + 1, fl)
    if mode == "RND_ZERO":  # ties towards zero: negative ties go up, positive ties stay
        return np.where(gt | (eq & neg), fl + 1, fl)
    if mode == "RND_INF":  # ties away from zero
        return np.where(gt | (eq & ~neg), fl + 1, fl)
    if mode == "RND_CONV":
        odd = (fl & 1) == 1
        return np.where(gt | (eq & odd), fl + 1, fl)
    raise ModelError(f"rounding {mode}")


def _overflow(q: np.ndarray, t: Type) -> np.ndarray:
    lo, hi = t.lo, t.hi
    if t.overflow == "WRAP":
        span = 1 << t.width
        return ((q - lo) % span) + lo
    if t.overflow == "SAT":
        return np.where(q > hi, hi, np.where(q < lo, lo, q))
    if t.overflow == "SAT_ZERO":
        return np.where((q > hi) | (q < lo), 0, q)
    if t.overflow == "SAT_SYM":
        low = -hi if t.signed else lo
        return np.where(q > hi, hi, np.where(q < lo, low, q))
    raise ModelError(f"overflow {t.overflow}")


def quantize_column(m: np.ndarray, F: int, t: Type) -> np.ndarray:
    """Mantissas (frac t.frac) of the values m / 2^F quantised to t (its rounding, then its overflow)."""
    f = t.frac
    q = m * (1 << (f - F)) if f >= F else _shift_round(m, F - f, t.rounding)
    return _overflow(q, t)


def _to_obj(a) -> np.ndarray:
    out = np.empty(np.shape(a), dtype=object)
    out[...] = a
    return out


def _align(m: np.ndarray, F: int, G: int) -> np.ndarray:
    return m * (1 << (G - F)) if G > F else m


# ---------------------------------------------------------------------------------------------------------
# the model


class Model:
    def __init__(self, doc: dict):
        if doc.get("format") != "fastml-model":
            raise ModelError("format must be fastml-model")
        self.version = doc.get("version")
        if self.version not in (1, 2):
            raise ModelError(f"version {self.version!r}")
        self.doc = doc
        self.nodes = {}
        for n in doc["nodes"]:
            if n["name"] in self.nodes:
                raise ModelError(f"duplicate node {n['name']!r}")
            self.nodes[n["name"]] = n
        self.order = self._toposort()
        inputs = [n for n in doc["nodes"] if n["op"] == "Input"]
        if len(inputs) != 1:
            raise ModelError("exactly one Input")
        self.input = inputs[0]
        self.outputs = [n["name"] for n in doc["nodes"] if n["op"] == "Output"]
        if not self.outputs:
            raise ModelError("no Output")
        self._prep = {}
        self.shapes = self._infer_shapes()
        if self.version == 1:
            bad = [k for k, s in self.shapes.items() if len(s) != 1]
            v2ops = {"Add", "Mul", "Reduce", "Reshape", "Transpose", "Concat", "Table", "LookupDense"}
            if bad or any(n["op"] in v2ops for n in doc["nodes"]):
                raise ModelError("version 1 file uses tensors or version-2 ops")

    @staticmethod
    def load(path) -> "Model":
        with open(path) as f:
            return Model(json.load(f))

    def _toposort(self) -> list[str]:
        order, state = [], {}

        def visit(name, stack=()):
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                raise ModelError(f"cycle through {name!r}")
            if name not in self.nodes:
                raise ModelError(f"unknown input {name!r}")
            state[name] = 1
            for s in self.nodes[name].get("inputs", []):
                visit(s)
            state[name] = 2
            order.append(name)

        for name in self.nodes:
            visit(name)
        return order

    # ---- shapes and constants -------------------------------------------------------------------

    def _infer_shapes(self) -> dict[str, tuple]:
        sh: dict[str, tuple] = {}
        for name in self.order:
            n = self.nodes[name]
            op = n["op"]
            ins = [sh[s] for s in n.get("inputs", [])]
            want = {"Input": 0, "Add": None, "Concat": None, "Mul": 2}.get(op, 1)
            if want is not None and len(ins) != want:
                raise ModelError(f"{name}: {op} takes {want} inputs")
            if op == "Input":
                s = tuple(int(d) for d in n["shape"])
                self._prep[name] = _types(n, prod(s), name)
            elif op in ("ReLU", "Output"):
                s = ins[0]
            elif op == "Quantize":
                s = ins[0]
                self._prep[name] = _types(n, prod(s), name)
            elif op == "Dense":
                w, Fw = const(n["weight"], f"{name}.weight")
                if w.ndim != 2 or w.shape[0] != ins[0][-1]:
                    raise ModelError(f"{name}: weight {w.shape} for input {ins[0]}")
                b = None
                if "bias" in n:
                    b = const(n["bias"], f"{name}.bias")
                    if b[0].shape != (w.shape[1],):
                        raise ModelError(f"{name}: bias shape")
                self._prep[name] = (w, Fw, b)
                s = ins[0][:-1] + (w.shape[1],)
            elif op == "BatchNorm":
                sc, Fs = const(n["scale"], f"{name}.scale")
                sf, Ft = const(n["shift"], f"{name}.shift")
                for a in (sc, sf):
                    if a.shape not in ((ins[0][-1],), ins[0]):
                        raise ModelError(f"{name}: scale/shift shape {a.shape} for {ins[0]}")
                self._prep[name] = (sc, Fs, sf, Ft)
                s = ins[0]
            elif op in ("Add", "Mul"):
                if len(ins) < 2 or any(x != ins[0] for x in ins):
                    raise ModelError(f"{name}: {op} inputs of different shapes {ins}")
                s = ins[0]
            elif op == "Reduce":
                ax = int(n["axis"])
                r = len(ins[0])
                if not -r <= ax < r:
                    raise ModelError(f"{name}: axis {ax}")
                ax %= r
                if n["kind"] not in ("sum", "max", "mean"):
                    raise ModelError(f"{name}: kind {n['kind']!r}")
                L = ins[0][ax]
                if n["kind"] == "mean" and L & (L - 1):
                    raise ModelError(f"{name}: mean over {L} (not a power of two)")
                self._prep[name] = ax
                s = ins[0][:ax] + ins[0][ax + 1:] or (1,)
            elif op == "Reshape":
                t = [int(d) for d in n["shape"]]
                tot = prod(ins[0])
                if t.count(-1) > 1:
                    raise ModelError(f"{name}: two -1")
                if -1 in t:
                    known = prod(d for d in t if d != -1)
                    t = [tot // known if d == -1 else d for d in t]
                if prod(t) != tot or min(t) < 1:
                    raise ModelError(f"{name}: reshape {ins[0]} to {t}")
                s = tuple(t)
            elif op == "Transpose":
                perm = [int(p) for p in n["perm"]]
                if sorted(perm) != list(range(len(ins[0]))):
                    raise ModelError(f"{name}: perm {perm}")
                s = tuple(ins[0][p] for p in perm)
            elif op == "Concat":
                ax = int(n["axis"]) % len(ins[0])
                for x in ins:
                    if len(x) != len(ins[0]) or any(a != b for k, (a, b) in enumerate(zip(x, ins[0])) if k != ax):
                        raise ModelError(f"{name}: concat shapes {ins}")
                self._prep[name] = ax
                s = ins[0][:ax] + (sum(x[ax] for x in ins),) + ins[0][ax + 1:]
            elif op == "Table":
                self._prep[name] = self._table(n["domain"], n["table"], name)
                s = ins[0]
            elif op == "LookupDense":
                n_in, n_out = ins[0][-1], int(n["n_out"])
                seen, tabs = set(), []
                for k, t in enumerate(n["tables"]):
                    i, j = int(t["in"]), int(t["out"])
                    if not (0 <= i < n_in and 0 <= j < n_out) or (i, j) in seen:
                        raise ModelError(f"{name}.tables[{k}]: pair ({i}, {j})")
                    seen.add((i, j))
                    tabs.append((i, j) + self._table(t["domain"], t["table"], f"{name}.tables[{k}]"))
                b = None
                if "bias" in n:
                    b = const(n["bias"], f"{name}.bias")
                    if b[0].shape != (n_out,):
                        raise ModelError(f"{name}: bias shape")
                self._prep[name] = (tabs, b)
                s = ins[0][:-1] + (n_out,)
            else:
                raise ModelError(f"{name}: unknown op {op!r}")
            if not s or min(s) < 1:
                raise ModelError(f"{name}: shape {s}")
            sh[name] = tuple(s)
        return sh

    @staticmethod
    def _table(domain: str, table: dict, where: str):
        d = Type(domain)
        vals, F = const(table, where)
        if vals.shape != (1 << d.width,):
            raise ModelError(f"{where}: {vals.shape} entries for a {d.width}-bit domain")
        return d, vals, F

    # ---- evaluation -----------------------------------------------------------------------------

    def run(self, x_mant: np.ndarray, x_frac: int) -> dict[str, tuple[np.ndarray, int]]:
        """Evaluate on already-quantised Input mantissas (batch, *input shape) at frac x_frac."""
        vals: dict[str, tuple[np.ndarray, int]] = {}
        B = x_mant.shape[0]
        for name in self.order:
            n = self.nodes[name]
            op = n["op"]
            ins = [vals[s] for s in n.get("inputs", [])]
            if op == "Input":
                out = (x_mant, x_frac)
            elif op == "Output":
                out = ins[0]
            elif op == "ReLU":
                m, F = ins[0]
                out = (np.where(m > 0, m, 0), F)
            elif op == "Quantize":
                out = self._quantize(ins[0], self._prep[name])
            elif op == "Dense":
                (m, F), (w, Fw, b) = ins[0], self._prep[name]
                lead = m.shape[:-1]
                y = m.reshape(-1, m.shape[-1]).dot(w)
                G = F + Fw
                if b is not None:
                    bm, Fb = b
                    H = max(G, Fb)
                    y = _align(y, G, H) + _align(bm, Fb, H)[None, :]
                    G = H
                out = (y.reshape(lead + (w.shape[1],)), G)
            elif op == "BatchNorm":
                (m, F), (sc, Fs, sf, Ft) = ins[0], self._prep[name]
                y = m * sc[None]
                G = F + Fs
                H = max(G, Ft)
                out = (_align(y, G, H) + _align(sf, Ft, H)[None], H)
            elif op == "Add":
                G = max(F for _, F in ins)
                acc = _align(ins[0][0], ins[0][1], G)
                for m, F in ins[1:]:
                    acc = acc + _align(m, F, G)
                out = (acc, G)
            elif op == "Mul":
                (a, Fa), (b2, Fb) = ins
                out = (a * b2, Fa + Fb)
            elif op == "Reduce":
                (m, F), ax = ins[0], self._prep[name] + 1
                kind = n["kind"]
                if kind == "max":
                    r = np.max(m, axis=ax)
                    G = F
                else:
                    r = np.sum(m, axis=ax)
                    G = F + ((m.shape[ax] - 1).bit_length() if kind == "mean" else 0)
                out = (_to_obj(r).reshape((B,) + self.shapes[name]), G)
            elif op == "Reshape":
                m, F = ins[0]
                out = (m.reshape((B,) + self.shapes[name]), F)
            elif op == "Transpose":
                m, F = ins[0]
                out = (np.transpose(m, [0] + [p + 1 for p in n["perm"]]), F)
            elif op == "Concat":
                G = max(F for _, F in ins)
                out = (np.concatenate([_align(m, F, G) for m, F in ins], axis=self._prep[name] + 1), G)
            elif op == "Table":
                m, F = ins[0]
                d, tv, Ft = self._prep[name]
                idx = quantize_column(m.reshape(-1), F, d) - d.lo
                out = (_to_obj(tv[idx.astype(np.int64)]).reshape(m.shape), Ft)
            elif op == "LookupDense":
                (m, F), (tabs, b) = ins[0], self._prep[name]
                lead = m.shape[:-1]
                flat = m.reshape(-1, m.shape[-1])
                n_out = int(n["n_out"])
                G = max([Ft for *_, Ft in tabs] + ([b[1]] if b is not None else []) + [0])
                acc = _to_obj(np.zeros((flat.shape[0], n_out), dtype=np.int64))
                for i, j, d, tv, Ft in tabs:
                    idx = quantize_column(flat[:, i], F, d) - d.lo
                    acc[:, j] = acc[:, j] + _align(tv[idx.astype(np.int64)], Ft, G)
                if b is not None:
                    acc = acc + _align(b[0], b[1], G)[None, :]
                out = (acc.reshape(lead + (n_out,)), G)
            else:  # pragma: no cover (rejected when loading)
                raise ModelError(op)
            vals[name] = out
        return vals

    def _quantize(self, val, types: list[Type]):
        m, F = val
        flat = m.reshape(m.shape[0], -1)
        G = max([0] + [t.frac for t in types])
        out = np.empty(flat.shape, dtype=object)
        # group the elements by type: one vectorised pass per distinct type
        groups: dict[int, list[int]] = {}
        for e, t in enumerate(types):
            groups.setdefault(id(t), []).append(e)
        for es in groups.values():
            t = types[es[0]]
            q = quantize_column(flat[:, es], F, t)
            out[:, es] = _align(q, t.frac, G)
        return out.reshape(m.shape), G

    def quantize_inputs(self, rows) -> tuple[np.ndarray, int]:
        """Real inputs (each row: the Input's elements row-major, floats or Fractions) quantised to the
        Input types with their own modes, as `fastml-compile predict` does."""
        types = self._prep[self.input["name"]]
        n = len(types)
        fr = [[Fraction(v) for v in r] for r in rows]
        if any(len(r) != n for r in fr):
            raise ModelError(f"an input row does not have {n} values")
        D = max([0] + [v.denominator.bit_length() - 1 for r in fr for v in r])  # all denominators are 2^k
        if any(v.denominator & (v.denominator - 1) for r in fr for v in r):
            raise ModelError("non-dyadic input value")
        m = _to_obj([[int(v * (1 << D)) for v in r] for r in fr])
        q, G = self._quantize((m, D), types)
        return q.reshape((len(rows),) + self.shapes[self.input["name"]]), G

    def predict_reals(self, rows) -> list[list[Fraction]]:
        xm, xf = self.quantize_inputs(rows)
        vals = self.run(xm, xf)
        res = []
        for r in range(len(rows)):
            line = []
            for o in self.outputs:
                m, F = vals[o]
                line += [Fraction(int(v), 1 << F) for v in m[r].reshape(-1)]
            res.append(line)
        return res
