"""HGQ2 (hgq2 0.2.0, import name `hgq`) and hgq2's QKeras look-alike -> model.json, bit-exactly.

The semantics (docs/importers-hgq2.md has them in full, with the source they were read from):

* A fixed-point quantiser has per-element (k, i, f): keep_negative, integer bits *without* the sign, and
  fractional bits; the value type is `fixed<k+i+f, k+i>` (`ufixed` when k=0). KIF quantisers store k, i, f;
  KBI quantisers store k, b, i with f = b - i (b excludes the sign). Stored i, f, b are floats, rounded
  half-to-even (`round_conv`) before use.
* Inference (hgq/quantizer/internal/fixed_point_quantizer.py, quantizers/fixed_point/_fixed_point_ops.py):
  for SAT/SAT_SYM the input is first clipped to [-k*2^i, 2^i - 2^-f] (SAT_SYM: [-k*(2^i - 2^-f), 2^i -
  2^-f]) and then rounded to 2^-f; for WRAP it is rounded and then wrapped into k+i+f bits. An element with
  k+i+f <= 0 outputs 0. Rounding: TRN floor, RND floor(x+1/2), RND_CONV half-to-even, ...; `S_` (stochastic)
  modes round like their base mode outside training.
* hgq2 SAT_SYM is symmetric for every input (-2^i saturates to -(2^i-2^-f)); ap_fixed's/model.json's SAT_SYM
  keeps an in-range -2^i. Activation quantisers with SAT_SYM are therefore emitted as a short exact chain
  (round with one more integer bit and SAT, negate, SAT, negate, SAT).
* QDense: y = oq(act(iq(x) @ kq(kernel) + bq(bias))); the matmul and add are exact; relu comes before oq.
* hgq2's QKeras look-alike `quantized_bits(bits, integer, symmetric, keep_negative, alpha)` is a KBI
  quantiser with k=keep_negative, b=bits (sign NOT counted), i=integer, RND_CONV, SAT (SAT_SYM if symmetric),
  and `alpha` a scaler (x/alpha, quantise, *alpha); `quantized_relu(bits, integer)` is the same with
  keep_negative=False.

Weights are quantised here, in exact arithmetic, exactly as Keras computes them (float32 where Keras
computes a float before quantising, e.g. a fused BatchNorm scale), and written as exact mantissas with
per-element types. Activations get explicit Quantize nodes; the quantiser that first meets the model input gives the
Input node its types instead (through keras_std's input-quantiser hook).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .builder import ExportError, FixedType, ModelBuilder, smallest_type
from .graph import KLayer
from .registry import Context, Tensor, handles

FAMILIES = ("hgq2", "qkeras_hgq2")

# hgq/quantizer/config.py: default_q_type and the defaults of every (q_type, place)
_DEFAULT_Q_TYPE = {"weight": "kbi", "datalane": "kif", "bias": "kbi", "table": "kbi"}
_DEFAULTS = {
    ("kbi", "weight"): dict(k0=True, b0=8, i0=2, round_mode="RND", overflow_mode="SAT_SYM", trainable=True, is_weight=True),
    ("kbi", "datalane"): dict(k0=True, b0=8, i0=2, round_mode="RND", overflow_mode="WRAP", trainable=True, is_weight=False),
    ("kbi", "bias"): dict(k0=True, b0=8, i0=2, round_mode="RND", overflow_mode="WRAP", trainable=True, is_weight=False),
    ("kbi", "table"): dict(k0=True, b0=8, i0=2, round_mode="RND", overflow_mode="SAT_SYM", trainable=True, is_weight=False),
    ("kif", "weight"): dict(k0=True, i0=2, f0=6, round_mode="RND", overflow_mode="SAT_SYM", trainable=True, is_weight=True),
    ("kif", "datalane"): dict(k0=True, i0=2, f0=6, round_mode="RND", overflow_mode="WRAP", trainable=True, is_weight=False),
    ("kif", "bias"): dict(k0=True, i0=2, f0=6, round_mode="RND", overflow_mode="WRAP", trainable=True, is_weight=False),
    ("kif", "table"): dict(k0=True, i0=2, f0=6, round_mode="RND", overflow_mode="SAT_SYM", trainable=True, is_weight=False),
}
_ROUND = ("TRN", "RND", "RND_CONV", "TRN_ZERO", "RND_ZERO", "RND_MIN_INF", "RND_INF")
_PLACEHOLDER = FixedType(False, 1, 0)  # type of an element that is always 0


# ---------------------------------------------------------------------------------------------------------
# Quantiser specs


@dataclass
class QSpec:
    """One quantiser, resolved: `None` k/i/f means the identity (hgq's dummy quantiser)."""

    what: str
    k: np.ndarray | None = None  # float arrays in the quantiser's bit-width shape
    i: np.ndarray | None = None
    f: np.ndarray | None = None
    round_mode: str = "TRN"  # base mode (S_ prefix removed)
    overflow: str = "WRAP"
    scaler: float | None = None
    affine: tuple[float, float] | None = None
    is_weight: bool = False
    trainable: bool = False
    kbi: bool = False

    @property
    def identity(self) -> bool:
        return self.k is None


def _number(v, what: str) -> float:
    """A config number: plain, bool, or a serialized keras Constant initializer."""
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, dict) and v.get("class_name") == "Constant":
        return float(v.get("config", {}).get("value"))
    raise ExportError(f"{what}: cannot read the initial value {v!r} (and the file has no stored variable for it)")


def _round_conv(a) -> np.ndarray:
    """hgq's round_conv on a stored bit-width variable: round half to even (ops.round)."""
    return np.round(np.asarray(a, dtype=np.float32)).astype(np.float64)


def _conf_parts(conf) -> tuple[str | None, dict]:
    if conf is None:
        return None, {}
    if not isinstance(conf, dict):
        raise ExportError(f"unexpected quantiser config {conf!r}")
    return conf.get("class_name"), conf.get("config") or {}


