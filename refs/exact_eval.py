"""Independent float64 evaluation of quantised Dense stacks, to check the frameworks' float32 outputs.

The frameworks compute in float32. Their quantisers are exact on exact inputs, but a float32 matmul
rounds once a sum needs more than 24 significant bits, and a value that lands next to a rounding
boundary of the following quantiser can then come out one step off. These evaluators redo the
forward pass with numpy float64, which is exact here (every sum needs < 53 bits, checked), using the
framework's own quantised weights and the framework's own quantiser parameters and semantics:

* `eval_hgq2(model, x)`: HGQ2 0.2 models (QDense, QBatchNormDense, QBatchNormalization, Quantizer,
  hgq2's qkeras-compat QDense/QActivation, ReLU), semantics of `quantizers` 1.2 (FixedPointQuantizer.forward:
  saturate-then-round for SAT/SAT_SYM, round-then-wrap for WRAP; zero where k+i+f <= 0).
* `eval_hgq1_proxy(model, x)`: HGQ v1 proxy models (FixedPointQuantizer, Dense, relu), semantics of
  HGQ 0.2.6 `gfixed_quantizer` (round, then the overflow mode on the mantissa; zero where bits == 0).

Every affine step is checked to be exact (`exact_affine`): with F the fractional bits of its operands,
every partial sum is a multiple of 2^-F and bounded by sum |x||w| + |b| < 2^(52-F); otherwise it raises.
"""

import numpy as np


def frac_bits(v):
    """The smallest f >= 0 such that every value of v is a multiple of 2^-f (float64 values)."""
    v = np.asarray(v, dtype=np.float64).ravel()
    v = v[v != 0]
    if v.size == 0:
        return 0
    m, e = np.frexp(np.abs(v))                      # v = m * 2^e, 0.5 <= m < 1
    mi = (m * 2.0 ** 53).astype(np.int64)           # exact integer mantissa, v = mi * 2^(e-53)
    low = mi & -mi                                  # lowest set bit
    tz = np.log2(low.astype(np.float64)).astype(np.int64)
    return int(max(0, np.max(53 - e - tz)))


def exact_affine(x, w, b, what):
    """x @ w + b in float64, checked exact: every partial sum is a multiple of 2^-F below 2^(52-F)."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    F = frac_bits(x) + frac_bits(w)
    bound = np.abs(x) @ np.abs(w)
    if b is not None:
        b = np.asarray(b, dtype=np.float64)
        F = max(F, frac_bits(b))
        bound = bound + np.abs(b)
    if bound.size and np.max(bound) * 2.0 ** F * (1 + 1e-9) >= 2.0 ** 52:
        raise ArithmeticError(f'{what}: float64 accumulation not provably exact (F={F}, max {np.max(bound)})')
    y = x @ w
    return y + b if b is not None else y


def exact_scale(x, s, o, what):
    x = np.asarray(x, dtype=np.float64)
    F = frac_bits(x) + frac_bits(s)
    F = max(F, frac_bits(o))
    bound = np.abs(x) * np.abs(s) + np.abs(o)
    if bound.size and np.max(bound) * 2.0 ** F * (1 + 1e-9) >= 2.0 ** 52:
        raise ArithmeticError(f'{what}: not provably exact')
    return x * s + o


def _round(x, mode):
    if mode == 'TRN':
        return np.floor(x)
    if mode == 'RND':
        return np.floor(x + 0.5)
    if mode == 'RND_CONV':
        return np.round(x)  # ties to even
    if mode == 'TRN_ZERO':
        return np.trunc(x)
    if mode == 'RND_ZERO':
        return -np.floor(-np.abs(x) + 0.5) * np.sign(x)
    if mode == 'RND_MIN_INF':
        return -np.floor(-x + 0.5)
    if mode == 'RND_INF':
        return np.floor(np.abs(x) + 0.5) * np.sign(x)
    raise NotImplementedError(f'round mode {mode}')


def quantize_kif(x, k, i, f, round_mode, overflow_mode):
    """`quantizers` 1.2 FixedPointQuantizer.forward (inference) + HGQ2's zero for k+i+f <= 0, in float64."""
    x = np.asarray(x, dtype=np.float64)
    k, i, f = (np.broadcast_to(np.asarray(t, dtype=np.float64), x.shape) for t in (k, i, f))
    i = np.maximum(i, -f)
    scale = np.exp2(f)
    if overflow_mode == 'WRAP':
        y = _round(x * scale, round_mode) / scale
        bk = i + k
        bias = k * np.exp2(bk - 1)
        y = np.mod(y + bias, np.exp2(bk)) - bias
    elif overflow_mode in ('SAT', 'SAT_SYM'):
        eps = np.exp2(-f)
        hi = np.exp2(i) - eps
        lo = -np.exp2(i) * k if overflow_mode == 'SAT' else -hi * k
        y = np.where(x > hi, hi, np.where(x < lo, lo, x))
        y = _round(y * scale, round_mode) / scale
    else:
        raise NotImplementedError(f'overflow mode {overflow_mode}')
    return np.where(k + i + f > 0, y, 0.0)


