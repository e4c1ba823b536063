"""Writing model.json (docs/model-json.md): exact mantissas, type strings, nodes. A model is written as
version 1 unless it uses a version-2 op or a tensor of rank > 1.

Every importer ends here. Values arrive as float64 arrays that must already lie on their type's grid;
`mantissas` turns them into integers and refuses (ExportError) any value that is not exactly
representable, so nothing depends on float rounding after this point. This module knows nothing about
Keras.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

ROUNDING = ("TRN", "TRN_ZERO", "RND", "RND_ZERO", "RND_INF", "RND_MIN_INF", "RND_CONV")
OVERFLOW = ("WRAP", "SAT", "SAT_ZERO", "SAT_SYM")


class ExportError(Exception):
    """The model cannot be exported; the message says which layer, what, and what is supported."""


@dataclass(frozen=True)
class FixedType:
    """`ap_fixed<width, int_bits>` (signed) or `ap_ufixed` with optional rounding/overflow modes.

    `int_bits` counts the sign bit, as in ap_fixed. `frac = width - int_bits`.
    """

    signed: bool
    width: int
    int_bits: int
    rounding: str = "TRN"
    overflow: str = "WRAP"

    def __post_init__(self):
        if not 1 <= self.width <= 64:
            raise ExportError(f"type width {self.width} is outside 1..64")
        if self.rounding not in ROUNDING:
            raise ExportError(f"unknown rounding mode {self.rounding}")
        if self.overflow not in OVERFLOW:
            raise ExportError(f"unknown overflow mode {self.overflow}")

    @property
    def frac(self) -> int:
        return self.width - self.int_bits

    @staticmethod
    def from_kif(k: int, i: int, f: int, rounding: str = "TRN", overflow: str = "WRAP") -> "FixedType":
        """HGQ/da4ml's (keep_negative, integer bits without sign, fractional bits)."""
        k, i, f = int(k), int(i), int(f)
        return FixedType(bool(k), k + i + f, k + i, rounding, overflow)

    def string(self, modes: bool = False) -> str:
        base = f"{'' if self.signed else 'u'}fixed<{self.width},{self.int_bits}"
        if modes:
            return f"{base},{self.rounding},{self.overflow}>"
        return base + ">"

    def min_mant(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    def max_mant(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1


def mantissas(values: np.ndarray, types: Sequence[FixedType], what: str) -> list[int]:
    """Exact integer mantissas of `values` (flattened row-major) in their types, or ExportError."""
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(types) != flat.size:
        raise ExportError(f"{what}: {flat.size} values but {len(types)} types")
    out = []
    for k, (v, t) in enumerate(zip(flat.tolist(), types)):
        m = v * (2.0 ** t.frac)
        if not np.isfinite(m) or m != np.floor(m):
            raise ExportError(f"{what}[{k}] = {v!r} is not a multiple of 2^-{t.frac} ({t.string()})")
        mi = int(m)
        if not t.min_mant() <= mi <= t.max_mant():
            raise ExportError(f"{what}[{k}] = {v!r} does not fit {t.string()}")
        out.append(mi)
    return out


def smallest_type(values: np.ndarray, frac: int) -> FixedType:
    """The narrowest type with `frac` fractional bits holding every value (at least 1 bit)."""
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    m = np.round(flat * 2.0**frac).astype(object) if flat.size else np.array([0], dtype=object)
    lo, hi = int(min(m.min(), 0)), int(max(m.max(), 0))
    signed = lo < 0
    if signed:
        width = max((-lo - 1).bit_length(), hi.bit_length()) + 1
    else:
        width = max(hi.bit_length(), 1)
    return FixedType(signed, width, width - frac)


@dataclass
class ModelBuilder:
    """Collects nodes and writes model.json (version 1, or 2 when a node needs it)."""

    name: str = "model"
    description: str = ""
    nodes: list = field(default_factory=list)
    _names: set = field(default_factory=set)
    version: int = 1

    def _add(self, node: dict) -> str:
        if node["name"] in self._names:
            raise ExportError(f"duplicate node name {node['name']!r}")
        self._names.add(node["name"])
        self.nodes.append(node)
        return node["name"]

    def unique(self, base: str) -> str:
        name, k = base, 2
        while name in self._names:
            name, k = f"{base}_{k}", k + 1
        return name

    @staticmethod
    def _types_field(types: Sequence[FixedType], modes: bool) -> dict:
        strings = [t.string(modes) for t in types]
        if len(set(strings)) == 1:
            return {"type": strings[0]}
        return {"types": strings}

    def tensor(self, values: np.ndarray, types: Sequence[FixedType] | FixedType, what: str) -> dict:
        values = np.asarray(values, dtype=np.float64)
        if isinstance(types, FixedType):
            types = [types] * values.size
        data = mantissas(values, types, what)
        return {"shape": list(values.shape), **self._types_field(types, False), "data": data}

    def input(self, name: str, types: Sequence[FixedType], shape: Sequence[int] | None = None) -> str:
        shape = [len(types)] if shape is None else [int(d) for d in shape]
        if len(shape) != 1:
            self.version = 2
        return self._add({"name": name, "op": "Input", "shape": shape, **self._types_field(types, True)})

    def reshape(self, name: str, src: str, shape: Sequence[int]) -> str:
        self.version = 2
        return self._add({"name": name, "op": "Reshape", "inputs": [src], "shape": [int(d) for d in shape]})

    def reduce(self, name: str, src: str, axis: int, kind: str) -> str:
        self.version = 2
        return self._add({"name": name, "op": "Reduce", "inputs": [src], "axis": int(axis), "kind": kind})

    def lookup_dense(self, name: str, src: str, n_out: int, tables: Sequence[tuple], bias=None, btypes=None) -> str:
        """`tables`: (in, out, domain FixedType with modes, entry values in ascending input order, entry
        type) per table."""
        self.version = 2
        ts = []
        for i, j, dom, values, ety in tables:
            values = np.asarray(values, dtype=np.float64)
            if values.size != 1 << dom.width:
                raise ExportError(f"{name}: table ({i}, {j}) has {values.size} entries for a {dom.width}-bit domain")
            ts.append({"in": int(i), "out": int(j), "domain": dom.string(True),
                       "table": self.tensor(values, ety, f"{name}.tables[{i},{j}]")})
        node = {"name": name, "op": "LookupDense", "inputs": [src], "n_out": int(n_out), "tables": ts}
        if bias is not None:
            node["bias"] = self.tensor(bias, btypes, f"{name}.bias")
        return self._add(node)

    def dense(self, name: str, src: str, kernel: np.ndarray, ktypes, bias=None, btypes=None) -> str:
        node = {"name": name, "op": "Dense", "inputs": [src], "weight": self.tensor(kernel, ktypes, f"{name}.kernel")}
        if bias is not None:
            node["bias"] = self.tensor(bias, btypes, f"{name}.bias")
        return self._add(node)

    def batchnorm(self, name: str, src: str, scale, stypes, shift, ttypes) -> str:
        return self._add({"name": name, "op": "BatchNorm", "inputs": [src],
                          "scale": self.tensor(scale, stypes, f"{name}.scale"),
                          "shift": self.tensor(shift, ttypes, f"{name}.shift")})

    def relu(self, name: str, src: str) -> str:
        return self._add({"name": name, "op": "ReLU", "inputs": [src]})

    def quantize(self, name: str, src: str, types: Sequence[FixedType]) -> str:
        return self._add({"name": name, "op": "Quantize", "inputs": [src], **self._types_field(types, True)})

    def output(self, name: str, src: str) -> str:
        return self._add({"name": name, "op": "Output", "inputs": [src]})

    def to_json(self) -> str:
        head = {"format": "fastml-model", "version": self.version, "name": self.name}
        if self.description:
            head["description"] = self.description
        lines = [json.dumps(n, separators=(",", ":")) for n in self.nodes]
        body = ",\n    ".join(lines)
        top = json.dumps(head, indent=2)[:-2]
        return f'{top},\n  "nodes": [\n    {body}\n  ]\n}}\n'

    def write(self, path: str) -> None:
        with open(path, "w") as f:
            f.write(self.to_json())


def repeat(t: FixedType, n: int) -> list[FixedType]:
    return [t] * n


def iter_types(ts: Iterable[FixedType]) -> list[FixedType]:
    return list(ts)