def quantizer_spec(layer: KLayer, sub: str, conf, model_trainable: bool = True) -> QSpec:
    """Resolve the quantiser `sub` of `layer` ("iq", "kq", "bq", "oq", or "quantizer" for a Quantizer layer)."""
    what = f"layer {layer.name!r} ({layer.class_name}) quantiser {sub}"
    cls, cfg = _conf_parts(conf)
    w = layer.weights
    pre = f"{sub}/"

    def var(name, fallback):
        if pre + name in w:
            return np.asarray(w[pre + name], dtype=np.float32)
        return np.asarray(_number(fallback, f"{what}.{name}"), dtype=np.float32)

    if cls is None:
        return QSpec(what)
    if cls in ("quantized_bits", "quantized_relu"):
        # qkeras/quantizers/quantized_bits.py (hgq2's QKeras look-alike): a KBI config
        bits = cfg.get("bits", 8)
        integer = cfg.get("integer", 0)
        keep_negative = cfg.get("keep_negative", True) if cls == "quantized_bits" else False
        alpha = cfg.get("alpha")
        scaler = float(alpha) if isinstance(alpha, (int, float)) and not isinstance(alpha, bool) else None
        trainable = alpha == "trainable_po2"
        k = var("k", keep_negative)
        b = var("b", bits)
        i = var("i", integer)
        kk, bb, ii = k.astype(np.float64), _round_conv(b), _round_conv(i)
        return QSpec(what, kk, ii, bb - ii, "RND_CONV", "SAT_SYM" if cfg.get("symmetric") else "SAT",
                     scaler=scaler, is_weight=False, trainable=trainable and model_trainable, kbi=True)
    if cls not in ("QuantizerConfig", "HardTanhConfig", "HardSigmoidConfig"):
        raise ExportError(f"{what}: quantiser class {cls!r} is not supported (supported: HGQ2 QuantizerConfig kif/kbi/dummy, "
                          "HardTanhConfig, HardSigmoidConfig, hgq2-qkeras quantized_bits/quantized_relu)")
    place = str(cfg.get("place", "datalane")).lower()
    q_type = str(cfg.get("q_type", "default")).lower()
    if q_type == "default":
        q_type = _DEFAULT_Q_TYPE.get(place, "kif")
    if q_type == "dummy":
        return QSpec(what)
    if q_type == "float":
        raise ExportError(f"{what}: HGQ2 floating-point (minifloat) quantisers are not supported; use kif or kbi")
    if (q_type, place) not in _DEFAULTS:
        raise ExportError(f"{what}: unknown quantiser type {q_type!r} at place {place!r}")
    d = dict(_DEFAULTS[(q_type, place)])
    d.update({k: v for k, v in cfg.items() if k in d})
    affine = cfg.get("affine")
    if cls == "HardTanhConfig":  # hgq/quantizer/config.py: k0=1, i0=0, SAT (SAT_SYM if symmetric), no affine
        d.update(k0=1, i0=0, overflow_mode="SAT_SYM" if cfg.get("symmetric") else "SAT")
        affine = None
    elif cls == "HardSigmoidConfig":  # k0=1, i0=1, SAT, affine (0.25, 0.5)
        d.update(k0=1, i0=1, overflow_mode="SAT")
        affine = (0.25, 0.5)
    bw = cfg.get("bw_mapper")
    if bw is not None and not (isinstance(bw, dict) and bw.get("class_name") == "DefaultBitwidthMapper"):
        raise ExportError(f"{what}: custom bit-width mapper {bw.get('class_name') if isinstance(bw, dict) else bw!r} is not supported")
    rmode = str(d["round_mode"]).upper()
    if rmode.startswith("S_"):
        rmode = rmode[2:]  # stochastic rounding only in training
    if rmode not in _ROUND:
        raise ExportError(f"{what}: rounding mode {d['round_mode']!r} is not supported")
    omode = str(d["overflow_mode"]).upper()
    if omode not in ("WRAP", "SAT", "SAT_SYM"):
        raise ExportError(f"{what}: overflow mode {omode!r} is not supported (WRAP, SAT, SAT_SYM are)")
    scaler = cfg.get("scaler")
    k = var("k", d["k0"]).astype(np.float64)
    if q_type == "kif":
        i, f = _round_conv(var("i", d["i0"])), _round_conv(var("f", d["f0"]))
    else:
        b, i = _round_conv(var("b", d["b0"])), _round_conv(var("i", d["i0"]))
        f = b - i
    return QSpec(what, k, i, f, rmode, omode, scaler=None if scaler is None else float(scaler),
                 affine=None if affine is None else (float(affine[0]), float(affine[1])),
                 is_weight=bool(d["is_weight"]), trainable=bool(d["trainable"]) and model_trainable, kbi=q_type == "kbi")


def _bcast(a: np.ndarray, shape: tuple, what: str) -> np.ndarray:
    try:
        return np.broadcast_to(np.asarray(a, dtype=np.float64), shape)
    except ValueError:
        raise ExportError(f"{what}: bit widths of shape {np.shape(a)} do not broadcast to {shape}") from None


def _kif(spec: QSpec, shape: tuple):
    return (_bcast(spec.k, shape, spec.what), _bcast(spec.i, shape, spec.what), _bcast(spec.f, shape, spec.what))


# ---------------------------------------------------------------------------------------------------------
# Exact fixed-point arithmetic on float64 (all values involved are dyadic and < 2^53)


def _round_mant(v: np.ndarray, mode: str) -> np.ndarray:
    """quantizers/fixed_point/_fixed_point_ops.py round modes, on v = x * 2^f."""
    if mode == "TRN":
        return np.floor(v)
    if mode == "RND":
        return np.floor(v + 0.5)
    if mode == "RND_CONV":
        return np.round(v)  # half to even
    if mode == "TRN_ZERO":
        return np.trunc(v)
    if mode == "RND_ZERO":
        return -np.floor(-np.abs(v) + 0.5) * np.sign(v)
    if mode == "RND_MIN_INF":
        return -np.floor(-v + 0.5)
    if mode == "RND_INF":
        return np.floor(np.abs(v) + 0.5) * np.sign(v)
    raise ExportError(f"rounding mode {mode} is not supported")


def fixed_quantize(x: np.ndarray, k, i, f, round_mode: str, overflow: str) -> np.ndarray:
    """hgq2 FixedPointQuantizerBase.call outside training, exactly: values of x quantised to (k, i, f)."""
    x = np.asarray(x, dtype=np.float64)
    k, i, f = (np.broadcast_to(np.asarray(a, dtype=np.float64), x.shape) for a in (k, i, f))
    i_eff = np.maximum(i, -f)  # FixedPointQuantizer.__call__
    scale = np.exp2(f)
    if overflow == "WRAP":
        m = _round_mant(x * scale, round_mode)
        width = i_eff + k + f  # WRAP: keep the low k+i+f bits, two's complement when k=1
        mod = np.exp2(width)
        bias = k * np.exp2(width - 1)
        m = np.mod(m + bias, mod) - bias
    else:
        hi = np.exp2(i_eff) - np.exp2(-f)
        lo = -hi * k if overflow == "SAT_SYM" else -np.exp2(i_eff) * k
        m = _round_mant(np.clip(x, lo, hi) * scale, round_mode)
    out = m / scale
    out = np.where(k + i + f > 0, out, 0.0)
    return out + 0.0  # no negative zeros


def _exact_frac(v: float) -> int:
    """Fewest fractional bits that hold the dyadic float v exactly."""
    if v == 0 or not math.isfinite(v):
        return 0
    m, e = math.frexp(v)
    mi = int(m * (1 << 53))
    tz = (mi & -mi).bit_length() - 1
    return 53 - e - tz


def _fits(v: float, t: FixedType) -> bool:
    m = v * 2.0 ** t.frac
    return m == math.floor(m) and t.min_mant() <= m <= t.max_mant()


def _value_type(v: float) -> FixedType:
    return smallest_type(np.array([v]), _exact_frac(v))