def _hgq2_quantizer(q, x):
    """Apply an hgq2 `Quantizer` wrapper (inference) to float64 x."""
    from keras import ops

    if getattr(q, 'affine', None) is not None:
        raise NotImplementedError(f'{q.name}: affine not supported')
    scaler = getattr(q, 'scaler', None)
    if scaler is not None:  # qkeras compat alpha: x / scaler, quantise, * scaler (exact for powers of two)
        scaler = float(scaler)
        if np.frexp(scaler)[0] != 0.5:
            raise NotImplementedError(f'{q.name}: scaler {scaler} is not a power of two')
        x = x / scaler
    inner = q.quantizer
    name = type(inner).__name__
    if 'FixedPoint' not in name:
        raise NotImplementedError(f'{q.name}: quantizer {name}')
    k, i, f = (ops.convert_to_numpy(t) for t in inner.kif)
    # bw_mapper maps per-parameter bit widths onto the input's shape (batch axis first)
    shape = (1,) + tuple(x.shape[1:])
    k, i, f = (ops.convert_to_numpy(inner.bw_mapper.bw_to_x(t, shape)) for t in (k, i, f))
    mode = inner.round_mode
    if mode.startswith('S_'):
        raise NotImplementedError('stochastic rounding')
    y = quantize_kif(x, k, i, f, mode, inner.overflow_mode)
    return y * scaler if scaler is not None else y


def _act(layer, x):
    act = getattr(layer, 'activation', None)
    name = getattr(act, '__name__', 'linear') if act is not None else 'linear'
    if name == 'relu':
        return np.maximum(x, 0.0)
    if name == 'linear':
        return x
    raise NotImplementedError(f'{layer.name}: activation {name}')


def eval_hgq2(model, x):
    from keras import ops

    x = np.asarray(x, dtype=np.float64)
    for layer in model.layers:
        cls = type(layer).__name__
        if cls == 'InputLayer':
            continue
        if cls in ('QDense', 'QBatchNormDense'):
            if getattr(layer, 'enable_iq', False):
                x = _hgq2_quantizer(layer.iq, x)
            kern = ops.convert_to_numpy(layer.qkernel).astype(np.float64)
            b = ops.convert_to_numpy(layer.qbias).astype(np.float64) if layer.bias is not None else None
            x = _act(layer, exact_affine(x, kern, b, layer.name))
        elif cls == 'QBatchNormalization':
            if getattr(layer, 'enable_iq', False):
                x = _hgq2_quantizer(layer.iq, x)
            s, o = (ops.convert_to_numpy(t).astype(np.float64).reshape(-1) for t in layer.qscaler_and_qoffset)
            x = exact_scale(x, s, o, layer.name)
        elif cls in ('Quantizer', 'QActivation'):
            x = _hgq2_quantizer(layer, x) if cls == 'Quantizer' else _hgq2_quantizer(layer.iq, x)
        elif cls == 'ReLU':
            cfg = layer.get_config()
            if cfg.get('max_value') is not None or cfg.get('negative_slope', 0) or cfg.get('threshold', 0):
                raise NotImplementedError(f'{layer.name}: ReLU options')
            x = np.maximum(x, 0.0)
        elif cls == 'Activation':
            x = _act(layer, x)
        else:
            raise NotImplementedError(f'{layer.name}: layer {cls}')
        if getattr(layer, 'enable_oq', False):
            x = _hgq2_quantizer(layer.oq, x)
    return x


def gfixed_np(x, keep_negative, bits, integers, rnd, sat):
    """HGQ v1 (0.2.6) proxy `gfixed_quantizer` in float64."""
    x = np.asarray(x, dtype=np.float64)
    k, b, i = (np.broadcast_to(np.asarray(t, dtype=np.float64), x.shape) for t in (keep_negative, bits, integers))
    scale = np.exp2(b - i)
    m = _round(x * scale, rnd)
    high = np.exp2(b - k) - 1
    if sat == 'WRAP':
        low = -(high + 1) * k
        m = np.mod(m - low, high - low + 1) + low
    elif sat == 'SAT':
        m = np.clip(m, -(high + 1) * k, high)
    elif sat == 'SAT_SYM':
        m = np.clip(m, -high * k, high)
    else:
        raise NotImplementedError(sat)
    return m / scale * (b != 0)


def eval_hgq1_proxy(model, x):
    x = np.asarray(x, dtype=np.float64)
    for layer in model.layers:
        cls = type(layer).__name__
        if cls == 'InputLayer':
            continue
        if cls == 'FixedPointQuantizer':
            kn, b, i = (np.asarray(v.numpy()) for v in (layer.keep_negative, layer.bits, layer.integers))
            x = gfixed_np(x, kn, b, i, layer.RND, layer.SAT)
        elif cls == 'Dense':
            kern, *bias = (w.astype(np.float64) for w in layer.get_weights())
            x = _act(layer, exact_affine(x, kern, bias[0] if bias else None, layer.name))
        elif cls == 'Activation':
            x = _act(layer, x)
        elif cls == 'ReLU':
            x = np.maximum(x, 0.0)
        else:
            raise NotImplementedError(f'{layer.name}: layer {cls}')
    return x
