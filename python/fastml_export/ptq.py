"""Post-training quantisation (PTQ) settings and exact fixed-point helpers.

A float Keras model has no quantisers, so its hardware types have to come from somewhere: a `Precision`
says which `ap_fixed` type each layer's weights, biases, accumulators and results get, in the same
vocabulary and with the same lookup rules as hls4ml's `HLSConfig` (hls4ml `hls4ml/model/graph.py`,
`HLSConfig.get_precision` / `_parse_hls_config`):

    LayerName.<layer>.Precision.<var>   (or LayerName.<layer>.Precision: <type> for every var)
    LayerType.<class>.Precision.<var>   (or a single type)
    Model.Precision.<var>               (or Model.Precision: <type>, hls4ml's default: fixed<16,6>)

Quantised models (QKeras, HGQ) take their types from their quantisers; for them only the input type and
explicit per-layer overrides are read from a `Precision` (see docs/importers.md).

How hls4ml turns a float weight into its `ap_fixed` type (reproduced by `hls4ml_quantize`): the Python
writer prints every weight with as many decimals as the type has fractional bits
(`WeightVariable.update_precision`: `precision_fmt = '{:.<F>f}'`, hls4ml `hls4ml/model/types.py`), and the
C++ compiler converts that decimal literal to the type with the type's own rounding and overflow modes
(`AP_TRN` / `AP_WRAP` by default). The decimal rounding comes first, so a weight a hair below a grid point
lands on it even under truncation; `hls4ml_quantize` does exactly that with exact rational arithmetic.

This module imports only numpy (and PyYAML if installed, to read hls4ml YAML configs).
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterable, Sequence

import numpy as np

from .builder import ROUNDING, OVERFLOW, ExportError, FixedType

HLS4ML_DEFAULT = "fixed<16,6>"

# ----------------------------------------------------------------------------------------------------
# type strings
# ----------------------------------------------------------------------------------------------------

_TYPE_RE = re.compile(
    r"^\s*(?:ap_)?(?P<u>u?)fixed\s*<\s*(?P<w>-?\d+)\s*,\s*(?P<i>-?\d+)\s*"
    r"(?:,\s*(?P<q>\w+)\s*)?(?:,\s*(?P<o>\w+)\s*)?(?:,\s*(?P<n>\d+)\s*)?>\s*$",
    re.IGNORECASE,
)
_INT_RE = re.compile(r"^\s*(?:ap_)?(?P<u>u?)int\s*<\s*(?P<w>\d+)\s*>\s*$", re.IGNORECASE)


def _mode(name: str | None, allowed: Sequence[str], default: str, what: str, text: str) -> str:
    if name is None:
        return default
    m = name.upper()
    if m.startswith("AP_"):
        m = m[3:]
    if m not in allowed:
        raise ExportError(f"type {text!r}: unknown {what} mode {name!r} (known: {', '.join(allowed)})")
    return m


def parse_type(text) -> FixedType:
    """`fixed<W,I>`, `ufixed<W,I>`, `ap_fixed<W,I,Q,O>`, `fixed<W,I,RND_CONV,SAT>`, `int<W>`, `uint<W>`.

    The optional fifth `ap_fixed` parameter (saturation bits) is accepted only when 0.
    """
    if isinstance(text, FixedType):
        return text
    if not isinstance(text, str):
        raise ExportError(f"expected a type string such as 'fixed<16,6>', got {text!r}")
    m = _TYPE_RE.match(text)
    if m:
        if m.group("n") not in (None, "0"):
            raise ExportError(f"type {text!r}: ap_fixed saturation bits other than 0 are not supported")
        q = _mode(m.group("q"), ROUNDING, "TRN", "rounding", text)
        o = _mode(m.group("o"), OVERFLOW, "WRAP", "overflow", text)
        return FixedType(m.group("u") == "", int(m.group("w")), int(m.group("i")), q, o)
    m = _INT_RE.match(text)
    if m:
        w = int(m.group("w"))
        return FixedType(m.group("u") == "", w, w)
    raise ExportError(f"cannot read type {text!r}: expected e.g. fixed<16,6>, ufixed<8,0,RND_CONV,SAT>, ap_fixed<18,8>")


def type_str(t: FixedType) -> str:
    """A readable spelling, with modes only when they are not the defaults."""
    return t.string(modes=(t.rounding, t.overflow) != ("TRN", "WRAP"))


def same_grid(a: FixedType, b: FixedType) -> bool:
    return (a.signed, a.width, a.int_bits) == (b.signed, b.width, b.int_bits)


def fits(src: FixedType, dst: FixedType, nonneg: bool = False) -> bool:
    """Every value of `src` (only its non-negative ones if `nonneg`) is exactly a value of `dst`,
    so quantising to `dst` (any modes) changes nothing."""
    if dst.frac < src.frac:
        return False
    shift = dst.frac - src.frac
    lo = 0 if nonneg else src.min_mant()
    hi = src.max_mant()
    return dst.min_mant() <= (lo << shift) and (hi << shift) <= dst.max_mant()


def all_fit(src: Sequence[FixedType] | None, dst: Sequence[FixedType], nonneg: bool = False) -> bool:
    if src is None or len(src) != len(dst):
        return False
    return all(fits(s, d, nonneg) for s, d in zip(src, dst))


# ----------------------------------------------------------------------------------------------------
# exact ap_fixed quantisation of real values
# ----------------------------------------------------------------------------------------------------

def _round_scaled(s: Fraction, mode: str) -> int:
    fl = math.floor(s)
    r = s - fl
    if mode == "TRN":
        return fl
    if mode == "TRN_ZERO":
        return fl if s >= 0 else math.ceil(s)
    if r != Fraction(1, 2):
        return fl + 1 if r > Fraction(1, 2) else fl
    # exact tie
    if mode == "RND":
        return fl + 1
    if mode == "RND_ZERO":
        return fl if s >= 0 else fl + 1
    if mode == "RND_INF":
        return fl + 1 if s >= 0 else fl
    if mode == "RND_MIN_INF":
        return fl
    if mode == "RND_CONV":
        return fl if fl % 2 == 0 else fl + 1
    raise ExportError(f"unknown rounding mode {mode}")


def quantize_mantissa(value, t: FixedType) -> int:
    """The mantissa of `value` (a float or Fraction, taken exactly) after `ap_fixed` quantisation to
    `t`: rounding by `t.rounding`, then overflow by `t.overflow` (docs/model-json.md)."""
    v = value if isinstance(value, Fraction) else Fraction(float(value))
    s = v * (Fraction(2) ** t.frac)
    m = _round_scaled(s, t.rounding)
    lo, hi = t.min_mant(), t.max_mant()
    if lo <= m <= hi:
        return m
    o = t.overflow
    if o == "WRAP":
        mod = 1 << t.width
        return (m - lo) % mod + lo
    if o == "SAT":
        return lo if m < lo else hi
    if o == "SAT_ZERO":
        return 0
    if o == "SAT_SYM":
        if m > hi:
            return hi
        return -hi if t.signed else 0
    raise ExportError(f"unknown overflow mode {o}")


def quantize_values(values, types: FixedType | Sequence[FixedType]) -> np.ndarray:
    """Exact `ap_fixed` quantisation of an array (float32/float64 values taken exactly). The result is
    float64; a value that float64 cannot hold exactly (over 53 significant bits) is an ExportError."""
    arr = np.asarray(values)
    flat = arr.reshape(-1)
    if isinstance(types, FixedType):
        types = [types] * flat.size
    out = np.empty(flat.size, dtype=np.float64)
    for k, (v, t) in enumerate(zip(flat.tolist(), types)):
        if not math.isfinite(v):
            raise ExportError(f"value {v!r} is not finite")
        m = quantize_mantissa(v, t)
        out[k] = math.ldexp(m, -t.frac)
        if Fraction(out[k]) != Fraction(m) * Fraction(2) ** (-t.frac):
            raise ExportError(f"mantissa {m} of {t.string()} is not exactly a float64")
    return out.reshape(arr.shape)


def hls4ml_quantize(values, t: FixedType) -> np.ndarray:
    """What hls4ml's C++ gets for a float weight array in type `t`: the value printed with
    max(0, F) decimals (Python's correctly rounded formatting, as hls4ml's writer does), then converted
    to `t` with its rounding and overflow modes."""
    arr = np.asarray(values)
    flat = arr.reshape(-1).tolist()
    dec = max(0, t.frac)
    out = np.empty(len(flat), dtype=np.float64)
    for k, v in enumerate(flat):
        if not math.isfinite(v):
            raise ExportError(f"weight {v!r} is not finite")
        text = "{:.{}f}".format(float(v), dec)
        m = quantize_mantissa(Fraction(text), t)
        out[k] = math.ldexp(m, -t.frac)
    return out.reshape(arr.shape)


def exact_type(values, signed: bool | None = None) -> FixedType:
    """The narrowest type holding every (finite, float) value exactly."""
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    frac = 0
    for v in flat.tolist():
        if not math.isfinite(v):
            raise ExportError(f"value {v!r} is not finite")
        if v != 0:
            m, e = math.frexp(v)  # v = m * 2^e, 0.5 <= |m| < 1, m has <= 53 bits
            mi = int(math.ldexp(m, 53))
            tz = (mi & -mi).bit_length() - 1
            frac = max(frac, 53 - e - tz)
    mant = [int(Fraction(v) * (Fraction(2) ** frac)) for v in flat.tolist()] or [0]
    lo, hi = min(min(mant), 0), max(max(mant), 0)
    sgn = lo < 0 if signed is None else signed
    if sgn:
        width = max((-lo - 1).bit_length() if lo < 0 else 0, hi.bit_length()) + 1
    else:
        width = max(hi.bit_length(), 1)
    if width > 64:
        raise ExportError(f"values need {width} bits to be represented exactly (more than 64); "
                          "they are probably not quantised")
    return FixedType(sgn, width, width - frac)


# ----------------------------------------------------------------------------------------------------
# Precision
# ----------------------------------------------------------------------------------------------------

# hls4ml layer class names that correspond to Keras classes, for LayerType lookups.
_HLS_CLASS = {
    "InputLayer": ["InputLayer", "Input"],
    "Dense": ["Dense"],
    "QDense": ["QDense", "Dense"],
    "Activation": ["Activation"],
    "ReLU": ["ReLU", "Activation"],
    "QActivation": ["QActivation", "Activation"],
    "BatchNormalization": ["BatchNormalization"],
    "QBatchNormalization": ["QBatchNormalization", "BatchNormalization"],
}

AUTO = "auto"


@dataclass
class Precision:
    """hls4ml-style precision settings. Types are stored as FixedType or the string 'auto'.

    `hls4ml_products` (default True): Dense layers that quantise their accumulator round every product
    to the accumulator type first, as hls4ml's `dense_latency` does (`mult[i] = product(...)` stored in
    an `accum_t` array); False rounds only the exact sum (cheaper to describe, not hls4ml's numbers).

    `semantics` decides what a Precision means for layers that have their own quantisers (QKeras):
    "framework" (default for `--precision`): they compute exactly what QKeras computes, and only the
    input type and explicit per-layer overrides apply; "hls4ml" (default for an hls4ml config): they
    compute what hls4ml builds from them, accumulator and result types (model default included) too.
    HGQ proxies always follow the framework (their hls4ml types are bit-exact by construction)."""

    model: dict = field(default_factory=lambda: {"default": parse_type(HLS4ML_DEFAULT)})
    layer_name: dict = field(default_factory=dict)   # lower-case layer name -> {var: type}
    layer_type: dict = field(default_factory=dict)   # lower-case class name -> {var: type}
    hls4ml_products: bool = True
    semantics: str = "framework"
    source: str = "hls4ml default fixed<16,6>"
    user_given: bool = False

    # -- lookup ------------------------------------------------------------------------------------
    def lookup(self, layer: str, class_name: str, var: str, explicit_only: bool = False):
        """hls4ml's order: LayerName var, LayerName default, LayerType var, LayerType default, then
        (unless `explicit_only`) Model var, Model default. Returns a FixedType, 'auto' or None."""
        names = self.layer_name.get(layer.lower(), {})
        for key in (var, "default"):
            if names.get(key) is not None:
                return names[key]
        for cls in _HLS_CLASS.get(class_name, [class_name]):
            types = self.layer_type.get(cls.lower(), {})
            for key in (var, "default"):
                if types.get(key) is not None:
                    return types[key]
        if explicit_only:
            return None
        for key in (var, "default"):
            if self.model.get(key) is not None:
                return self.model[key]
        return None

    def get(self, layer: str, class_name: str, var: str) -> FixedType:
        """Like lookup, but 'auto' and a missing entry fall back to the model default type."""
        t = self.lookup(layer, class_name, var)
        if isinstance(t, FixedType):
            return t
        d = self.model.get("default")
        if isinstance(d, FixedType):
            return d
        return parse_type(HLS4ML_DEFAULT)

    # -- construction ------------------------------------------------------------------------------
    @staticmethod
    def _type_or_auto(v, where: str):
        if isinstance(v, str) and v.strip().lower() == AUTO:
            return AUTO
        try:
            return parse_type(v)
        except ExportError as e:
            raise ExportError(f"{where}: {e}") from None

    @classmethod
    def parse(cls, spec: str) -> "Precision":
        """A command-line spec: `;`-separated items, each `TYPE` (model default), `VAR=TYPE` (model-level
        var: weight, bias, result, accum, scale) or `LAYER.VAR=TYPE` (one layer; VAR may be `default`).

        Example: `fixed<16,6>; fc1.weight=fixed<8,1>; fc1_input.result=fixed<32,6>; accum=fixed<24,8>`.
        """
        p = cls(model={"default": parse_type(HLS4ML_DEFAULT)}, source=f"--precision {spec}", user_given=True)
        items = [s.strip() for s in spec.split(";") if s.strip()]
        if not items:
            raise ExportError("empty precision spec")
        for item in items:
            if "=" not in item:
                p.model["default"] = cls._type_or_auto(item, "precision spec")
                continue
            key, val = (s.strip() for s in item.split("=", 1))
            t = cls._type_or_auto(val, f"precision spec item {item!r}")
            if "." in key:
                layer, var = key.rsplit(".", 1)
                p.layer_name.setdefault(layer.lower(), {})[var.lower()] = t
            else:
                p.model[key.lower()] = t
        return p

    @classmethod
    def from_hls4ml(cls, config: dict, source: str = "hls4ml config") -> "Precision":
        """From an hls4ml configuration dict: the whole config (with `HLSConfig`) or its HLSConfig part."""
        if not isinstance(config, dict):
            raise ExportError("hls4ml config: expected a mapping at the top level")
        hls = config.get("HLSConfig", config)
        if not isinstance(hls, dict):
            raise ExportError("hls4ml config: HLSConfig must be a mapping")
        p = cls(model={}, source=source, user_given=True, semantics="hls4ml")

        def read(prec, where):
            if prec is None:
                return {}
            if isinstance(prec, dict):
                return {str(k).lower(): cls._type_or_auto(v, f"{where}.{k}") for k, v in prec.items()}
            return {"default": cls._type_or_auto(prec, where)}

        model = hls.get("Model") or {}
        if not isinstance(model, dict):
            raise ExportError("hls4ml config: HLSConfig.Model must be a mapping")
        p.model = read(model.get("Precision"), "HLSConfig.Model.Precision")
        if "default" not in p.model:
            p.model["default"] = parse_type(HLS4ML_DEFAULT)
        for section, target in (("LayerName", p.layer_name), ("LayerType", p.layer_type)):
            entries = hls.get(section) or {}
            if not isinstance(entries, dict):
                raise ExportError(f"hls4ml config: HLSConfig.{section} must be a mapping")
            for name, cfg in entries.items():
                if not isinstance(cfg, dict):
                    continue
                target[str(name).lower()] = read(cfg.get("Precision"), f"HLSConfig.{section}.{name}.Precision")
        return p

    @classmethod
    def load(cls, path: str) -> "Precision":
        """An hls4ml config file: YAML (`hls4ml_config.yml`, as hls4ml writes it) or JSON."""
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except UnicodeDecodeError:
            raise ExportError("not a text (YAML or JSON) file") from None
        data = load_yaml_or_json(text, "hls4ml config")
        return cls.from_hls4ml(data, source=f"hls4ml config {os.path.basename(path)}")

    def describe(self) -> str:
        return self.source


def as_precision(p) -> Precision | None:
    """Accept a Precision, a spec string, a dict (hls4ml config) or None."""
    if p is None or isinstance(p, Precision):
        return p
    if isinstance(p, str):
        if os.path.isfile(p):
            return Precision.load(p)
        return Precision.parse(p)
    if isinstance(p, dict):
        return Precision.from_hls4ml(p)
    raise ExportError(f"precision must be a spec string, an hls4ml config dict or a Precision, not {type(p).__name__}")


# ----------------------------------------------------------------------------------------------------
# YAML (hls4ml configs) without a YAML dependency
# ----------------------------------------------------------------------------------------------------

def load_yaml_or_json(text: str, where: str = "config"):
    s = text.lstrip()
    if s.startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise ExportError(f"{where}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    try:  # PyYAML if present (optional); hls4ml writes custom tags such as !keras_model, ignore them
        import yaml  # type: ignore

        class _Loader(yaml.SafeLoader):
            pass

        def _any_tag(loader, suffix, node):
            if isinstance(node, yaml.ScalarNode):
                return loader.construct_scalar(node)
            if isinstance(node, yaml.SequenceNode):
                return loader.construct_sequence(node)
            return loader.construct_mapping(node)

        _Loader.add_multi_constructor("!", _any_tag)
        try:
            return yaml.load(text, Loader=_Loader)
        except yaml.YAMLError as e:
            raise ExportError(f"{where}: invalid YAML: {e}") from None
    except ImportError:
        return mini_yaml(text, where)


def _scalar(v: str):
    v = v.strip()
    if v.startswith("!"):  # a tag such as !keras_model 'path': keep the value
        parts = v.split(None, 1)
        v = parts[1] if len(parts) > 1 else ""
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
        return v[1:-1]
    low = v.lower()
    if low in ("", "null", "~", "none"):
        return None
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    try:
        return int(v)
    except ValueError:
        pass
    try:
        return float(v)
    except ValueError:
        return v


def _strip_comment(line: str) -> str:
    out, q = [], None
    for i, ch in enumerate(line):
        if q:
            if ch == q:
                q = None
        elif ch in "'\"":
            q = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            break
        out.append(ch)
    return "".join(out).rstrip()


def mini_yaml(text: str, where: str = "config"):
    """Block-style YAML subset: nested mappings, `- scalar` lists, scalars, comments, tags. Enough for
    the configs hls4ml writes; anything else is an error (install PyYAML for full YAML)."""
    lines = []
    for n, raw in enumerate(text.splitlines(), 1):
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise ExportError(f"{where}: line {n}: tabs in indentation")
        line = _strip_comment(raw)
        if line.strip() in ("", "---"):
            continue
        lines.append((n, len(line) - len(line.lstrip()), line.strip()))

    def parse_block(i, indent):
        if i >= len(lines):
            return None, i
        n, ind, s = lines[i]
        if s.startswith("- ") or s == "-":
            out = []
            while i < len(lines) and lines[i][1] == indent and (lines[i][2].startswith("- ") or lines[i][2] == "-"):
                item = lines[i][2][1:].strip()
                if not item:
                    raise ExportError(f"{where}: line {lines[i][0]}: nested list items need PyYAML")
                out.append(_scalar(item))
                i += 1
            return out, i
        out = {}
        while i < len(lines) and lines[i][1] == indent:
            n, ind, s = lines[i]
            if ":" not in s:
                raise ExportError(f"{where}: line {n}: expected 'key: value'")
            key, rest = s.split(":", 1)
            key = key.strip().strip("'\"")
            rest = rest.strip()
            i += 1
            if rest:
                if rest[0] in "[{":
                    try:
                        out[key] = json.loads(rest.replace("'", '"'))
                    except json.JSONDecodeError:
                        raise ExportError(f"{where}: line {n}: flow collections need PyYAML") from None
                else:
                    out[key] = _scalar(rest)
            elif i < len(lines) and lines[i][1] > indent:
                out[key], i = parse_block(i, lines[i][1])
            elif i < len(lines) and lines[i][1] == indent and lines[i][2].startswith("-"):
                out[key], i = parse_block(i, indent)
            else:
                out[key] = None
        if i < len(lines) and lines[i][1] > indent:
            raise ExportError(f"{where}: line {lines[i][0]}: unexpected indentation")
        return out, i

    if not lines:
        raise ExportError(f"{where}: empty config")
    data, i = parse_block(0, lines[0][1])
    if i != len(lines):
        raise ExportError(f"{where}: line {lines[i][0]}: unexpected indentation")
    return data


def iter_flat(x) -> Iterable:
    return np.asarray(x).reshape(-1).tolist()