def quantize_const(x32: np.ndarray, spec: QSpec) -> tuple[np.ndarray, list[FixedType]]:
    """A weight tensor as Keras's Quantizer(...)(x) computes it at inference, with one type per element.

    hgq/quantizer/quantizer.py Quantizer.call: x / scaler -> internal quantiser -> * scaler -> affine.
    The internal quantiser is the fixed-point one above, except (fixed_point_quantizer.py) a *trainable*
    WRAP weight quantiser (is_weight) only rounds: KIF always, KBI when rounding with RND.
    """
    x32 = np.asarray(x32, dtype=np.float32)
    if spec.identity:
        q = x32.astype(np.float64)
        types = []
        for v in q.reshape(-1).tolist():
            t = _value_type(v)
            if t.width > 64:
                raise ExportError(f"{spec.what}: unquantised weight {v!r} needs {t.width} bits (more than 64)")
            types.append(t)
        return q, types
    xin = x32
    if spec.scaler is not None:
        xin = (x32 / np.float32(spec.scaler)).astype(np.float32)
    k, i, f = _kif(spec, x32.shape)
    if spec.overflow == "WRAP" and spec.trainable and spec.is_weight and (not spec.kbi or spec.round_mode == "RND"):
        q = _round_mant(xin.astype(np.float64) * np.exp2(f), spec.round_mode) / np.exp2(f) + 0.0
        declared = None
    else:
        q = fixed_quantize(xin.astype(np.float64), k, i, f, spec.round_mode, spec.overflow)
        declared = (k, np.maximum(i, -f), f)
    e = None
    if spec.scaler is not None:
        e = _po2(spec.scaler)
        q = (q.astype(np.float32) * np.float32(spec.scaler)).astype(np.float64)
    if spec.affine is not None:
        a, b = spec.affine
        q = ((q.astype(np.float32) * np.float32(a)).astype(np.float32) + np.float32(b)).astype(np.float64)
    types: list[FixedType] = []
    flat = q.reshape(-1).tolist()
    for n, v in enumerate(flat):
        t = None
        if declared is not None and spec.affine is None and (spec.scaler is None or e is not None):
            kk, ii, ff = (int(a.reshape(-1)[n]) for a in declared)
            if e is not None:
                ii, ff = ii + e, ff - e
            if kk + ii + ff >= 1 and kk + ii + ff <= 64:
                cand = FixedType.from_kif(kk, ii, ff)
                if _fits(v, cand):
                    t = cand
        if t is None:
            t = _PLACEHOLDER if v == 0 else _value_type(v)
        if t.width > 64:
            raise ExportError(f"{spec.what}: weight value {v!r} needs {t.width} bits (more than 64)")
        types.append(t)
    return q, types


def _po2(s: float) -> int | None:
    """e if s == 2^e exactly, else None."""
    if s <= 0:
        return None
    m, e = math.frexp(s)
    return e - 1 if m == 0.5 else None


# ---------------------------------------------------------------------------------------------------------
# Activation quantisers -> Quantize nodes


def _act_types(spec: QSpec, n: int, dims: tuple | None = None):
    """Per-element (k, i, f) of an activation quantiser over a tensor of n elements (shape `dims`
    without the batch axis; a vector when None), flattened row-major, and what it needs:
    returns (k, i, f, zero mask, scaler exponent e, signed SAT_SYM?)."""
    dims = (n,) if dims is None else tuple(dims)
    k, i, f = (a.reshape(-1) for a in _kif(spec, (1,) + dims))
    e = 0
    if spec.scaler is not None:
        e = _po2(spec.scaler)
        if e is None:
            raise ExportError(f"{spec.what}: scaler {spec.scaler} is not a power of two; an activation quantiser with it "
                              "cannot be represented exactly")
    zero = (k + i + f) <= 0
    signed_sym = spec.overflow == "SAT_SYM" and bool(np.any((k > 0) & ~zero))
    return k, np.maximum(i, -f), f, zero, e, signed_sym


def _types(k, i, f, zero, e, rounding: str, overflow_of, extra_int: int = 0) -> list[FixedType]:
    out = []
    for j in range(len(k)):
        if zero[j]:
            out.append(_PLACEHOLDER)
            continue
        kk, ii, ff = int(k[j]), int(i[j]) + e, int(f[j]) - e
        out.append(FixedType.from_kif(kk, ii + (extra_int if kk else 0), ff, rounding, overflow_of(kk)))
    return out


def _plain_types(spec: QSpec, n: int, dims: tuple | None = None) -> list[FixedType] | None:
    """The quantiser as one type per element (with modes), or None when it needs more than a Quantize
    (signed SAT_SYM)."""
    k, i, f, zero, e, signed_sym = _act_types(spec, n, dims)
    if signed_sym:
        return None
    ov = "SAT" if spec.overflow == "SAT_SYM" else spec.overflow  # unsigned: SAT_SYM == SAT
    return _types(k, i, f, zero, e, spec.round_mode, lambda kk: ov)


def _same_grid(a: list[FixedType] | None, b: list[FixedType]) -> bool:
    """Values of types `a` quantised to types `b` are unchanged (same signedness, width and integer bits)."""
    return a is not None and len(a) == len(b) and all(
        (x.signed, x.width, x.int_bits) == (y.signed, y.width, y.int_bits) for x, y in zip(a, b))


def act_quantize(ctx: Context, layer: KLayer, spec: QSpec, x: Tensor, name: str) -> tuple[Tensor, np.ndarray | None]:
    """Quantise an activation vector; returns the new tensor and the mask of elements that are always 0
    (k+i+f <= 0), or None. Zeros are NOT materialised: the caller zeroes kernel rows or calls
    `materialize_zeros`. A tensor that already has exactly the quantiser's types (e.g. the model input,
    typed by this quantiser through keras_std's input-quantiser hook) is not quantised again."""
    if spec.identity:
        return x, None
    b = ctx.builder
    n = x.n
    dims = x.dims
    k, i, f, zero, e, signed_sym = _act_types(spec, n, dims)
    if not signed_sym:
        types = _plain_types(spec, n, dims)
        if _same_grid(x.types, types):
            out = Tensor(x.node, n, list(x.types), x.shape)
        else:
            out = Tensor(b.quantize(b.unique(name), x.node, types), n, types, x.shape)
    else:
        # hgq2 SAT_SYM clips to [-(2^i - 2^-f), 2^i - 2^-f] before rounding; model.json's SAT_SYM (ap_fixed's)
        # keeps an in-range -2^i. Exact chain: round with one more integer bit (SAT), negate, SAT, negate, SAT.
        t1 = _types(k, i, f, zero, e, spec.round_mode, lambda kk: "SAT", extra_int=1)
        n1 = x.node if _same_grid(x.types, t1) else b.quantize(b.unique(name + "_rnd"), x.node, t1)
        neg = np.full(dims, -1.0)
        zero_shift = np.zeros(dims)
        n2 = b.batchnorm(b.unique(name + "_neg"), n1, neg, FixedType(True, 1, 1), zero_shift, FixedType(False, 1, 1))
        # after negation every element is clipped with a signed type (an unsigned element, in [-max, 0], passes)
        t3 = [(_PLACEHOLDER if zero[j] else FixedType.from_kif(1, int(i[j]) + e, int(f[j]) - e, "TRN", "SAT"))
              for j in range(n)]
        n3 = b.quantize(b.unique(name + "_satlo"), n2, t3)
        n4 = b.batchnorm(b.unique(name + "_pos"), n3, neg, FixedType(True, 1, 1), zero_shift, FixedType(False, 1, 1))
        t5 = _types(k, i, f, zero, e, "TRN", lambda kk: "SAT")
        out = Tensor(b.quantize(b.unique(name + "_sathi"), n4, t5), n, t5, x.shape)
    if spec.affine is not None:
        a, c = spec.affine
        out = Tensor(_affine(b, name + "_affine", out.node, np.full(dims, a), np.full(dims, c)), n, None, x.shape)
    return out, (zero if zero.any() else None)


