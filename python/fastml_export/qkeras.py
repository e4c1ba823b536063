"""Converters for QKeras layers (family "qkeras": QKeras for Keras 2, and the qkeras-v3 package for Keras 3).

Semantics follow google/qkeras `qkeras/quantizers.py` and `qkeras/qlayers.py` (QKeras 0.9.0, the same code
as fastmachinelearning/qkerasV3 on the paths used here); docs/importers.md cites the lines.

* `quantized_bits(bits, integer, symmetric, keep_negative, alpha)` on weights: QKeras computes, in
  float32, `m = 2**(bits - keep_negative)`, `p = x * m / 2**integer`,
  `xq = 2**integer * clip(round(p), keep_negative * (-m + symmetric), m - 1) / m`, then `alpha * xq`, with
  `round = tf.round` (half to even). `integer` does not count the sign bit, so with keep_negative this
  is `fixed<bits, integer + 1>` (RND_CONV, SAT) and without it `ufixed<bits, integer>`. The exporter
  re-runs exactly that float32 arithmetic (straight-through-estimator expression included) and stores the
  resulting weights exactly. `alpha` None or 1 is no scaling; a number or per-channel list multiplies
  in float32 (the products are stored exactly); 'auto' / 'auto_po2' compute per-channel scales from the
  weights as QKeras does at call time.
* `quantized_relu(bits, integer)`: `2**integer * clip(round(x * 2**(bits-integer)) / 2**bits, 0, 1 - 2**-bits)`
  = `ReLU` then `Quantize ufixed<bits, integer, RND_CONV, SAT>` (exactly the same function).
* `quantized_bits` on activations (QActivation): `Quantize fixed<bits, integer+1, RND_CONV, SAT>`.
"""

from __future__ import annotations

import ast
import math

import numpy as np

from .builder import ExportError, FixedType
from .graph import KLayer
from .keras_std import (apply_result, drop_final_softmax, emit_batchnorm, emit_quantize, emit_relu,
                        hls4ml_semantics, hls_dense, input_quantizer, note, param_type, vector_input, weight)
from .ptq import exact_type, hls4ml_quantize
from .registry import Context, Tensor, handles

# positional parameters, in order, as in qkeras/quantizers.py (0.9.0; later versions append more)
SIGNATURES = {
    "quantized_bits": ["bits", "integer", "symmetric", "keep_negative", "alpha", "use_stochastic_rounding",
                       "scale_axis", "qnoise_factor", "var_name", "use_ste", "use_variables",
                       "elements_per_scale", "min_po2_exponent", "max_po2_exponent", "post_training_scale"],
    "quantized_relu": ["bits", "integer", "use_sigmoid", "negative_slope", "use_stochastic_rounding",
                       "relu_upper_bound", "is_quantized_clip", "qnoise_factor", "var_name", "use_ste",
                       "use_variables"],
}
DEFAULTS = {
    "quantized_bits": {"bits": 8, "integer": 0, "symmetric": 0, "keep_negative": True, "alpha": None,
                       "use_stochastic_rounding": False, "scale_axis": None, "qnoise_factor": 1.0},
    "quantized_relu": {"bits": 8, "integer": 0, "use_sigmoid": 0, "negative_slope": 0.0,
                       "use_stochastic_rounding": False, "relu_upper_bound": None, "is_quantized_clip": True,
                       "qnoise_factor": 1.0},
}
KNOWN_UNSUPPORTED = {
    "quantized_linear", "quantized_po2", "quantized_relu_po2", "quantized_tanh", "quantized_ulaw",
    "quantized_sigmoid", "quantized_hard_sigmoid", "binary", "stochastic_binary", "ternary",
    "stochastic_ternary", "bernoulli", "quantized_softsign",
}
F32 = np.float32


