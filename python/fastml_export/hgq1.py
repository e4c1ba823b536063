"""Converters for HGQ v1 proxy models (family "hgq1").

An HGQ v1 model is exported for deployment as a "proxy" model (`HGQ.proxy.to_proxy_model`, calad0i/HGQ
`src/HGQ/proxy/convert.py`): plain Keras layers whose weights are already quantised (stored as float),
each followed by a `FixedPointQuantizer` (`src/HGQ/proxy/fixed_point_quantizer.py`) that stores, per
element or broadcast, `keep_negative`, `bits` and `integers` (int8 weights) plus the rounding mode `RND`
and the overflow mode `SAT` in its config. Its call is

    float_bits = bits - integers;  scale = 2**float_bits
    quantized  = SAT(RND(x * scale), keep_negative, bits)
    return quantized / scale * (bits != 0)

i.e. `ap_fixed<bits, integers>` (signed when keep_negative; `integers` counts the sign bit as ap_fixed
does) with `ap_fixed` rounding modes (TRN floor, RND floor(x+0.5), RND_CONV tf.round, TRN_ZERO, RND_ZERO,
RND_MIN_INF, RND_INF) and overflow modes (WRAP floormod, SAT clip, SAT_ZERO), and an element with
`bits == 0` is always 0. Each quantiser becomes a `Quantize` node with per-element types; zero-bit
elements are zeroed by a `BatchNorm` with scale 0 after it. HGQ's `SAT_SYM` clamps an in-range `-max-1`
as well (unlike ap_fixed) and `WRAP_SM` has no model.json equivalent: both are refused.

Dense layers of a proxy model hold exactly representable float kernels and biases; they are stored
exactly (the narrowest type holding every value). Activation('relu') / ReLU become ReLU.
"""

from __future__ import annotations

import numpy as np

from .builder import ExportError, FixedType
from .graph import KLayer
from .keras_std import (apply_activation, check_plain_relu, emit_batchnorm, emit_quantize, emit_relu, input_layer,
                        input_quantizer, flatten, dropout, vector_input, weight)
from .ptq import exact_type
from .registry import Context, Tensor, handles

HGQ_RND = {"TRN", "RND", "RND_CONV", "TRN_ZERO", "RND_ZERO", "RND_MIN_INF", "RND_INF"}
HGQ_SAT = {"WRAP", "SAT", "SAT_ZERO"}


def fpq_types(layer: KLayer, n: int) -> tuple[list[FixedType], np.ndarray]:
    """(types, zero mask) of a FixedPointQuantizer for n elements."""
    what = f"FixedPointQuantizer {layer.name!r}"
    cfg = layer.config
    rnd = str(cfg.get("RND", "TRN")).upper()
    sat = str(cfg.get("SAT", "WRAP")).upper()
    if rnd not in HGQ_RND:
        raise ExportError(f"{what}: rounding mode {rnd} is not supported (supported: {', '.join(sorted(HGQ_RND))})")
    if sat not in HGQ_SAT:
        extra = (" (HGQ's SAT_SYM clamps an in-range -max-1 too, unlike ap_fixed)" if sat == "SAT_SYM" else "")
        raise ExportError(f"{what}: overflow mode {sat} is not supported{extra}; supported: {', '.join(sorted(HGQ_SAT))}")
    arrs = []
    for key in ("keep_negative", "bits", "integers"):
        a = np.asarray(weight(layer, key)).astype(np.int64)
        flat = a.reshape(-1)
        if flat.size == 1:
            flat = np.repeat(flat, n)
        if flat.size != n:
            raise ExportError(f"{what}: {key} has {a.size} elements (shape {list(a.shape)}) for {n} values")
        arrs.append(flat)
    k, b, i = arrs
    zero = b == 0
    if np.any(b < 0) or np.any(b > 64):
        raise ExportError(f"{what}: bits outside 0..64")
    if np.any((k != 0) & (k != 1)):
        raise ExportError(f"{what}: keep_negative must be 0 or 1")
    types = []
    for kk, bb, ii in zip(k.tolist(), b.tolist(), i.tolist()):
        if bb == 0:
            types.append(FixedType(False, 1, 0, "TRN", "WRAP"))  # placeholder, zeroed afterwards
        else:
            types.append(FixedType(bool(kk), bb, ii, rnd, sat))
    return types, zero


@input_quantizer("hgq1", "FixedPointQuantizer")
def _fpq_as_input(ctx: Context, layer: KLayer, n: int):
    types, zero = fpq_types(layer, n)
    return None if zero.any() else types


@handles("hgq1", "FixedPointQuantizer")
def fixed_point_quantizer(ctx: Context, layer: KLayer) -> None:
    src = vector_input(ctx, layer)
    types, zero = fpq_types(layer, src.n)
    out = emit_quantize(ctx, layer.name, src, types)
    if zero.any():
        scale = np.where(zero, 0.0, 1.0)
        z = emit_batchnorm(ctx, f"{layer.name}_zero", out, scale, np.zeros(src.n),
                           FixedType(False, 1, 1), FixedType(False, 1, 1))
        out = Tensor(z.node, src.n, [FixedType(False, 1, 0) if zz else FixedType(t.signed, t.width, t.int_bits)
                                     for t, zz in zip(types, zero.tolist())])
    ctx.tensors[layer.name] = out


@handles("hgq1", "Dense")
def proxy_dense(ctx: Context, layer: KLayer) -> None:
    name = layer.name
    src = vector_input(ctx, layer)
    kernel = weight(layer, "kernel")
    if kernel.ndim != 2 or kernel.shape[0] != src.n:
        raise ExportError(f"Dense {name!r}: kernel shape {list(kernel.shape)} does not match its input of {src.n} values")
    try:
        kt = exact_type(kernel)
        bias = bt = None
        if layer.config.get("use_bias", True):
            bias = weight(layer, "bias")
            bt = exact_type(bias)
    except ExportError as e:
        raise ExportError(f"Dense {name!r} of an HGQ proxy model: {e}") from None
    b = ctx.builder
    node = b.dense(b.unique(name), src.node, kernel, kt, bias, bt)
    out = Tensor(node, kernel.shape[1], None)
    act = layer.config.get("activation", "linear")
    res = apply_activation(ctx, layer, out, act, quantised=True)
    if res is not None:
        ctx.tensors[name] = res


@handles("hgq1", "Activation")
def proxy_activation(ctx: Context, layer: KLayer) -> None:
    src = vector_input(ctx, layer)
    res = apply_activation(ctx, layer, src, layer.config.get("activation"), quantised=True, act_name=layer.name)
    if res is not None:
        ctx.tensors[layer.name] = res


@handles("hgq1", "ReLU")
def proxy_relu(ctx: Context, layer: KLayer) -> None:
    check_plain_relu(layer)
    ctx.tensors[layer.name] = emit_relu(ctx, layer.name, vector_input(ctx, layer))


handles("hgq1", "InputLayer")(input_layer)
handles("hgq1", "Dropout")(dropout)
handles("hgq1", "Flatten", "Reshape")(flatten)