def _affine(b: ModelBuilder, name: str, src: str, scale: np.ndarray, shift: np.ndarray) -> str:
    st = [_value_type(float(v)) for v in np.asarray(scale).reshape(-1)]
    tt = [_value_type(float(v)) for v in np.asarray(shift).reshape(-1)]
    return b.batchnorm(b.unique(name), src, scale, st, shift, tt)


def materialize_zeros(ctx: Context, t: Tensor, zero: np.ndarray | None, name: str) -> Tensor:
    """Force the always-zero elements of `t` to 0 with a BatchNorm mask (scale 0/1, shift 0)."""
    if zero is None:
        return t
    scale = np.where(zero, 0.0, 1.0).reshape(t.dims)
    node = _affine(ctx.builder, name, t.node, scale, np.zeros(t.dims))
    types = None if t.types is None else [(_PLACEHOLDER if z else ty) for z, ty in zip(zero, t.types)]
    return Tensor(node, t.n, types, t.shape)


# ---------------------------------------------------------------------------------------------------------
# Layers


def _model_trainable(ctx: Context) -> bool:
    """Whether a loaded model leaves its quantisers' own `trainable` flags alone: always, as observed with
    hgq2 0.2.0 + Keras 3.15.1 (a model or layer saved with trainable=False loads with its QDense/Quantizer
    flags False but the internal fixed-point quantisers keep the flag of their own config; checked for
    Sequential and Functional models, by model.predict after keras.models.load_model)."""
    return True


_SUB_PLACE = {"iq": "datalane", "oq": "datalane", "kq": "weight", "bq": "bias"}


def _spec(ctx: Context, layer: KLayer, sub: str, conf) -> QSpec:
    if conf is None and layer.family == "hgq2" and sub in _SUB_PLACE:
        # hgq2 builds QuantizerConfig('default', place) for a missing kq/bq/iq/oq config (files written by
        # hgq2 always spell it out); under hgq2's QKeras look-alike the default is the dummy (identity).
        conf = {"class_name": "QuantizerConfig", "config": {"q_type": "default", "place": _SUB_PLACE[sub]}}
    return quantizer_spec(layer, sub, conf, _model_trainable(ctx))


def _activation_name(act) -> str:
    if act is None:
        return "linear"
    if isinstance(act, str):
        return act
    if isinstance(act, dict):
        c = act.get("config")
        if isinstance(c, str):
            return c
        if isinstance(c, dict) and "name" in c:
            return str(c["name"])
        return str(act.get("class_name"))
    return str(act)


def _apply_activation(ctx: Context, layer: KLayer, t: Tensor, act) -> Tensor:
    a = _activation_name(act)
    if a in ("linear", None, ""):
        return t
    if a == "relu":
        return Tensor(ctx.builder.relu(ctx.builder.unique(f"{layer.name}_relu"), t.node), t.n, None, t.shape)
    raise ExportError(f"layer {layer.name!r} ({layer.class_name}): activation {a!r} is not supported "
                      "(linear and relu are; other functions cannot be computed exactly)")


def _check_vector_input(ctx: Context, layer: KLayer) -> None:
    for shape in (ctx.model.extra.get("input_shapes") or {}).get(layer.name, []):
        if len(shape) != 1:
            raise ExportError(f"layer {layer.name!r} ({layer.class_name}) reads a tensor of shape {list(shape)}; "
                              "model.json v1 supports vector activations only")


def _weight(layer: KLayer, name: str) -> np.ndarray:
    if name not in layer.weights:
        raise ExportError(f"layer {layer.name!r} ({layer.class_name}): no stored variable {name!r} "
                          f"(found: {', '.join(sorted(layer.weights)) or 'none'})")
    return np.asarray(layer.weights[name], dtype=np.float32)


def _input(ctx: Context, layer: KLayer) -> tuple[Tensor, np.ndarray | None]:
    x = ctx.input_of(layer)
    if layer.config.get("enable_iq"):
        return act_quantize(ctx, layer, _spec(ctx, layer, "iq", layer.config.get("iq_conf")), x, f"{layer.name}_iq")
    return x, None


def _finish(ctx: Context, layer: KLayer, t: Tensor) -> None:
    cfg = layer.config
    t = _apply_activation(ctx, layer, t, cfg.get("activation"))
    if cfg.get("enable_oq"):
        t, zero = act_quantize(ctx, layer, _spec(ctx, layer, "oq", cfg.get("oq_conf")), t, f"{layer.name}_oq")
        t = materialize_zeros(ctx, t, zero, f"{layer.name}_oq_zero")
    ctx.tensors[layer.name] = t


def _emit_dense(ctx: Context, layer: KLayer, x: Tensor, zero, kernel32, bias32, kspec: QSpec, bspec: QSpec | None) -> Tensor:
    """A Dense on the last axis (shared over the leading axes of a tensor input, as Keras applies it)."""
    dims = x.dims
    n_in = dims[-1]
    if kernel32.ndim != 2 or kernel32.shape[0] != n_in:
        raise ExportError(f"layer {layer.name!r} ({layer.class_name}): kernel shape {kernel32.shape} does not match "
                          f"an input whose last axis has {n_in} elements (shape {list(dims)})")
    if zero is not None and len(dims) > 1:
        rows = np.asarray(zero).reshape(-1, n_in)
        if (rows == rows[0]).all():
            zero = rows[0]  # the same inputs are always 0 in every row: zero those kernel rows
        else:
            x = materialize_zeros(ctx, x, zero, f"{layer.name}_iq_zero")
            zero = None
    kq, kt = quantize_const(kernel32, kspec)
    if zero is not None:  # inputs that the input quantiser always makes 0 contribute nothing
        kq = kq.copy()
        kq[zero, :] = 0.0
        units = kq.shape[1]
        kt = [(_PLACEHOLDER if zero[r] else kt[r * units + c]) for r in range(kq.shape[0]) for c in range(units)]
    bq = bt = None
    if bias32 is not None:
        bq, bt = quantize_const(bias32, bspec if bspec is not None else QSpec("bias"))
    node = ctx.builder.dense(ctx.builder.unique(layer.name), x.node, kq, kt, bq, bt)
    if len(dims) > 1:
        ctx.builder.version = 2
        return Tensor(node, int(np.prod(dims[:-1])) * kq.shape[1], None, tuple(dims[:-1]) + (kq.shape[1],))
    return Tensor(node, kq.shape[1], None)