def parse_quantizer(spec, what: str):
    """A serialized quantizer -> (class_name, config) or None. Accepts Keras dicts
    ({"class_name": ..., "config": ...}), QKeras strings ("quantized_bits(6,0,alpha=1)") and plain
    activation names ("relu", "linear")."""
    if spec is None:
        return None
    if isinstance(spec, dict):
        cls = spec.get("class_name")
        cfg = spec.get("config") or {}
        if not isinstance(cls, str):
            raise ExportError(f"{what}: unreadable quantizer {spec!r}")
        cls = cls.split(">")[-1]
        if cls == "function" and isinstance(cfg, str):  # Keras 3 serialized builtin activation
            return cfg, {}
        return cls, dict(cfg)
    if not isinstance(spec, str):
        raise ExportError(f"{what}: unreadable quantizer {spec!r}")
    text = spec.strip()
    if "(" not in text:
        return text, {}
    try:
        tree = ast.parse(text, mode="eval").body
        if not isinstance(tree, ast.Call) or not isinstance(tree.func, ast.Name):
            raise ValueError
        name = tree.func.id
        args = [ast.literal_eval(a) for a in tree.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in tree.keywords}
    except (ValueError, SyntaxError):
        raise ExportError(f"{what}: cannot read quantizer {text!r}") from None
    sig = SIGNATURES.get(name)
    if sig is None:
        if args:
            raise ExportError(f"{what}: quantizer {name} is not supported")
        return name, kwargs
    if len(args) > len(sig):
        raise ExportError(f"{what}: too many arguments in {text!r}")
    cfg = dict(zip(sig, args))
    cfg.update(kwargs)
    return name, cfg


def _cfg(name: str, cfg: dict, what: str) -> dict:
    out = dict(DEFAULTS.get(name, {}))
    out.update({k: v for k, v in cfg.items() if not k.startswith("__")})
    if float(out.get("qnoise_factor", 1.0) if out.get("qnoise_factor") is not None else 1.0) != 1.0:
        raise ExportError(f"{what}: {name} with qnoise_factor={out['qnoise_factor']} mixes float and quantised "
                          "values; only qnoise_factor=1 (a real quantiser) is supported")
    return out


def _int(v, key, what):
    if isinstance(v, bool) or not float(v).is_integer():
        raise ExportError(f"{what}: {key}={v!r} must be an integer")
    return int(v)


def _is_one(alpha) -> bool:
    if alpha is None:
        return True
    if isinstance(alpha, (int, float)) and not isinstance(alpha, bool):
        return float(alpha) == 1.0
    return False


# ----------------------------------------------------------------------------------------------------
# quantized_bits on weights (exact float32 re-computation)
# ----------------------------------------------------------------------------------------------------

def _round_log2_po2(s: np.ndarray, what: str) -> np.ndarray:
    """QKeras: K.pow(2.0, tf.math.round(K.log(s + K.epsilon()) / np.log(2.0))), float32.

    The log is the one non-IEEE step; the result only matters through the rounding, so values within
    1e-4 of a rounding boundary are refused rather than guessed."""
    s32 = (np.asarray(s, dtype=F32) + F32(1e-7)).astype(F32)
    if np.any(s32 <= 0):
        raise ExportError(f"{what}: auto_po2 scale is not positive")
    l = np.log(s32.astype(np.float64)) / math.log(2.0)
    frac = l - np.floor(l)
    if np.any(np.abs(frac - 0.5) < 1e-4):
        raise ExportError(f"{what}: an auto_po2 scale lies on a rounding boundary of log2 "
                          "(TensorFlow's float32 log decides it); bit-exactness cannot be guaranteed")
    e = np.rint(l)  # half to even, as tf.math.round
    return np.ldexp(np.ones_like(e), e.astype(np.int64)).astype(F32)


