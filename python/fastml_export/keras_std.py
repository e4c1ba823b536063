"""Converters for plain Keras layers (family "keras"), and helpers the other converters share.

Float layers have no quantisers, so their types come from a post-training `Precision` (ptq.py), with
hls4ml's rules (io_parallel, Latency strategy):

* Dense: kernel and bias converted to the `weight` / `bias` types as hls4ml does (decimal printing, then
  `ap_fixed` conversion with the type's modes: `ptq.hls4ml_quantize`); the bias is cast to `accum`; the
  exact sum is quantised to `accum`, then to `result` (hls4ml `nnet_dense_latency.h`: `acc` is an `accum_t`
  array, `res[i] = cast<..., res_T>(acc[i])`); every product is rounded to `accum` first, as hls4ml's
  `mult[]` array of `accum_t` does (`Precision.hls4ml_products`, on by default; off, only the exact sum
  is rounded).
* relu: `ReLU` then quantise to the activation's `result` type (hls4ml `nnet_activation.h`: `res[i] = x`
  if `x > 0` else 0, assigned to `res_T`). The activation of a Dense layer is hls4ml's separate layer
  `<dense>_relu` for config lookups.
* BatchNormalization: `scale = gamma / sqrt(var + eps)`, `shift = beta - scale * mean` in float32 (hls4ml
  `hls4ml/model/layers.py`, `BatchNormalization.initialize`), quantised to the `scale` / `bias` types;
  then `x * scale + shift` exactly, quantised to `result` (hls4ml `nnet_batchnorm.h`). Float BN
  parameters can only be represented after this quantisation: model.json holds exact values.
* Dropout: dropped. Flatten / Reshape: identity on vectors only. softmax: dropped at the model output
  (the hardware outputs logits; softmax is monotonic, argmax is unchanged); anywhere else an error.

In quantised models (families "qkeras", "hgq1") a Precision only supplies the input type and explicit
per-layer overrides (LayerName/LayerType entries), never the model default, so that the exported
model computes exactly what the quantised framework computes.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .builder import ExportError, FixedType
from .graph import KLayer
from .ptq import AUTO, Precision, all_fit, as_precision, hls4ml_quantize, quantize_values, type_str
from .registry import Context, Tensor, handles

# ----------------------------------------------------------------------------------------------------
# shared helpers
# ----------------------------------------------------------------------------------------------------

FLOAT_FAMILIES = {"keras"}


def note(ctx: Context, msg: str) -> None:
    notes = ctx.model.extra.setdefault("notes", [])
    if msg not in notes:
        notes.append(msg)


def precision_of(ctx: Context) -> Precision:
    """The Precision in force: the user's, or hls4ml's default fixed<16,6> (with a note)."""
    p = as_precision(ctx.precision)
    if p is not None:
        ctx.precision = p
        return p
    p = ctx.model.extra.get("_default_precision")
    if p is None:
        p = Precision()
        ctx.model.extra["_default_precision"] = p
        if any(l.family in FLOAT_FAMILIES and l.weights for l in ctx.model.layers):
            note(ctx, "no precision given: float layers use hls4ml's default fixed<16,6> "
                      "(set types with --precision or --hls4ml-config)")
    return p


def user_precision(ctx: Context) -> Precision | None:
    p = as_precision(ctx.precision)
    ctx.precision = p
    return p


def consumers(ctx: Context, layer: KLayer) -> list[KLayer]:
    return [l for l in ctx.model.layers if layer.name in l.inbound]


def is_model_output(ctx: Context, layer: KLayer) -> bool:
    outputs = ctx.model.extra.get("outputs") or [ctx.model.layers[-1].name]
    return layer.name in outputs and not consumers(ctx, layer)


def nonneg_types(types: list[FixedType] | None) -> list[FixedType] | None:
    """Types of max(x, 0) for x of `types`: the non-negative part of a signed fixed<W,I> is ufixed<W-1,I-1>."""
    if types is None:
        return None
    out = []
    for t in types:
        if t.signed and t.width >= 2:
            out.append(FixedType(False, t.width - 1, t.int_bits - 1))
        else:
            out.append(FixedType(t.signed, t.width, t.int_bits))
    return out


def grid(t: FixedType) -> FixedType:
    """The type without its rounding/overflow modes (for tensors)."""
    return FixedType(t.signed, t.width, t.int_bits)


def emit_quantize(ctx: Context, name: str, src: Tensor, types: list[FixedType]) -> Tensor:
    """Quantise `src` to `types` unless every value of `src` already lies in them."""
    if len(types) != src.n:
        raise ExportError(f"{name}: {len(types)} types for {src.n} values")
    if all_fit(src.types, types):
        return Tensor(src.node, src.n, list(src.types), src.shape)
    node = ctx.builder.quantize(ctx.builder.unique(name), src.node, types)
    return Tensor(node, src.n, list(types), src.shape)


def emit_relu(ctx: Context, name: str, src: Tensor) -> Tensor:
    node = ctx.builder.relu(ctx.builder.unique(name), src.node)
    return Tensor(node, src.n, nonneg_types(src.types), src.shape)


def emit_batchnorm(ctx: Context, name: str, src: Tensor, scale: np.ndarray, shift: np.ndarray,
                   stype=None, ttype=None) -> Tensor:
    from .ptq import exact_type

    stype = stype or exact_type(scale)
    ttype = ttype or exact_type(shift)
    node = ctx.builder.batchnorm(ctx.builder.unique(name), src.node, scale, stype, shift, ttype)
    return Tensor(node, src.n, None)


def result_type(ctx: Context, layer_name: str, class_name: str, var: str, quantised: bool) -> FixedType | None:
    """The type a layer's output is quantised to, or None to keep it exact.

    Float layers: the Precision's lookup (model default included; 'auto' = exact). Layers of quantised
    models: only an explicit LayerName/LayerType override of a user-given Precision."""
    if quantised:
        p = user_precision(ctx)
        if p is None:
            return None
        t = p.lookup(layer_name, class_name, var, explicit_only=True)
        return t if isinstance(t, FixedType) else None
    p = precision_of(ctx)
    t = p.lookup(layer_name, class_name, var)
    if t == AUTO:
        note(ctx, f"{layer_name}: {var} precision 'auto' is kept exact (no quantisation)")
        return None
    return t if isinstance(t, FixedType) else p.get(layer_name, class_name, var)


def param_type(ctx: Context, layer_name: str, class_name: str, var: str) -> FixedType:
    """Type for a float parameter (weight, bias, scale); 'auto' falls back to the model default."""
    p = precision_of(ctx)
    t = p.lookup(layer_name, class_name, var)
    if not isinstance(t, FixedType):
        t = p.get(layer_name, class_name, var)
        note(ctx, f"{layer_name}: {var} precision not given or 'auto': using {type_str(t)}")
    return t


def apply_result(ctx: Context, layer_name: str, class_name: str, src: Tensor, quantised: bool,
                 var: str = "result", suffix: str = "_q") -> Tensor:
    t = result_type(ctx, layer_name, class_name, var, quantised)
    if t is None:
        return src
    return emit_quantize(ctx, f"{layer_name}{suffix}", src, [t] * src.n)


def vector_input(ctx: Context, layer: KLayer) -> Tensor:
    if len(layer.inbound) != 1:
        raise ExportError(f"layer {layer.name!r} ({layer.class_name}) has {len(layer.inbound)} inputs; "
                          "only single-input layers are supported")
    return ctx.input_of(layer)


def weight(layer: KLayer, *names: str, required: bool = True):
    for n in names:
        if n in layer.weights:
            return np.asarray(layer.weights[n])
    if required:
        have = ", ".join(layer.weights) or "none"
        raise ExportError(f"layer {layer.name!r} ({layer.class_name}): weight {names[0]!r} not found (has: {have})")
    return None


def drop_final_softmax(ctx: Context, layer: KLayer, src: Tensor, what: str) -> None:
    if not is_model_output(ctx, layer):
        raise ExportError(f"layer {layer.name!r}: {what} softmax is only supported as the model's last "
                          "operation (it is dropped: the hardware outputs logits)")
    note(ctx, f"{layer.name}: final softmax dropped; the design outputs the logits (argmax unchanged)")
    ctx.tensors[layer.name] = src


# ----------------------------------------------------------------------------------------------------
# input
# ----------------------------------------------------------------------------------------------------

# (family, class_name) -> fn(ctx, consumer_layer, n) -> list[FixedType] | None: the types with which
# a quantiser that directly follows the input quantises it. The Input node then quantises real inputs
# the same way, and the quantiser itself becomes a no-op.
INPUT_QUANTIZERS: dict[tuple[str, str], Callable] = {}


def input_quantizer(family: str, *class_names: str):
    def deco(fn):
        for c in class_names:
            INPUT_QUANTIZERS[(family, c)] = fn
        return fn

    return deco


def input_shape(ctx: Context, layer: KLayer) -> tuple:
    cfg = layer.config
    for key in ("batch_input_shape", "batch_shape"):
        if cfg.get(key) is not None:
            return tuple(cfg[key][1:])
    if ctx.model.input_shape is not None:
        return tuple(ctx.model.input_shape)
    raise ExportError(f"input layer {layer.name!r}: the input shape is unknown")


@handles("keras", "InputLayer", tensors=True)
@handles("qkeras", "InputLayer", tensors=True)
def input_layer(ctx: Context, layer: KLayer) -> None:
    """The design Input, of the Keras input's shape (a tensor of rank > 1 makes the file version 2).

    Its types: an explicit Precision entry for the input; else what the first quantiser that reads the
    input quantises it to (INPUT_QUANTIZERS), looking through layers that only rewire the elements
    without reordering them (Reshape, Flatten, Dropout...: the row-major order is kept, so the
    quantiser's per-element types, in its own input's row-major order, are the Input's); else the
    Precision's default, with a note."""
    shape = input_shape(ctx, layer)
    if not shape or any(d is None for d in shape):
        raise ExportError(f"input layer {layer.name!r} has shape {list(shape)}; every dimension (but the batch) must be known")
    shape = tuple(int(d) for d in shape)
    n = int(np.prod(shape))
    types = None
    p = user_precision(ctx)
    explicit = p.lookup(layer.name, "InputLayer", "result", explicit_only=True) if p else None
    if isinstance(explicit, FixedType):
        types = [explicit] * n
    else:
        cons = consumers(ctx, layer)
        while len(cons) == 1 and (cons[0].family, cons[0].class_name) in _ORDER_KEEPING and len(cons[0].inbound) == 1:
            cons = consumers(ctx, cons[0])
        if len(cons) == 1:
            fn = INPUT_QUANTIZERS.get((cons[0].family, cons[0].class_name))
            if fn is not None:
                types = fn(ctx, cons[0], n)
    if types is None:
        t = precision_of(ctx).get(layer.name, "InputLayer", "result")
        types = [t] * n
        if p is None:
            note(ctx, f"input {layer.name}: type {type_str(t)} (hls4ml's default; set it with --precision)")
    node = ctx.builder.input(layer.name, types, list(shape))
    ctx.tensors[layer.name] = Tensor(node, n, list(types), shape if len(shape) > 1 else None)


# Keras layers that pass their input's elements on in the same row-major order (see flatten/dropout below)
_ORDER_KEEPING = {("keras", c) for c in ("Reshape", "Flatten", "Dropout", "AlphaDropout", "GaussianDropout",
                                          "GaussianNoise", "SpatialDropout1D", "ActivityRegularization")}


# ----------------------------------------------------------------------------------------------------
# Dense (post-training quantised)
# ----------------------------------------------------------------------------------------------------

def hls4ml_semantics(ctx: Context) -> bool:
    """True when layers with their own quantisers follow hls4ml (accum/result types from the Precision,
    model default included) rather than their framework."""
    p = user_precision(ctx)
    return p is not None and p.semantics == "hls4ml"


def _as_types(types, n: int) -> list[FixedType]:
    if isinstance(types, FixedType):
        return [grid(types)] * n
    types = list(types)
    if len(types) != n:
        raise ExportError(f"{len(types)} types for {n} values")
    return [grid(t) for t in types]


def hls_dense(ctx: Context, layer: KLayer, src: Tensor, kq: np.ndarray, ktypes, bq: np.ndarray | None, btypes,
              class_name: str = "Dense", quantised: bool = False) -> Tensor:
    """A Dense layer as hls4ml's `dense_latency` computes it, from already-quantised weights `kq` (types
    `ktypes`) and bias `bq`: products (rounded to `accum` when the Precision's `hls4ml_products` is on and
    they have more fractional bits than `accum`), bias cast to `accum`, the sum kept in `accum`, then cast
    to `result`. `quantised`: the layer has its own quantisers (see `result_type`)."""
    name = layer.name
    n_in, n_out = kq.shape
    kts = _as_types(ktypes, kq.size)
    at = result_type(ctx, name, class_name, "accum", quantised)
    rt = result_type(ctx, name, class_name, "result", quantised)
    bts = _as_types(btypes, n_out) if bq is not None else None
    if bq is not None and at is not None:  # acc[i] = (accum_t) biases[i]
        bacc = quantize_values(bq, at)
        if not np.array_equal(bacc, bq):
            bq, bts = bacc, [grid(at)] * n_out
    b = ctx.builder
    rounded = False
    if at is not None and precision_of(ctx).hls4ml_products:
        wfrac = max(t.frac for t in kts)
        exact = (src.types is not None and at.overflow == "WRAP"
                 and all(t.frac + wfrac <= at.frac for t in src.types))
        if not exact:
            prods, groups = _rounded_products(ctx, name, src, kq, kts, at)
            summ = np.zeros((prods.n, n_out))
            for k, j in enumerate(groups):
                summ[k, j] = 1.0
            node = b.dense(b.unique(name), prods.node, summ, FixedType(False, 1, 1), bq, bts)
            rounded = True
    if not rounded:
        node = b.dense(b.unique(name), src.node, kq, kts, bq, bts)
    out = Tensor(node, n_out, None)
    if at is not None:
        out = emit_quantize(ctx, f"{name}_accum", out, [at] * n_out)
        if at.overflow != "WRAP":
            note(ctx, f"{name}: accumulator {type_str(at)} saturates once on the total; hls4ml saturates "
                      "after every addition (equal unless an intermediate sum overflows)")
    if rt is not None:
        out = emit_quantize(ctx, f"{name}_result" if at is not None else f"{name}_q", out, [rt] * n_out)
    return out


def ptq_dense(ctx: Context, layer: KLayer, src: Tensor, kernel: np.ndarray, bias: np.ndarray | None,
              class_name: str = "Dense") -> Tensor:
    """A Dense layer of a float model, the hls4ml way: weights and bias converted as hls4ml's writer and
    C++ compiler do (`ptq.hls4ml_quantize`), then `hls_dense`."""
    name = layer.name
    wt = param_type(ctx, name, class_name, "weight")
    kq = hls4ml_quantize(kernel, wt)
    bq = bt = None
    if bias is not None:
        bt = param_type(ctx, name, class_name, "bias")
        bq = hls4ml_quantize(bias, bt)
    return hls_dense(ctx, layer, src, kq, wt, bq, bt, class_name, quantised=False)


def _rounded_products(ctx: Context, name: str, src: Tensor, kq: np.ndarray, kts: list[FixedType],
                      at: FixedType):
    """x[i]*w[i][j] for every non-zero weight, each rounded to the accumulator type (hls4ml's `mult`):
    a 0/1 Dense fans the inputs out, a BatchNorm multiplies each copy by its weight, a Quantize rounds.
    Returns (tensor of products, output index of each product)."""
    n_in, n_out = kq.shape
    pairs = [(i, j) for j in range(n_out) for i in range(n_in) if kq[i, j] != 0]
    if not pairs:
        pairs = [(0, 0)]
    fan = np.zeros((n_in, len(pairs)))
    scale = np.zeros(len(pairs))
    stypes = []
    for k, (i, j) in enumerate(pairs):
        fan[i, k] = 1.0
        scale[k] = kq[i, j]
        stypes.append(kts[i * n_out + j])
    b = ctx.builder
    node = b.dense(b.unique(f"{name}_fanout"), src.node, fan, FixedType(False, 1, 1))
    t = Tensor(node, len(pairs), None)
    t = emit_batchnorm(ctx, f"{name}_mult", t, scale, np.zeros(len(pairs)), stypes, FixedType(False, 1, 1))
    t = emit_quantize(ctx, f"{name}_mult_q", t, [at] * len(pairs))
    return t, [j for (_, j) in pairs]


def apply_activation(ctx: Context, layer: KLayer, src: Tensor, activation, quantised: bool,
                     act_name: str | None = None) -> Tensor | None:
    """A Keras activation given by name ('relu', 'linear', 'softmax'). Returns None when it was a final
    softmax (already recorded in ctx.tensors)."""
    act = activation
    if isinstance(act, dict):
        act = act.get("class_name") if act.get("class_name") not in (None, "function") else act.get("config")
    if act is None:
        act = "linear"
    if not isinstance(act, str):
        raise ExportError(f"layer {layer.name!r}: unsupported activation {activation!r}")
    act = act.lower()
    hls_name = act_name or f"{layer.name}_{act}"
    if act == "linear":
        return apply_result(ctx, hls_name, "Activation", src, quantised=True)
    if act == "relu":
        out = emit_relu(ctx, hls_name, src)
        return apply_result(ctx, hls_name, "Activation", out, quantised)
    if act == "softmax":
        drop_final_softmax(ctx, layer, src, "a")
        return None
    raise ExportError(f"layer {layer.name!r}: activation {act!r} is not supported (supported: linear, relu, "
                      "and softmax as the last operation)")


@handles("keras", "Dense")
def dense(ctx: Context, layer: KLayer) -> None:
    src = vector_input(ctx, layer)
    kernel = weight(layer, "kernel")
    if kernel.ndim != 2 or kernel.shape[0] != src.n:
        raise ExportError(f"Dense {layer.name!r}: kernel shape {list(kernel.shape)} does not match its input of "
                          f"{src.n} values")
    bias = weight(layer, "bias") if layer.config.get("use_bias", True) else None
    out = ptq_dense(ctx, layer, src, kernel, bias)
    act = layer.config.get("activation", "linear")
    res = apply_activation(ctx, layer, out, act, quantised=False)
    if res is not None:
        ctx.tensors[layer.name] = res


# ----------------------------------------------------------------------------------------------------
# activations
# ----------------------------------------------------------------------------------------------------

@handles("keras", "Activation")
def activation(ctx: Context, layer: KLayer) -> None:
    src = vector_input(ctx, layer)
    res = apply_activation(ctx, layer, src, layer.config.get("activation"), quantised=False, act_name=layer.name)
    if res is not None:
        ctx.tensors[layer.name] = res


@handles("keras", "ReLU")
def relu_layer(ctx: Context, layer: KLayer) -> None:
    check_plain_relu(layer)
    src = vector_input(ctx, layer)
    out = emit_relu(ctx, layer.name, src)
    ctx.tensors[layer.name] = apply_result(ctx, layer.name, "ReLU", out, quantised=False)


def check_plain_relu(layer: KLayer) -> None:
    cfg = layer.config
    bad = []
    if cfg.get("max_value") is not None:
        bad.append(f"max_value={cfg['max_value']}")
    if float(cfg.get("negative_slope", 0.0) or 0.0) != 0.0:
        bad.append(f"negative_slope={cfg['negative_slope']}")
    if float(cfg.get("threshold", 0.0) or 0.0) != 0.0:
        bad.append(f"threshold={cfg['threshold']}")
    if bad:
        raise ExportError(f"ReLU {layer.name!r} with {', '.join(bad)} is not supported; only the plain "
                          "max(x, 0) is")


@handles("keras", "Softmax")
def softmax_layer(ctx: Context, layer: KLayer) -> None:
    drop_final_softmax(ctx, layer, vector_input(ctx, layer), "a")


# ----------------------------------------------------------------------------------------------------
# BatchNormalization
# ----------------------------------------------------------------------------------------------------

def bn_scale_shift(layer: KLayer, n: int) -> tuple[np.ndarray, np.ndarray]:
    """hls4ml's float32 arithmetic: scale = gamma / sqrt(var + eps); shift = beta - scale * mean."""
    cfg = layer.config
    axis = cfg.get("axis", -1)
    axes = axis if isinstance(axis, list) else [axis]
    if len(axes) != 1 or axes[0] not in (-1, 1):
        raise ExportError(f"BatchNormalization {layer.name!r}: axis {axis} is not supported (vectors only)")
    f32 = np.float32
    mean = weight(layer, "moving_mean").astype(f32)
    var = weight(layer, "moving_variance").astype(f32)
    gamma = weight(layer, "gamma").astype(f32) if cfg.get("scale", True) else np.ones_like(mean)
    beta = weight(layer, "beta").astype(f32) if cfg.get("center", True) else np.zeros_like(mean)
    if mean.shape != (n,):
        raise ExportError(f"BatchNormalization {layer.name!r}: {mean.shape} parameters for {n} inputs")
    eps = cfg.get("epsilon", 1e-3)
    with np.errstate(all="raise"):
        try:
            scale = gamma / np.sqrt(var + f32(eps))
            shift = beta - scale * mean
        except FloatingPointError as e:
            raise ExportError(f"BatchNormalization {layer.name!r}: {e}") from None
    return scale.astype(f32), shift.astype(f32)


@handles("keras", "BatchNormalization")
def batchnorm(ctx: Context, layer: KLayer) -> None:
    src = vector_input(ctx, layer)
    scale, shift = bn_scale_shift(layer, src.n)
    st = param_type(ctx, layer.name, "BatchNormalization", "scale")
    bt = param_type(ctx, layer.name, "BatchNormalization", "bias")
    sq = hls4ml_quantize(scale, st)
    bq = hls4ml_quantize(shift, bt)
    note(ctx, f"{layer.name}: float BatchNorm parameters quantised to scale {type_str(st)}, shift {type_str(bt)}")
    out = emit_batchnorm(ctx, layer.name, src, sq, bq, grid(st), grid(bt))
    ctx.tensors[layer.name] = apply_result(ctx, layer.name, "BatchNormalization", out, quantised=False)


# ----------------------------------------------------------------------------------------------------
# shape no-ops
# ----------------------------------------------------------------------------------------------------

@handles("keras", "Dropout", "AlphaDropout", "GaussianDropout", "GaussianNoise", "SpatialDropout1D",
         "ActivityRegularization", tensors=True)
def dropout(ctx: Context, layer: KLayer) -> None:
    ctx.tensors[layer.name] = vector_input(ctx, layer)


@handles("keras", "Flatten", "Reshape", tensors=True)
def flatten(ctx: Context, layer: KLayer) -> None:
    """Flatten and Reshape keep the elements in row-major order: wiring only (a model.json v2 Reshape
    when the shape changes rank or dimensions)."""
    src = vector_input(ctx, layer)
    if layer.class_name == "Reshape":
        target = [int(d) for d in (layer.config.get("target_shape") or [])]
    else:
        target = [src.n]
    if target.count(-1) == 1:
        known = int(np.prod([d for d in target if d != -1])) or 1
        target = [src.n // known if d == -1 else d for d in target]
    if int(np.prod(target)) != src.n:
        raise ExportError(f"{layer.class_name} {layer.name!r} to {target}: the input has {src.n} elements")
    if tuple(target) == src.dims:
        ctx.tensors[layer.name] = src
        return
    node = ctx.builder.reshape(ctx.builder.unique(layer.name), src.node, target)
    ctx.tensors[layer.name] = Tensor(node, src.n, src.types, tuple(target) if len(target) > 1 else None)


# ----------------------------------------------------------------------------------------------------
# global pooling over the steps of a (steps, channels) tensor
# ----------------------------------------------------------------------------------------------------

def global_pool_1d(ctx: Context, layer: KLayer, x: Tensor) -> Tensor:
    """Keras GlobalAveragePooling1D / GlobalMaxPooling1D (keras/src/layers/pooling/
    global_average_pooling1d.py: `ops.mean(inputs, axis=steps_axis, keepdims=keepdims)`; the max one
    `ops.max`), steps_axis 1 (channels_last) or 2 (channels_first) of (batch, ., .): a `Reduce` (mean or
    max) over that axis, exactly; with keepdims, a Reshape puts the axis back as 1. A mean needs a
    power-of-two number of steps (an exact shift); Keras's float32 mean is exact when the sum of the
    steps fits float32's 24 bits, which is checked where the input's types are known (a note otherwise).
    A mask (from an Embedding's mask_zero) is not supported."""
    dims = x.dims
    cfg = layer.config
    if len(dims) != 2:
        raise ExportError(f"layer {layer.name!r} ({layer.class_name}) reads shape {list(dims)}; it pools a "
                          "(steps, channels) tensor")
    fmt = cfg.get("data_format") or "channels_last"
    if fmt not in ("channels_last", "channels_first"):
        raise ExportError(f"layer {layer.name!r} ({layer.class_name}): data_format {fmt!r} is not supported")
    axis = 0 if fmt == "channels_last" else 1
    steps, channels = dims[axis], dims[1 - axis]
    kind = "max" if "Max" in layer.class_name else "mean"
    if kind == "mean" and steps & (steps - 1):
        raise ExportError(f"layer {layer.name!r} ({layer.class_name}): the mean over {steps} steps is not a power-of-two "
                          "division, so it has no exact fixed-point result; only 2, 4, 8, 16, ... steps are supported")
    if kind == "mean":
        if x.types is not None:
            frac = max(t.frac for t in x.types)
            big = max(max(-t.min_mant() if t.signed else 0, t.max_mant()) * 2 ** (frac - t.frac) for t in x.types)
            if big * steps > 2**24:
                note(ctx, f"{layer.name}: Keras sums {steps} values of up to {big.bit_length()} significant bits in float32; "
                          "the sum may round there, so Keras's mean may differ from the exact one")
        else:
            note(ctx, f"{layer.name}: the mean's input has no quantiser; Keras's float32 sum of it may round where "
                      "this design's is exact")
    b = ctx.builder
    node = b.reduce(b.unique(layer.name), x.node, axis, kind)
    out = Tensor(node, channels, None)
    if cfg.get("keepdims"):
        shape = (1, channels) if axis == 0 else (channels, 1)
        out = Tensor(b.reshape(b.unique(f"{layer.name}_keepdims"), node, shape), channels, None, shape)
    return out


@handles("keras", "GlobalAveragePooling1D", "GlobalMaxPooling1D", "GlobalAvgPool1D", "GlobalMaxPool1D", tensors=True)
def global_pooling_1d(ctx: Context, layer: KLayer) -> None:
    src = vector_input(ctx, layer)
    out = global_pool_1d(ctx, layer, src)
    quantised = any(l.family != "keras" for l in ctx.model.layers)
    ctx.tensors[layer.name] = apply_result(ctx, layer.name, layer.class_name, out, quantised=quantised)