# keras_std's InputLayer handler asks the input's only reader for the input's types: an HGQ2 layer answers
# with its input quantiser (or a Quantizer layer with its own), so the design input is exactly what the
# model quantises its input to, and act_quantize then adds no Quantize node.
_IQ_CLASSES = ("QDense", "QBatchNormDense", "QEinsumDense", "QEinsumDenseBatchnorm", "QBatchNormalization",
               "QUnaryFunctionLUT", "QGlobalAveragePooling1D", "QGlobalMaxPooling1D")


def _first_quantizer_types(ctx: Context, layer: KLayer, n: int) -> list[FixedType] | None:
    if layer.class_name in ("Quantizer", "QActivation"):
        conf = layer.config.get("config")
        if isinstance(conf, str):
            return None
        spec = _spec(ctx, layer, "quantizer", conf)
    elif layer.config.get("enable_iq"):
        spec = _spec(ctx, layer, "iq", layer.config.get("iq_conf"))
    else:
        return None
    if spec.identity or (spec.scaler is not None and _po2(spec.scaler) is None):
        return None
    dims = _in_dims(ctx, layer, n)
    k, i, f, zero, e, signed_sym = _act_types(spec, n, dims)
    if signed_sym:  # the first step of act_quantize's SAT_SYM chain: round, one more integer bit, SAT
        return _types(k, i, f, zero, e, spec.round_mode, lambda kk: "SAT", extra_int=1)
    return _plain_types(spec, n, dims)


def _in_dims(ctx: Context, layer: KLayer, n: int) -> tuple:
    """The shape (without the batch axis) of the tensor `layer` reads, as the file states it, when it
    has n elements (the design input seen through a Reshape, say); a vector of n otherwise."""
    for shape in (ctx.model.extra.get("input_shapes") or {}).get(layer.name, [])[:1]:
        if shape and all(isinstance(d, int) for d in shape) and int(np.prod(shape)) == n:
            return tuple(int(d) for d in shape)
    return (n,)


try:
    from .keras_std import input_quantizer as _input_quantizer
except ImportError:  # keras_std without the hook: the input keeps its default type, a Quantize follows
    _input_quantizer = None
if _input_quantizer is not None:
    for _fam in FAMILIES:
        _input_quantizer(_fam, *_IQ_CLASSES, "Quantizer", "QActivation")(_first_quantizer_types)


@handles("hgq2", "QDense", tensors=True)
@handles("qkeras_hgq2", "QDense", tensors=True)
def qdense(ctx: Context, layer: KLayer) -> None:
    """hgq/layers/core/dense.py QDense.call: iq -> matmul(qkernel) -> + qbias -> activation -> oq, on
    the last axis of its input (shared over the leading axes)."""
    cfg = layer.config
    x, zero = _input(ctx, layer)
    kernel = _weight(layer, "kernel")
    bias = _weight(layer, "bias") if cfg.get("use_bias", True) else None
    kspec = _spec(ctx, layer, "kq", cfg.get("kq_conf"))
    bspec = _spec(ctx, layer, "bq", cfg.get("bq_conf")) if bias is not None else None
    t = _emit_dense(ctx, layer, x, zero, kernel, bias, kspec, bspec)
    _finish(ctx, layer, t)


@handles("hgq2", "QBatchNormDense")
@handles("qkeras_hgq2", "QBatchNormDense")
def qbatchnorm_dense(ctx: Context, layer: KLayer) -> None:
    """hgq/layers/core/dense.py QBatchNormDense (inference): scaler = bn_gamma / sqrt(moving_variance + epsilon);
    qkernel = kq(scaler[:, None] * kernel); qbias = bq(bias - dot(moving_mean, kernel)); then as QDense.
    (As in hgq2 0.2.0 itself, scaler[:, None] scales kernel *rows*, which only broadcasts when n_in == units.)"""
    _check_vector_input(ctx, layer)
    cfg = layer.config
    x, zero = _input(ctx, layer)
    kernel = _weight(layer, "kernel")
    bias = _weight(layer, "bias")
    mean, var = _weight(layer, "moving_mean"), _weight(layer, "moving_variance")
    gamma = _weight(layer, "bn_gamma") if cfg.get("scale", True) else np.float32(1.0)
    eps = np.float32(cfg.get("epsilon", 1e-3))
    scaler = (gamma / np.sqrt((var + eps).astype(np.float32))).astype(np.float32)
    try:
        fused = (scaler[:, None] * kernel).astype(np.float32)
        offset = (-np.dot(mean, kernel)).astype(np.float32)
    except ValueError:
        raise ExportError(f"layer {layer.name!r} (QBatchNormDense): hgq2 0.2.0 fuses scaler[:, None] * kernel, which does "
                          f"not broadcast for kernel shape {kernel.shape}") from None
    if fused.shape != kernel.shape:
        raise ExportError(f"layer {layer.name!r} (QBatchNormDense): fused kernel shape {fused.shape} != {kernel.shape}")
    fbias = (bias + offset).astype(np.float32)
    t = _emit_dense(ctx, layer, x, zero, fused, fbias, _spec(ctx, layer, "kq", cfg.get("kq_conf")),
                    _spec(ctx, layer, "bq", cfg.get("bq_conf")))
    _finish(ctx, layer, t)


def _dense_equation(ctx: Context, layer: KLayer) -> None:
    """Accept only EinsumDense equations that are a plain dense on the last axis, e.g. 'ab,bc->ac' or '...b,bc->...c'."""
    eq = str(layer.config.get("equation", "")).replace(" ", "")
    try:
        lhs, rest = eq.split(",")
        kern, out = rest.split("->")
    except ValueError:
        raise ExportError(f"layer {layer.name!r}: cannot parse einsum equation {eq!r}") from None
    ok = (len(kern) == 2 and lhs and out and lhs[-1] == kern[0] and out[-1] == kern[1] and lhs[:-1] == out[:-1]
          and (lhs[:-1] == "..." or len(lhs[:-1]) == 1) and kern[0] != kern[1])
    if not ok:
        raise ExportError(f"layer {layer.name!r} ({layer.class_name}): einsum equation {eq!r} is not a dense on the last "
                          "axis; model.json v1 supports vector activations only")
    bias_axes = layer.config.get("bias_axes")
    if bias_axes and bias_axes != kern[1]:
        raise ExportError(f"layer {layer.name!r}: bias_axes {bias_axes!r} unsupported (only {kern[1]!r})")