def _auto_scale(x: np.ndarray, cfg: dict, bits: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(scale, z) of quantized_bits with alpha 'auto'/'auto_po2' (symmetric forced), on x = w / 2**integer.

    QKeras 0.9.0 (`quantized_bits.__call__`, string-alpha branch): scale = max|x| * 2 / levels; for
    auto_po2 round it to a power of two, then 5 least-squares refinements (`_get_scale`), z being the
    one computed *before* the last refinement. Newer QKeras / qkeras-v3 (configs carrying
    `post_training_scale`) recompute z with the final scale."""
    alpha = cfg["alpha"]
    for k in ("elements_per_scale", "min_po2_exponent", "max_po2_exponent", "post_training_scale"):
        if cfg.get(k) is not None:
            raise ExportError(f"{what}: quantized_bits {k}={cfg[k]!r} is not supported")
    newer = "post_training_scale" in cfg
    nd = x.ndim
    scale_axis = cfg.get("scale_axis")
    if nd > 1:
        if scale_axis is None:
            axis = tuple(range(nd - 1))
        else:
            axis = tuple(a for a in range(nd) if a != int(scale_axis))
    else:
        axis = (0,)
    levels = (2 ** (bits - 1) - 1) * 2
    half = F32(levels / 2)
    scale = (np.max(np.abs(x), axis=axis, keepdims=True) * F32(2)).astype(F32) / F32(levels)
    scale = scale.astype(F32)

    def quant(s):
        v = np.floor((np.abs(x) / s).astype(F32) + F32(0.5)).astype(F32)
        return (np.sign(x) * np.where(v < half, v, half)).astype(F32)

    if alpha == "auto_po2":
        scale = _round_log2_po2(scale, what)
        z = None
        for _ in range(5):
            z = quant(scale)
            if nd > 1:
                qx = np.mean(x.astype(np.float64) * z, axis=axis, keepdims=True)
                qq = np.mean(z.astype(np.float64) * z, axis=axis, keepdims=True)
            else:  # 1-D: no averaging (per-element scales), as QKeras
                qx = x.astype(np.float64) * z
                qq = z.astype(np.float64) * z
            ratio = (qx.astype(F32) / (qq.astype(F32) + F32(1e-7))).astype(F32)
            scale = _round_log2_po2(ratio, what)
        if newer:
            z = quant(scale)
    elif alpha == "auto":
        z = quant(scale)
    else:
        raise ExportError(f"{what}: invalid alpha {alpha!r}")
    return np.broadcast_to(scale, x.shape).astype(F32), z


def quantized_bits_weights(w: np.ndarray, spec, what: str) -> tuple[np.ndarray, list[FixedType]]:
    """The weights QDense actually uses: `kernel_quantizer(kernel)`, exactly, and their types."""
    name, cfg = spec
    if name != "quantized_bits":
        if name in KNOWN_UNSUPPORTED:
            raise ExportError(f"{what}: weight quantizer {name} is not supported (supported: quantized_bits)")
        raise ExportError(f"{what}: unknown weight quantizer {name!r}")
    c = _cfg(name, cfg, what)
    bits = _int(c["bits"], "bits", what)
    integer = _int(c["integer"], "integer", what)
    keep_negative = bool(c["keep_negative"])
    alpha = c["alpha"]
    if isinstance(alpha, str) and alpha in ("1", "1.0", "None"):
        alpha = None if alpha == "None" else 1.0
    symmetric = 1 if (isinstance(alpha, str) or c["symmetric"]) else 0
    ub = bits - int(keep_negative)
    if ub < 0 or bits < 1:
        raise ExportError(f"{what}: quantized_bits with bits={bits}, keep_negative={keep_negative} is invalid")
    if ub > 23:
        raise ExportError(f"{what}: quantized_bits with {ub} magnitude bits exceeds float32's 24-bit "
                          "significand; QKeras's own arithmetic is not exact there")
    x = np.asarray(w, dtype=F32)
    m = F32(2.0 ** ub)
    m_i = F32(2.0 ** integer)
    per_channel_types = per_element_types = None
    if isinstance(alpha, str):
        if alpha not in ("auto", "auto_po2"):
            raise ExportError(f"{what}: quantized_bits alpha={alpha!r} is not supported")
        if not keep_negative:
            raise ExportError(f"{what}: alpha={alpha!r} with keep_negative=False is not supported")
        xs = (x / m_i).astype(F32)
        scale, z = _auto_scale(xs, c, bits, what)
        s2 = (scale * m).astype(F32)
        xq = ((m_i * z).astype(F32) / m).astype(F32)
        xq = (s2 * xq).astype(F32)
        x_back = (m_i * xs).astype(F32)
        if alpha == "auto_po2":  # value = z * scale * 2**integer, |z| <= 2**(bits-1) - 1: per-element types
            per_element_types = []
            for s in scale.reshape(-1).tolist():
                e = int(round(math.log2(s * float(m_i))))
                per_element_types.append(FixedType(True, bits, bits + e))
        out = (x_back + (xq - x_back).astype(F32)).astype(F32)  # STE forward value
    else:
        if isinstance(alpha, (list, tuple)):
            scale = np.asarray(alpha, dtype=F32)
            if scale.ndim != 1 or scale.size not in (1, x.shape[-1]):
                raise ExportError(f"{what}: alpha of shape {scale.shape} does not match {x.shape[-1]} channels")
        elif alpha is None:
            scale = None
        elif isinstance(alpha, (int, float)) and not isinstance(alpha, bool):
            scale = None if float(alpha) == 1.0 else F32(alpha)
        else:
            raise ExportError(f"{what}: quantized_bits alpha={alpha!r} is not supported")
        if ub > 0:
            p = ((x * m).astype(F32) / m_i).astype(F32)
            r = np.rint(p)  # tf.round: half to even
            lo = F32(int(keep_negative) * (-float(m) + symmetric))
            c_ = np.clip(r, lo, m - F32(1)).astype(F32)
            xq = ((m_i * c_).astype(F32) / m).astype(F32)
        else:  # 1 bit: sign, 0 -> +1
            sg = np.sign(x).astype(F32)
            xq = (sg + (F32(1) - np.abs(sg))).astype(F32)
            if not keep_negative:
                xq = ((xq + F32(1)) / F32(2)).astype(F32)
        if scale is not None:
            xq = (scale * xq).astype(F32)
        out = (x + (xq - x).astype(F32)).astype(F32)  # STE forward value
        if scale is None and ub > 0:
            t = FixedType(keep_negative, bits, bits - (ub - integer))
            per_channel_types = [t] * (x.shape[-1] if x.ndim else 1)
    values = out.astype(np.float64)
    if per_channel_types is not None:
        n_ch = x.shape[-1] if x.ndim else 1
        per_element_types = [per_channel_types[k % n_ch] if len(per_channel_types) == n_ch else per_channel_types[0]
                             for k in range(values.size)]
    if per_element_types is not None:
        if _all_exact(values, per_element_types):
            return values, per_element_types
    t = exact_type(values)  # the STE expression or a scale moved values off the nominal grid
    return values, [t] * values.size


def _all_exact(values: np.ndarray, types: list[FixedType]) -> bool:
    for v, t in zip(values.reshape(-1).tolist(), types):
        m = v * 2.0 ** t.frac
        if m != math.floor(m) or not t.min_mant() <= int(m) <= t.max_mant():
            return False
    return True


# ----------------------------------------------------------------------------------------------------
# activations
# ----------------------------------------------------------------------------------------------------

def quantized_relu_type(cfg: dict, what: str) -> FixedType:
    c = _cfg("quantized_relu", cfg, what)
    if c.get("use_sigmoid"):
        raise ExportError(f"{what}: quantized_relu with use_sigmoid is not supported")
    if float(c.get("negative_slope") or 0.0) != 0.0:
        raise ExportError(f"{what}: quantized_relu with negative_slope={c['negative_slope']} is not supported")
    bits = _int(c["bits"], "bits", what)
    integer = _int(c["integer"], "integer", what)
    if not 1 <= bits <= 24:
        raise ExportError(f"{what}: quantized_relu bits={bits} outside 1..24 (QKeras computes in float32)")
    t = FixedType(False, bits, integer, "RND_CONV", "SAT")
    rub = c.get("relu_upper_bound")
    if rub is not None and c.get("is_quantized_clip") is False:
        top = (2 ** bits - 1) * 2.0 ** (integer - bits)
        if float(rub) < top:
            raise ExportError(f"{what}: quantized_relu relu_upper_bound={rub} below the quantiser's maximum "
                              f"{top} is not supported")
    return t


def quantized_bits_activation_type(cfg: dict, what: str) -> tuple[FixedType, float | None]:
    """(type, power-of-two scale or None) of quantized_bits used on activations."""
    c = _cfg("quantized_bits", cfg, what)
    bits = _int(c["bits"], "bits", what)
    integer = _int(c["integer"], "integer", what)
    keep_negative = bool(c["keep_negative"])
    alpha = c["alpha"]
    if isinstance(alpha, str):
        raise ExportError(f"{what}: quantized_bits alpha={alpha!r} on activations computes its scale from each "
                          "batch at run time; not supported")
    if c["symmetric"]:
        raise ExportError(f"{what}: quantized_bits symmetric=1 on activations (clamping to -max instead of "
                          "-max-1 after rounding) is not supported")
    ub = bits - int(keep_negative)
    if ub <= 0:
        raise ExportError(f"{what}: 1-bit (binary) quantized_bits on activations is not supported")
    if ub > 23:
        raise ExportError(f"{what}: quantized_bits with {ub} magnitude bits exceeds float32's significand")
    scale = None
    if not _is_one(alpha):
        a = float(alpha) if isinstance(alpha, (int, float)) else None
        if a is None or a <= 0 or not math.log2(a).is_integer():
            raise ExportError(f"{what}: quantized_bits alpha={alpha!r} on activations is supported only as a "
                              "power of two")
        scale = a
    return FixedType(keep_negative, bits, bits - (ub - integer), "RND_CONV", "SAT"), scale


def qkeras_activation(ctx: Context, layer: KLayer, src: Tensor, spec, relu_name: str, q_name: str) -> Tensor | None:
    """Apply a QKeras activation (quantizer or plain name). Returns None for a dropped final softmax."""
    what = f"layer {layer.name!r}"
    parsed = parse_quantizer(spec, what)
    if parsed is None:
        return src
    name, cfg = parsed
    if name in ("linear", "None", "none"):
        return src
    if name == "relu":
        return emit_relu(ctx, relu_name, src)
    if name == "softmax":
        drop_final_softmax(ctx, layer, src, "a")
        return None
    if name == "quantized_relu":
        t = quantized_relu_type(cfg, what)
        out = emit_relu(ctx, relu_name, src)
        return emit_quantize(ctx, q_name, out, [t] * src.n)
    if name == "quantized_bits":
        t, scale = quantized_bits_activation_type(cfg, what)
        out = emit_quantize(ctx, q_name, src, [t] * src.n)
        if scale is not None:
            out = emit_batchnorm(ctx, f"{q_name}_alpha", out, np.full(src.n, scale), np.zeros(src.n))
        return out
    if name in KNOWN_UNSUPPORTED:
        raise ExportError(f"{what}: QKeras activation {name} is not supported (supported: quantized_relu, "
                          "quantized_bits, relu, linear, final softmax)")
    raise ExportError(f"{what}: activation {name!r} is not supported")


@input_quantizer("qkeras", "QActivation")
def _qactivation_as_input(ctx: Context, layer: KLayer, n: int):
    try:
        parsed = parse_quantizer(layer.config.get("activation"), f"layer {layer.name!r}")
        if parsed and parsed[0] == "quantized_bits":
            t, scale = quantized_bits_activation_type(parsed[1], f"layer {layer.name!r}")
            if scale is None:
                return [t] * n
    except ExportError:
        return None  # the layer's own converter reports it
    return None


# ----------------------------------------------------------------------------------------------------
# layers
# ----------------------------------------------------------------------------------------------------

@handles("qkeras", "QActivation")
def qactivation(ctx: Context, layer: KLayer) -> None:
    src = vector_input(ctx, layer)
    out = qkeras_activation(ctx, layer, src, layer.config.get("activation"), layer.name, f"{layer.name}_q")
    if out is None:
        return
    ctx.tensors[layer.name] = apply_result(ctx, layer.name, "QActivation", out, quantised=True)


@handles("qkeras", "QDense")
def qdense(ctx: Context, layer: KLayer) -> None:
    name = layer.name
    src = vector_input(ctx, layer)
    kernel = weight(layer, "kernel")
    if kernel.ndim != 2 or kernel.shape[0] != src.n:
        raise ExportError(f"QDense {name!r}: kernel shape {list(kernel.shape)} does not match its input of "
                          f"{src.n} values")
    kspec = parse_quantizer(layer.config.get("kernel_quantizer"), f"QDense {name!r} kernel_quantizer")
    if kspec is None:
        wt = param_type(ctx, name, "QDense", "weight")
        kv, ktypes = hls4ml_quantize(kernel, wt), wt
        note(ctx, f"{name}: QDense without kernel_quantizer: float kernel quantised to {wt.string()}")
    else:
        kv, ktypes = quantized_bits_weights(kernel, kspec, f"QDense {name!r} kernel")
    bv = btypes = None
    if layer.config.get("use_bias", True):
        bias = weight(layer, "bias")
        bspec = parse_quantizer(layer.config.get("bias_quantizer"), f"QDense {name!r} bias_quantizer")
        if bspec is None:
            bt = param_type(ctx, name, "QDense", "bias")
            bv, btypes = hls4ml_quantize(bias, bt), bt
            note(ctx, f"{name}: QDense without bias_quantizer: float bias quantised to {bt.string()}")
        else:
            bv, btypes = quantized_bits_weights(bias, bspec, f"QDense {name!r} bias")
    # exact sum; accumulator/result types only from explicit overrides, or from the whole Precision under
    # hls4ml semantics (then also hls4ml's per-product rounding)
    out = hls_dense(ctx, layer, src, kv, ktypes, bv, btypes, "QDense", quantised=not hls4ml_semantics(ctx))
    act = layer.config.get("activation")
    res = qkeras_activation(ctx, layer, out, act, f"{name}_relu", f"{name}_relu_q")
    if res is None:
        return
    parsed = parse_quantizer(act, name)
    if parsed and parsed[0] not in ("linear", "None", "none"):
        res = apply_result(ctx, f"{name}_{parsed[0]}", "Activation", res, quantised=True)
    ctx.tensors[name] = res