@handles("hgq2", "QEinsumDense")
@handles("qkeras_hgq2", "QEinsumDense")
def qeinsum_dense(ctx: Context, layer: KLayer) -> None:
    """hgq/layers/core/einsum_dense.py, for dense-like equations: iq -> einsum(qkernel) -> + qbias -> act -> oq."""
    _check_vector_input(ctx, layer)
    _dense_equation(ctx, layer)
    cfg = layer.config
    x, zero = _input(ctx, layer)
    kernel = _weight(layer, "kernel")
    bias = _weight(layer, "bias") if cfg.get("bias_axes") else None
    t = _emit_dense(ctx, layer, x, zero, kernel, bias, _spec(ctx, layer, "kq", cfg.get("kq_conf")),
                    _spec(ctx, layer, "bq", cfg.get("bq_conf")) if bias is not None else None)
    _finish(ctx, layer, t)


@handles("hgq2", "QEinsumDenseBatchnorm")
@handles("qkeras_hgq2", "QEinsumDenseBatchnorm")
def qeinsum_dense_batchnorm(ctx: Context, layer: KLayer) -> None:
    """hgq/layers/einsum_dense_batchnorm.py (inference): scaler = bn_gamma / sqrt(moving_variance + epsilon())
    with Keras's global epsilon() (1e-7), NOT the layer's `epsilon`; qkernel = kq(kernel * scaler) along the
    normalised (output) axis; qbias = bq(bias - moving_mean * scaler)."""
    _check_vector_input(ctx, layer)
    _dense_equation(ctx, layer)
    cfg = layer.config
    norm = cfg.get("normalize_axes") or cfg.get("bias_axes")
    eq = str(cfg.get("equation", "")).replace(" ", "")
    if norm != eq.split("->")[1][-1]:
        raise ExportError(f"layer {layer.name!r}: normalize_axes {norm!r} unsupported")
    x, zero = _input(ctx, layer)
    kernel = _weight(layer, "kernel")
    if not cfg.get("bias_axes"):
        raise ExportError(f"layer {layer.name!r} (QEinsumDenseBatchnorm) has no bias")
    bias = _weight(layer, "bias")
    mean, var = _weight(layer, "moving_mean"), _weight(layer, "moving_variance")
    gamma = _weight(layer, "bn_gamma") if cfg.get("scale", True) else np.float32(1.0)
    scaler = (gamma / np.sqrt((var + np.float32(1e-7)).astype(np.float32))).astype(np.float32)
    fused = (kernel * scaler[None, :]).astype(np.float32)
    fbias = (bias + (-mean * scaler).astype(np.float32)).astype(np.float32)
    t = _emit_dense(ctx, layer, x, zero, fused, fbias, _spec(ctx, layer, "kq", cfg.get("kq_conf")),
                    _spec(ctx, layer, "bq", cfg.get("bq_conf")))
    _finish(ctx, layer, t)


@handles("hgq2", "QBatchNormalization")
@handles("qkeras_hgq2", "QBatchNormalization")
def qbatchnorm(ctx: Context, layer: KLayer) -> None:
    """hgq/layers/batch_normalization.py (inference): scale = bn_gamma / sqrt(var + epsilon) (1 without `scale`),
    offset = bn_beta - mean * scale (bn_beta is 1, not 0, without `center`, as in hgq2 0.2.0);
    y = iq(x) * kq(scale) + bq(offset), exactly."""
    _check_vector_input(ctx, layer)
    cfg = layer.config
    axis = cfg.get("axis", -1)
    if isinstance(axis, list):
        axis = axis[0] if len(axis) == 1 else axis
    if axis not in (-1, 1):
        raise ExportError(f"layer {layer.name!r} (QBatchNormalization): axis {axis} unsupported")
    x, zero = _input(ctx, layer)
    mean, var = _weight(layer, "moving_mean"), _weight(layer, "moving_variance")
    gamma = _weight(layer, "bn_gamma") if cfg.get("scale", True) else np.float32(1.0)
    beta = _weight(layer, "bn_beta") if cfg.get("center", True) else np.float32(1.0)
    eps = np.float32(cfg.get("epsilon", 1e-3))
    scale = (gamma / np.sqrt((var + eps).astype(np.float32))).astype(np.float32)
    offset = (beta - (mean * scale).astype(np.float32)).astype(np.float32)
    scale = np.broadcast_to(scale, (x.n,)).astype(np.float32)
    offset = np.broadcast_to(offset, (x.n,)).astype(np.float32)
    qs, st = quantize_const(scale, _spec(ctx, layer, "kq", cfg.get("kq_conf")))
    qo, ot = quantize_const(offset, _spec(ctx, layer, "bq", cfg.get("bq_conf")))
    if zero is not None:
        qs = np.where(zero, 0.0, qs)
        st = [(_PLACEHOLDER if z else t) for z, t in zip(zero, st)]
    node = ctx.builder.batchnorm(ctx.builder.unique(layer.name), x.node, qs, st, qo, ot)
    t = Tensor(node, x.n, None)
    if cfg.get("enable_oq"):
        t, z = act_quantize(ctx, layer, _spec(ctx, layer, "oq", cfg.get("oq_conf")), t, f"{layer.name}_oq")
        t = materialize_zeros(ctx, t, z, f"{layer.name}_oq_zero")
    ctx.tensors[layer.name] = t


@handles("hgq2", "Quantizer", "QActivation", tensors=True)
@handles("qkeras_hgq2", "Quantizer", "QActivation", tensors=True)
def quantizer_layer(ctx: Context, layer: KLayer) -> None:
    """hgq/quantizer/quantizer.py Quantizer (hgq2's QKeras QActivation is this class): one activation quantiser."""
    x = ctx.input_of(layer)
    conf = layer.config.get("config")
    if isinstance(conf, str):
        raise ExportError(f"layer {layer.name!r}: quantiser given as a string {conf!r}; re-save the model with hgq2")
    spec = _spec(ctx, layer, "quantizer", conf)
    t, zero = act_quantize(ctx, layer, spec, x, layer.name)
    ctx.tensors[layer.name] = materialize_zeros(ctx, t, zero, f"{layer.name}_zero")


@handles("hgq2", "QUnaryFunctionLUT", tensors=True)
@handles("qkeras_hgq2", "QUnaryFunctionLUT", tensors=True)
def qunary_lut(ctx: Context, layer: KLayer) -> None:
    """hgq/layers/activation.py QUnaryFunctionLUT with an exact activation (relu or linear): iq -> act -> oq."""
    x, zero = _input(ctx, layer)
    x = materialize_zeros(ctx, x, zero, f"{layer.name}_iq_zero")
    _finish(ctx, layer, x)


# ---------------------------------------------------------------------------------------------------------
# Lookup-table layers (HGQ2 QDenseT)

def _subnn_activation(layer: KLayer):
    """The sub-network's activation as a float32 numpy function."""
    a = _activation_name(layer.config.get("subnn_activation"))
    fns = {"tanh": np.tanh, "linear": lambda v: v, "relu": lambda v: np.maximum(v, np.float32(0)),
           "sigmoid": lambda v: (np.float32(1) / (np.float32(1) + np.exp(-v))).astype(np.float32)}
    if a not in fns:
        raise ExportError(f"layer {layer.name!r} (QDenseT): sub-network activation {a!r} is not supported "
                          f"(supported: {', '.join(sorted(fns))})")
    return fns[a]


def _qdense_t_pairs(layer: KLayer, spec: QSpec, dims: tuple, what: str):
    """(k, i, f) of a QDenseT quantiser per (in, out) pair, shape (n_in, n_out). hgq2 builds iq and toq
    for the broadcast input (batch, ..., n_in, n_out) (table/dense.py build: `input_shape + (n_out,)`);
    the table is one per pair only if the bit widths do not vary along the leading axes."""
    n_in, n_out = dims[-1], int(layer.config["n_out"])
    full = (1,) + tuple(dims[:-1]) + (n_in, n_out)
    kif = []
    for a in _kif(spec, full):
        a = np.asarray(a, dtype=np.float64).reshape((-1, n_in, n_out))
        if not (a == a[:1]).all():
            raise ExportError(f"layer {layer.name!r} (QDenseT): its {what} bit widths differ between positions of "
                              f"its input of shape {list(dims)}; only quantisers shared over the leading axes "
                              "(one table per (in, out) pair) are supported")
        kif.append(a[0])
    return kif


def _qdense_t_specs(ctx: Context, layer: KLayer, dims):
    """The input quantiser of a QDenseT: its spec and integer (k, i, f) per (in, out) pair (hgq2
    broadcasts the input to (..., n_in, n_out) before iq: table/dense.py call), i clipped to -f as
    FixedPointQuantizer.__call__ does."""
    cfg = layer.config
    dims = (int(dims),) if isinstance(dims, (int, np.integer)) else tuple(dims)
    if not cfg.get("enable_iq", True):
        raise ExportError(f"layer {layer.name!r} (QDenseT): a table layer without an input quantiser has no finite "
                          "table; enable its iq")
    spec = _spec(ctx, layer, "iq", cfg.get("iq_conf"))
    if spec.identity or spec.scaler is not None or spec.affine is not None:
        raise ExportError(f"layer {layer.name!r} (QDenseT): its input quantiser must be a plain kif/kbi quantiser")
    k, i, f = _qdense_t_pairs(layer, spec, dims, "input quantiser")
    i = np.maximum(i, -f)  # FixedPointQuantizer.__call__
    return spec, k.astype(int), i.astype(int), f.astype(int)


def _qdense_t_input_types(ctx: Context, layer: KLayer, n: int) -> list[FixedType] | None:
    """The design input in front of a QDenseT (directly, or through a Reshape/Flatten). Each input element
    i feeds n_out domains (k_ij, i_ij, f_ij), all with iq's modes, and the Input can have one type per
    element, so it is chosen to compose exactly with each of them:

    * a signed type with TRN and iq's overflow (WRAP or SAT), F = max_j f_ij fractional bits (+1 for
      RND) and I = max_j (k_ij + i_ij) integer bits, sign included. Rounding: floor to 2^-F then floor to
      2^-f (f <= F) is floor to 2^-f; floor to 2^-F then RND (floor(v + 1/2)) to 2^-f with F >= f + 1 is
      RND of the real value: floor((floor(x 2^F) + 2^(F-f-1)) / 2^(F-f)) = floor((x 2^F + 2^(F-f-1)) / 2^(F-f))
      because 2^(F-f-1) is an integer (nested floors of divisions by integers compose). Overflow: WRAP
      with a window 2^I that is a multiple of the domain's 2^(k+i) composes (wrapping is mod 2^(k+i), and
      rounding commutes with adding multiples of 2^I, itself a multiple of 2^-f); SAT: the Input's range
      contains the domain's, both ends on the Input's grid, so a value beyond a domain end stays beyond
      it (or on it) and saturates the same. Other rounding modes (ties to even, towards zero...) do not
      compose with a floor this way: where every live domain of element i is the same, the Input type is
      that domain with iq's modes (exact for any mode: the domain then changes nothing); otherwise the
      types above, with a note that the design is exact only for inputs that are multiples of 2^-F."""
    dims = _in_dims(ctx, layer, n)
    try:
        spec, k, i, f = _qdense_t_specs(ctx, layer, dims)
    except ExportError:
        return None
    if spec.overflow not in ("WRAP", "SAT") and not (spec.overflow == "SAT_SYM" and not np.any(k)):
        return None
    ov = "WRAP" if spec.overflow == "WRAP" else "SAT"
    n_in = dims[-1]
    per_feature = []
    inexact = []
    for e in range(n_in):
        live = (k[e] + i[e] + f[e]) > 0
        if not live.any():
            per_feature.append(FixedType(True, 2, 1))
            continue
        kif = {(int(a), int(b), int(c)) for a, b, c in zip(k[e][live], i[e][live], f[e][live])}
        if spec.round_mode not in ("TRN", "RND") and len(kif) == 1:
            per_feature.append(FixedType.from_kif(*kif.pop(), spec.round_mode, ov))
            continue
        frac = int(f[e][live].max()) + (0 if spec.round_mode == "TRN" else 1)
        ints = max(int((k[e] + i[e])[live].max()), 1)
        per_feature.append(FixedType(True, ints + frac, ints, "TRN", ov))
        if spec.round_mode not in ("TRN", "RND"):
            inexact.append((e, frac))
    if inexact:
        from .keras_std import note

        note(ctx, f"{layer.name}: its input quantiser rounds with {spec.round_mode}, which does not compose with the "
                  "design input's TRN: the design quantises real inputs exactly as Keras does only for inputs on "
                  "the input type's grid (" + ", ".join(f"element {e}: multiples of 2^-{fr}" for e, fr in inexact[:4])
             + (", ..." if len(inexact) > 4 else "") + ")")
    return per_feature * (n // n_in)


if _input_quantizer is not None:
    for _fam in FAMILIES:
        _input_quantizer(_fam, "QDenseT")(_qdense_t_input_types)


def _subnn_weights(layer: KLayer, n_hl: int) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Kernel and bias of each EinsumDense of the sub-network (table/dense.py _build_module: n_hl layers
    '...iod,iodD->...ioD' then '...iod,iod->...io', bias axes 'ioD' / 'io' when use_bias), as saved by
    Keras under module/layers/einsum_dense[_N] (numbered within the Sequential)."""
    use_bias = bool(layer.config.get("use_bias", True))
    out = []
    for h in range(n_hl + 1):
        sub = "einsum_dense" if h == 0 else f"einsum_dense_{h}"
        kern = layer.weights.get(f"module/layers/{sub}/0")
        bias = layer.weights.get(f"module/layers/{sub}/1")
        if kern is None or (use_bias and bias is None):
            raise ExportError(f"layer {layer.name!r} (QDenseT): sub-network layer {sub} has no stored "
                              f"{'kernel and bias' if use_bias else 'kernel'} (found: "
                              f"{', '.join(sorted(w for w in layer.weights if w.startswith('module/'))) or 'none'})")
        out.append((np.asarray(kern, np.float32), np.asarray(bias, np.float32) if use_bias else None))
    return out


@handles("hgq2", "QDenseT", tensors=True)
@handles("qkeras_hgq2", "QDenseT", tensors=True)
def qdense_t(ctx: Context, layer: KLayer) -> None:
    """hgq/layers/table/dense.py QDenseT.call (hgq2 0.2.0): the input is broadcast to (..., n_in, n_out),
    quantised by iq (one kif per (in, out) pair), each pair's scalar goes through its own sub-network
    (n_hl EinsumDense '...iod,iodD->...ioD' of width d_hl with subnn_activation, then
    '...iod,iod->...io', each with a bias when use_bias), the result is quantised by toq (place 'table'),
    summed over the inputs, and `activation` applies to the sum (then oq, when enabled, by the QLayer
    call wrapper). Each pair is a function of one quantised value, so it is a table over iq's grid:
    evaluated here in float32 as Keras does, then quantised by toq exactly (`fixed_quantize`). A value
    within 2^-12 of a rounding boundary of toq is reported: float32 results there may depend on the
    order of the float sums. A pair whose domain keeps no bit is a constant (the sub-network at 0):
    it goes to the bias. `batch_norm=True` is refused; `activation` other than linear/relu is refused
    by _finish (with the layer's name and class)."""
    cfg = layer.config
    x = ctx.input_of(layer)
    shape = x.dims
    n_in, n_out, n_hl = shape[-1], int(cfg["n_out"]), int(cfg.get("n_hl", 1))
    if cfg.get("batch_norm"):
        raise ExportError(f"layer {layer.name!r} (QDenseT): batch_norm=True (a float BatchNormalization of the table "
                          "outputs, divided by sqrt(n_in), before toq) is not supported")
    spec, k, i, f = _qdense_t_specs(ctx, layer, shape)
    if spec.overflow == "SAT_SYM" and bool(np.any(k > 0)):
        raise ExportError(f"layer {layer.name!r} (QDenseT): a signed SAT_SYM input quantiser is not supported in "
                          "a table domain (hgq2 clips symmetrically before rounding); use WRAP or SAT")
    act = _subnn_activation(layer)
    ws = _subnn_weights(layer, n_hl)
    tspec = _spec(ctx, layer, "toq", cfg.get("toq_conf"))
    if tspec.identity or tspec.scaler is not None or tspec.affine is not None:
        raise ExportError(f"layer {layer.name!r} (QDenseT): its table output quantiser must be a plain kif/kbi quantiser")
    tk, ti, tf = _qdense_t_pairs(layer, tspec, shape, "table output quantiser")
    widest = int(np.max(k + i + f))
    if widest > 20:
        raise ExportError(f"layer {layer.name!r} (QDenseT): an input quantiser keeps {widest} bits; a table of 2^{widest} "
                          "entries is too large")
    tables, bias = [], np.zeros(n_out)
    fragile = 0
    for a in range(n_in):
        for o in range(n_out):
            kk, ii, ff = int(k[a, o]), int(i[a, o]), int(f[a, o])
            width = kk + ii + ff
            grid = [0.0] if width <= 0 else [(-kk * 2.0 ** ii) + m * 2.0 ** -ff for m in range(1 << width)]
            v = np.asarray(grid, np.float32)[:, None]  # (n, d=1)
            for h in range(n_hl):  # '...iod,iodD->...ioD', + bias, subnn_activation (all float32)
                w, b = ws[h]
                v = (v @ w[a, o]).astype(np.float32)
                v = act(v if b is None else (v + b[a, o]).astype(np.float32)).astype(np.float32)
            w, b = ws[n_hl]  # '...iod,iod->...io', + bias, linear
            y = (v @ w[a, o][:, None])[:, 0].astype(np.float32)
            if b is not None:
                y = (y + b[a, o]).astype(np.float32)
            q = fixed_quantize(y, tk[a, o], ti[a, o], tf[a, o], tspec.round_mode, tspec.overflow)
            edge = np.abs(y.astype(np.float64) * 2.0 ** tf[a, o] - np.floor(y.astype(np.float64) * 2.0 ** tf[a, o]) - 0.5)
            fragile += int(np.sum(edge < 2.0 ** -12))
            tw = int(tk[a, o] + max(ti[a, o], -tf[a, o]) + tf[a, o])
            if tw <= 0 or not np.any(q):
                continue  # the toq output is always 0
            if width <= 0:
                bias[o] += float(q[0])
                continue
            dom = FixedType.from_kif(kk, ii, ff, spec.round_mode, "SAT" if spec.overflow == "SAT_SYM" else spec.overflow)
            ety = smallest_type(q, int(tf[a, o]))
            tables.append((a, o, dom, q, ety))
    if fragile:
        from .keras_std import note

        note(ctx, f"{layer.name}: {fragile} table entries lie within 2^-12 of a rounding boundary of the table "
                  "output quantiser; their float32 values may depend on the order of Keras's float sums")
    b = ctx.builder
    bt = smallest_type(bias, max(int(np.max(tf)), 0)) if np.any(bias) else None
    node = b.lookup_dense(b.unique(layer.name), x.node, n_out, tables, bias if bt else None, bt)
    t = Tensor(node, int(np.prod(shape[:-1], dtype=int)) * n_out, None, shape[:-1] + (n_out,) if len(shape) > 1 else None)
    _finish(ctx, layer, t)


# ---------------------------------------------------------------------------------------------------------
# Pooling

@handles("hgq2", "QGlobalAveragePooling1D", "QGlobalMaxPooling1D", tensors=True)
@handles("qkeras_hgq2", "QGlobalAveragePooling1D", "QGlobalMaxPooling1D", tensors=True)
def qglobal_pooling_1d(ctx: Context, layer: KLayer) -> None:
    """hgq/layers/pooling.py QBasePooling.call: iq, then Keras's GlobalAveragePooling1D /
    GlobalMaxPooling1D (the mean or maximum over the steps axis), then oq. The mean of N values is an
    exact shift only when N is a power of two (the compiler refuses other lengths)."""
    x, zero = _input(ctx, layer)
    x = materialize_zeros(ctx, x, zero, f"{layer.name}_iq_zero")
    ctx.tensors[layer.name] = _global_pool(ctx, layer, x)
    t = ctx.tensors[layer.name]
    cfg = layer.config
    if cfg.get("enable_oq"):
        t, z = act_quantize(ctx, layer, _spec(ctx, layer, "oq", cfg.get("oq_conf")), t, f"{layer.name}_oq")
        t = materialize_zeros(ctx, t, z, f"{layer.name}_oq_zero")
    ctx.tensors[layer.name] = t


def _global_pool(ctx: Context, layer: KLayer, x: Tensor) -> Tensor:
    from .keras_std import global_pool_1d

    return global_pool_1d(ctx, layer, x)
