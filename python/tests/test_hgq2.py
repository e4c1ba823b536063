"""Tests of the Keras 3 reader and the HGQ2 / hgq2-QKeras importer (fastml_export.keras3, fastml_export.hgq2).

Only numpy, h5py and the package are imported. Three kinds of tests:

* unit tests of the exact quantiser arithmetic (hgq2 0.2.0 semantics, docs/importers-hgq2.md);
* two small models synthesised here in the exact `.keras` layout hgq2 0.2.0 / Keras 3.15 write (config.json +
  model.weights.h5), covering the edge cases (zero-width inputs, pruned b=0 weights, negative i, trainable
  WRAP weight quantisers that only round, SAT_SYM activations, a power-of-two scaler, hgq2's QKeras
  `quantized_bits`/`quantized_relu`); their expected outputs were computed by hgq2 0.2.0 + Keras 3.15.1 (jax)
  loading these very files (`model.predict`), and are checked exactly with the compiler when it is present;
* conformance on the peers' models in shared/peers (hgq, homog16, qkeras6): quantised weights against the
  dumps, and all 1000x5 outputs of `fastml-compile predict` against the golden logits, exactly.

The compiler is taken from $FASTML_COMPILE, /tmp/fastml-compile, or the repo's target/{release,debug}; tests that
need it skip without it. shared/ is taken from $FASTML_SHARED, ../shared beside the repo, or /work/shared.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from fractions import Fraction
from pathlib import Path

import h5py
import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from fastml_export.registry import convert  # noqa: E402
from fastml_export.builder import ExportError  # noqa: E402
from fastml_export.hgq2 import _exact_frac, fixed_quantize  # noqa: E402
from fastml_export.keras3 import read_keras3  # noqa: E402

REPO = HERE.parent.parent


def export(path, out=None):
    b = convert(read_keras3(str(path)))
    if out is not None:
        b.write(str(out))
    return b


def compiler():
    cands = [os.environ.get("FASTML_COMPILE"), "/tmp/fastml-compile",
             str(REPO / "target" / "release" / "fastml-compile"), str(REPO / "target" / "debug" / "fastml-compile")]
    for c in cands:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


def shared_dir():
    for c in (os.environ.get("FASTML_SHARED"), str(REPO.parent / "shared"), "/work/shared"):
        if c and (Path(c) / "peers" / "models").is_dir():
            return Path(c)
    return None


def predict(model_json, inputs_txt):
    exe = compiler()
    if exe is None:
        pytest.skip("fastml-compile binary not found")
    r = subprocess.run([exe, "predict", str(model_json), "--input", str(inputs_txt)], capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr
    return [line.split() for line in r.stdout.splitlines() if line.strip()]


def same(pred_str: str, expected: float) -> bool:
    """Exact: the prediction (an exact decimal) equals the float64 value `expected` (a dyadic number)."""
    return Fraction(pred_str) == Fraction(float(expected))


# ---------------------------------------------------------------------------------------------------------
# Exact quantiser arithmetic


def test_round_and_overflow_modes():
    # fixed<5,3> (k=1, i=2, f=2): grid 0.25, range [-4, 3.75]
    x = np.array([0.125, -0.125, 0.375, -0.375, 3.9, -4.1, 5.0, -5.0])
    k, i, f = 1, 2, 2
    assert fixed_quantize(x, k, i, f, "RND", "SAT").tolist() == [0.25, 0.0, 0.5, -0.25, 3.75, -4.0, 3.75, -4.0]
    assert fixed_quantize(x, k, i, f, "RND_CONV", "SAT").tolist() == [0.0, 0.0, 0.5, -0.5, 3.75, -4.0, 3.75, -4.0]
    assert fixed_quantize(x, k, i, f, "TRN", "SAT").tolist() == [0.0, -0.25, 0.25, -0.5, 3.75, -4.0, 3.75, -4.0]
    # hgq2 SAT_SYM clips to [-3.75, 3.75] before rounding: -4 is never produced
    assert fixed_quantize(x, k, i, f, "TRN", "SAT_SYM").tolist() == [0.0, -0.25, 0.25, -0.5, 3.75, -3.75, 3.75, -3.75]
    # WRAP: round, then two's complement wrap in 5 bits (period 8)
    assert fixed_quantize(x, k, i, f, "RND", "WRAP").tolist() == [0.25, 0.0, 0.5, -0.25, -4.0, -4.0, -3.0, 3.0]
    # unsigned WRAP: modulo 2^i
    assert fixed_quantize(np.array([5.3, -0.5]), 0, 2, 1, "TRN", "WRAP").tolist() == [1.0, 3.5]
    for mode, want in [("TRN_ZERO", [0.0, 0.0]), ("RND_ZERO", [0.0, 0.0]), ("RND_INF", [0.25, -0.25]),
                       ("RND_MIN_INF", [0.0, -0.25])]:
        assert fixed_quantize(np.array([0.125, -0.125]), 1, 2, 2, mode, "SAT").tolist() == want, mode


def test_zero_width_and_pruned():
    # k+i+f <= 0: always 0
    assert fixed_quantize(np.array([3.0, -3.0]), 1, -1, -1, "RND", "WRAP").tolist() == [0.0, 0.0]
    assert fixed_quantize(np.array([3.0]), 0, 0, 0, "RND", "SAT").tolist() == [0.0]
    # kbi b=0 (f = -i): SAT_SYM gives 0 (pruned); SAT/WRAP keep one sign bit: {-2^i, 0}
    assert fixed_quantize(np.array([0.7, -0.7, -3.0]), 1, 1, -1, "RND", "SAT_SYM").tolist() == [0.0, 0.0, 0.0]
    assert fixed_quantize(np.array([0.7, -1.2, -3.0]), 1, 1, -1, "RND", "SAT").tolist() == [0.0, -2.0, -2.0]


def test_exact_frac():
    assert _exact_frac(0.375) == 3 and _exact_frac(6.0) == -1 and _exact_frac(1.0) == 0 and _exact_frac(0.0) == 0


# ---------------------------------------------------------------------------------------------------------
# Synthesised .keras files in hgq2 0.2.0's layout


def _w(shape, a, b, m, off, div):
    n = int(np.prod(shape))
    return np.array([((j * a + b) % m - off) / div for j in range(n)], dtype=np.float32).reshape(shape)


def _hq(q_type, place, **kw):
    cfg = {"q_type": q_type, "place": place, "scaler": None, "qnoise_factor": None, "affine": None}
    cfg.update(kw)
    return {"module": "hgq.quantizer.config", "class_name": "QuantizerConfig", "config": cfg,
            "registered_name": "hgq>QuantizerConfig"}


def _qb(bits, integer, symmetric=False, keep_negative=True, alpha=None):
    return {"module": "qkeras.quantizers.quantized_bits", "class_name": "quantized_bits",
            "config": {"bits": bits, "integer": integer, "symmetric": symmetric, "keep_negative": keep_negative,
                       "alpha": alpha, "use_stochastic_rounding": False, "scale_axis": [], "qnoise_factor": None,
                       "var_name": None, "use_ste": True, "use_variables": alpha == "trainable_po2"},
            "registered_name": "hgq/qkeras>quantized_bits"}


def _kt(layer, shape):
    return {"class_name": "__keras_tensor__", "config": {"shape": [None, *shape], "dtype": "float32",
                                                         "keras_history": [layer, 0, 0]}}


def _dense(name, src, n_in, units, activation="linear", iq=None, kq=None, bq=None, oq=None, use_bias=True):
    return {"module": "hgq.layers.core.dense", "class_name": "QDense", "registered_name": "hgq>QDense", "name": name,
            "config": {"name": name, "trainable": True, "units": units, "activation": activation, "use_bias": use_bias,
                       "enable_ebops": False, "enable_iq": iq is not None, "enable_oq": oq is not None,
                       "iq_conf": iq, "kq_conf": kq, "bq_conf": bq, "oq_conf": oq, "parallelization_factor": 1},
            "build_config": {"input_shape": [None, n_in]},
            "inbound_nodes": [{"args": [_kt(src, (n_in,))], "kwargs": {}}]}


def _quantizer(name, src, n, conf):
    return {"module": "hgq.quantizer.quantizer", "class_name": "Quantizer", "registered_name": "hgq>Quantizer",
            "name": name, "config": {"name": name, "trainable": True, "config": conf},
            "build_config": {"input_shape": [None, n]},
            "inbound_nodes": [{"args": [_kt(src, (n,))], "kwargs": {}}]}


def _input(name, n):
    return {"module": "keras.layers", "class_name": "InputLayer", "registered_name": None, "name": name,
            "config": {"batch_shape": [None, n], "dtype": "float32", "sparse": False, "ragged": False, "name": name},
            "inbound_nodes": []}


def _kif_vars(k, i, f, wrap):
    """FixedPointQuantizerKIF's saved order: trainables (i unless WRAP, f), then k, (i, i_decay_speed if WRAP)."""
    k = np.asarray(k, np.uint8)
    i, f = np.asarray(i, np.float32), np.asarray(f, np.float32)
    return [f, k, i, np.float32(0.01)] if wrap else [i, f, k]


def _kbi_vars(k, b, i, wrap):
    k = np.asarray(k, np.uint8)
    b, i = np.asarray(b, np.float32), np.asarray(i, np.float32)
    return [b, k, i, np.float32(float("inf"))] if wrap else [b, i, k]


def write_keras(path, name, layers, weights, output, with_names=True):
    """A .keras zip: config.json as Keras 3.15 writes it, model.weights.h5 with layers/<group>/vars/N and
    <group>/<sub>/quantizer/vars/N, group names snake_case(class)[_N] in layer order."""
    config = {"module": "keras.src.models.functional", "class_name": "Functional", "registered_name": "Functional",
              "config": {"name": name, "trainable": True, "layers": layers,
                         "input_layers": [layers[0]["name"], 0, 0], "output_layers": [output, 0, 0]}}
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        used: dict[str, int] = {}
        for lay in layers:
            base = {"InputLayer": "input_layer", "QDense": "q_dense", "Quantizer": "quantizer"}[lay["class_name"]]
            used[base] = used.get(base, -1) + 1
            g = base if used[base] == 0 else f"{base}_{used[base]}"
            grp = f.create_group(f"layers/{g}/vars")
            if with_names:
                grp.attrs["name"] = lay["name"]
            for sub, arrs in weights.get(lay["name"], {}).items():
                if sub == "":
                    vg = grp
                elif lay["class_name"] == "Quantizer":  # its internal quantiser: layers/quantizer/quantizer/vars
                    vg = f.create_group(f"layers/{g}/{sub}/vars")
                else:  # a sub-Quantizer (iq, kq, ...): empty own vars, internal quantiser's vars
                    f.require_group(f"layers/{g}/{sub}/vars")
                    vg = f.create_group(f"layers/{g}/{sub}/quantizer/vars")
                for n, a in enumerate(arrs):
                    vg.create_dataset(str(n), data=a)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", buf.getvalue())


def tiny_hgq(path, with_names=True):
    """6 -> QDense(5, relu) -> QDense(4, oq SAT_SYM) -> Quantizer(kbi WRAP RND_INF) -> QDense(3)."""
    iq1 = _hq("kif", "datalane", k0=1, i0=2, f0=3, round_mode="RND", overflow_mode="WRAP", trainable=True,
              is_weight=False, homogeneous_axis=None, heterogeneous_axis=[1], bw_mapper=None)
    kq1 = _hq("kbi", "weight", k0=1, b0=4, i0=1, round_mode="RND", overflow_mode="SAT_SYM", trainable=True,
              is_weight=True, homogeneous_axis=[], heterogeneous_axis=None, bw_mapper=None)
    bq1 = _hq("kbi", "bias", k0=1, b0=6, i0=2, round_mode="RND_CONV", overflow_mode="SAT", trainable=True,
              is_weight=False, homogeneous_axis=[], heterogeneous_axis=None, bw_mapper=None)
    iq2 = _hq("kif", "datalane", k0=0, i0=2, f0=3, round_mode="TRN", overflow_mode="SAT", trainable=True,
              is_weight=False, homogeneous_axis=[0], heterogeneous_axis=None, bw_mapper=None)
    kq2 = _hq("kif", "weight", k0=1, i0=0, f0=3, round_mode="TRN", overflow_mode="WRAP", trainable=True,
              is_weight=True, homogeneous_axis=[0, 1], heterogeneous_axis=None, bw_mapper=None)
    oq2 = _hq("kif", "datalane", k0=1, i0=1, f0=2, round_mode="TRN", overflow_mode="SAT_SYM", trainable=True,
              is_weight=False, homogeneous_axis=None, heterogeneous_axis=[1], bw_mapper=None)
    q3 = _hq("kbi", "datalane", k0=1, b0=4, i0=1, round_mode="RND_INF", overflow_mode="WRAP", trainable=True,
             is_weight=False, homogeneous_axis=None, heterogeneous_axis=[1], bw_mapper=None)
    kq4 = _hq("kbi", "weight", k0=1, b0=3, i0=1, round_mode="RND", overflow_mode="WRAP", trainable=True,
              is_weight=True, homogeneous_axis=[0, 1], heterogeneous_axis=None, bw_mapper=None)
    bq2 = _hq("kif", "bias", k0=1, i0=1, f0=2, round_mode="RND", overflow_mode="WRAP", trainable=False,
              is_weight=False, homogeneous_axis=[], heterogeneous_axis=None, bw_mapper=None)
    layers = [_input("x", 6), _dense("d1", "x", 6, 5, "relu", iq1, kq1, bq1), _dense("d2", "d1", 5, 4, "linear", iq2, kq2, bq2, oq2),
              _quantizer("q3", "d2", 4, q3), _dense("d4", "q3", 4, 3, "linear", None, kq4, None, use_bias=False)]
    n1 = 30
    b1 = np.array([(j * 7) % 6 for j in range(n1)], np.float32) + np.array([((j % 3) - 1) * 0.4 for j in range(n1)], np.float32)
    b1[3], b1[4] = 2.5, 3.5  # round half to even: 2, 4
    i1 = np.array([(j % 4) - 1 for j in range(n1)], np.float32)
    i1[5] = 0.5  # -> 0
    k1 = np.array([0 if j % 5 == 0 else 1 for j in range(n1)], np.uint8)
    weights = {
        "d1": {"": [_w((6, 5), 37, 11, 41, 20, 16), _w((5,), 53, 5, 23, 11, 8)],
               "iq": _kif_vars([[1, 1, 0, 1, 1, 1]], [[2, 1, 3, -1, 2, 0]], [[3, 4, 2, -2, 5, 3]], True),
               "kq": _kbi_vars(k1.reshape(6, 5), b1.reshape(6, 5), i1.reshape(6, 5), False),
               "bq": _kbi_vars(np.ones(5), [6, 0, 3, 5, 4], [2, 1, 0, 1, 3], False)},
        "d2": {"": [_w((5, 4), 29, 3, 31, 15, 8), _w((4,), 17, 2, 13, 6, 4)],
               "iq": _kif_vars([[0] * 5], [[2, 1, 2, 3, 0]], [[3, 2, 4, 1, 3]], False),
               "kq": _kif_vars([[1]], [[0]], [[3]], True),
               "bq": _kif_vars([1, 1, 0, 1], [1, 0, 1, 2], [2, 1, 3, 2], True),
               "oq": _kif_vars([[1, 0, 1, 1]], [[1, 2, 0, 2]], [[2, 3, 3, 1]], False)},
        "q3": {"quantizer": _kbi_vars([[1, 1, 1, 0]], [[4, 0, 3, 6]], [[1, 0, 2, 1]], True)},
        "d4": {"": [_w((4, 3), 19, 7, 17, 8, 4)], "kq": _kbi_vars([[1]], [[3]], [[1]], True)},
    }
    write_keras(path, "tiny_hgq", layers, weights, "d4", with_names)


def tiny_qk(path):
    """hgq2's QKeras look-alike: QActivation(quantized_bits(6,2,alpha=1)) -> QDense(4) -> QActivation(quantized_relu(4,1))
    -> QDense(3) -> QActivation(quantized_bits(5,1,symmetric)) -> QDense(2, trainable_po2 kernel)."""
    def qd(name, src, n_in, units, kq, bq):
        d = _dense(name, src, n_in, units, "linear", None, kq, bq)
        return d
    layers = [_input("x", 5), _quantizer("qin", "x", 5, _qb(6, 2, alpha=1.0)),
              qd("d1", "qin", 5, 4, _qb(4, 0, symmetric=True, alpha=1.0), _qb(5, 1)),
              _quantizer("r1", "d1", 4, _qb(4, 1, keep_negative=False)),
              qd("d2", "r1", 4, 3, _qb(3, 1, alpha=1.0), _qb(6, 2, alpha=2.0)),
              _quantizer("qs", "d2", 3, _qb(5, 1, symmetric=True, alpha=1.0)),
              qd("d3", "qs", 3, 2, _qb(5, 1, alpha="trainable_po2"), _qb(8, 3, alpha=0.5))]
    weights = {
        "d1": {"": [_w((5, 4), 37, 11, 41, 20, 16), _w((4,), 53, 5, 23, 11, 8)]},
        "d2": {"": [_w((4, 3), 29, 3, 31, 15, 8), _w((3,), 17, 2, 13, 6, 4)]},
        "d3": {"": [_w((3, 2), 19, 7, 17, 8, 4), _w((2,), 11, 1, 7, 3, 4)],
               "kq": [np.full((1, 1), 5, np.float32), np.full((1, 1), 1, np.float32), np.ones((1, 1), np.uint8)]},
    }
    write_keras(path, "tiny_qk", layers, weights, "d3")


def tiny_inputs(n, rows=40):
    """Multiples of 1/32 in [-6.5, 6.5], deterministic."""
    return np.array([[(((r * 97 + c * 41 + r * c * 13) % 209) - 104) / 16.0 for c in range(n)] for r in range(rows)])


# model.predict of hgq2 0.2.0 + Keras 3.15.1 (jax) on the files above and tiny_inputs(); float32 outputs
TINY_HGQ_EXPECTED = [
    [-1.0625, -1.4375, -1.8125],
    [-1.0625, -0.6875, -0.3125],
    [-1.9375, -0.5625, 0.8125],
    [-1.25, -1.0, -0.75],
    [-1.0625, -1.4375, -1.8125],
    [-1.25, -1.0, -0.75],
    [-1.0625, -1.4375, -1.8125],
    [-1.1875, -1.0625, -0.9375],
    [-1.0625, -0.9375, -0.8125],
    [1.9375, 0.8125, -0.3125],
    [-1.0625, -1.4375, -1.8125],
    [-1.0625, -1.4375, -1.8125],
    [-1.0625, -0.6875, -0.3125],
    [-1.0625, -1.4375, -1.8125],
    [-1.0625, -1.4375, -1.8125],
    [-1.125, -0.875, -0.625],
    [-1.0625, -1.1875, -1.3125],
    [-1.25, -1.0, -0.75],
    [-1.0625, -0.6875, -0.3125],
    [-1.9375, -0.5625, 0.8125],
    [-1.0625, -0.9375, -0.8125],
    [-1.0625, -1.4375, -1.8125],
    [-1.25, -1.0, -0.75],
    [-1.0625, -1.1875, -1.3125],
    [1.9375, 0.8125, -0.3125],
    [-1.0625, -1.4375, -1.8125],
    [1.1875, 0.3125, -0.5625],
    [-1.0625, -1.4375, -1.8125],
    [-1.0625, -0.9375, -0.8125],
    [-1.0625, -0.9375, -0.8125],
    [-1.0625, -0.6875, -0.3125],
    [-1.5625, -0.4375, 0.6875],
    [-1.125, -1.125, -1.125],
    [-1.125, -1.125, -1.125],
    [-1.0625, -1.4375, -1.8125],
    [-1.0625, -0.6875, -0.3125],
    [-1.0625, -1.4375, -1.8125],
    [-1.0625, -1.4375, -1.8125],
    [0.4375, -0.1875, -0.8125],
    [-1.0625, -1.4375, -1.8125],
]
TINY_QK_EXPECTED = [
    [3.859375, -0.46875],
    [2.765625, -4.25],
    [-0.140625, 0.125],
    [3.046875, -2.53125],
    [1.5, -1.75],
    [3.859375, -0.46875],
    [1.5, -1.75],
    [3.046875, -2.53125],
    [1.734375, -0.109375],
    [3.046875, -2.53125],
    [2.765625, -4.25],
    [3.046875, -2.53125],
    [2.125, -1.6875],
    [3.859375, -0.46875],
    [3.375, -1.984375],
    [-0.140625, 0.125],
    [2.765625, -4.25],
    [-0.140625, 0.125],
    [2.765625, -4.25],
    [-0.140625, 0.125],
    [3.859375, -0.46875],
    [1.5, -1.75],
    [3.859375, -0.46875],
    [1.5, -1.75],
    [3.046875, -2.53125],
    [1.734375, -0.109375],
    [3.046875, -2.53125],
    [3.890625, -0.5],
    [1.109375, -0.03125],
    [3.734375, -1.34375],
    [2.765625, -4.25],
    [3.375, -1.984375],
    [-0.140625, 0.125],
    [2.765625, -4.25],
    [-0.140625, 0.125],
    [2.953125, -2.9375],
    [1.5, -1.75],
    [3.859375, -0.46875],
    [1.5, -1.75],
    [3.609375, -0.96875],
]


def _check_tiny(tmp_path, make, n_in, expected, name):
    p = tmp_path / f"{name}.keras"
    make(p)
    b = export(p, tmp_path / f"{name}.json")
    assert b.nodes[0]["op"] == "Input"
    x = tiny_inputs(n_in)
    np.savetxt(tmp_path / "x.txt", x, fmt="%.6f")
    pred = predict(tmp_path / f"{name}.json", tmp_path / "x.txt")
    want = np.array(expected, dtype=np.float64)
    assert len(pred) == len(want)
    bad = [(r, c, pred[r][c], want[r][c]) for r in range(len(want)) for c in range(want.shape[1]) if not same(pred[r][c], want[r][c])]
    assert not bad, bad[:5]


def test_tiny_hgq_reader(tmp_path):
    p = tmp_path / "t.keras"
    tiny_hgq(p)
    m = read_keras3(str(p))
    assert [l.name for l in m.layers] == ["x", "d1", "d2", "q3", "d4"]
    assert [l.family for l in m.layers] == ["keras", "hgq2", "hgq2", "hgq2", "hgq2"]
    assert m.extra["outputs"] == ["d4"] and m.input_shape == (6,)
    d1 = m.layer("d1").weights
    assert set(d1) == {"kernel", "bias", "iq/f", "iq/k", "iq/i", "iq/i_decay_speed", "kq/b", "kq/i", "kq/k", "bq/b", "bq/i", "bq/k"}
    assert d1["iq/k"].dtype == np.uint8 and d1["iq/f"].tolist() == [[3, 4, 2, -2, 5, 3]]
    assert set(m.layer("q3").weights) == {"quantizer/b", "quantizer/k", "quantizer/i", "quantizer/i_decay_speed"}
    # without the `name` attributes (Keras < 3.6) the groups are matched by class and order
    p2 = tmp_path / "t2.keras"
    tiny_hgq(p2, with_names=False)
    m2 = read_keras3(str(p2))
    for a, b in zip(m.layers, m2.layers):
        assert sorted(a.weights) == sorted(b.weights)
        for k in a.weights:
            assert np.array_equal(a.weights[k], b.weights[k])


def test_tiny_hgq_structure(tmp_path):
    p = tmp_path / "t.keras"
    tiny_hgq(p)
    b = export(p)
    nodes = {n["name"]: n for n in b.nodes}
    # the first input quantiser becomes the Input's type; element 3 has k+i+f <= 0
    assert nodes["x"]["types"][0] == "fixed<6,3,RND,WRAP>" and nodes["x"]["types"][2] == "ufixed<5,3,RND,WRAP>"
    w = nodes["d1"]["weight"]
    assert all(v == 0 for v in w["data"][3 * 5:4 * 5])  # row of the always-zero input
    # SAT_SYM output quantiser: the exact chain
    assert [n["op"] for n in b.nodes if n["name"].startswith("d2_oq")] == ["Quantize", "BatchNorm", "Quantize", "BatchNorm", "Quantize"]
    assert nodes["d2_iq"]["types"][:2] == ["ufixed<5,2,TRN,SAT>", "ufixed<3,1,TRN,SAT>"]


def test_tiny_hgq_exact(tmp_path):
    _check_tiny(tmp_path, tiny_hgq, 6, TINY_HGQ_EXPECTED, "tiny_hgq")


def test_tiny_qk_family_and_semantics(tmp_path):
    p = tmp_path / "q.keras"
    tiny_qk(p)
    m = read_keras3(str(p))
    assert m.extra.get("hgq2_qkeras_compat") is True
    assert {l.family for l in m.layers if l.class_name != "InputLayer"} == {"qkeras_hgq2"}
    b = export(p)
    nodes = {n["name"]: n for n in b.nodes}
    # quantized_bits(6, 2) counts 6 bits WITHOUT the sign: fixed<7,3>, RND_CONV, SAT (became the Input's type)
    assert nodes["x"]["type"] == "fixed<7,3,RND_CONV,SAT>"
    assert nodes["r1"]["type"] == "ufixed<4,1,RND_CONV,SAT>"  # quantized_relu(4, 1)
    assert nodes["d1"]["weight"]["type"] == "fixed<5,1>"  # quantized_bits(4, 0)
    assert nodes["d2"]["bias"]["type"] == "fixed<7,4>"  # quantized_bits(6, 2, alpha=2): scaler 2 shifts the type


def test_tiny_qk_exact(tmp_path):
    _check_tiny(tmp_path, tiny_qk, 5, TINY_QK_EXPECTED, "tiny_qk")


def test_unsupported_is_an_export_error(tmp_path):
    p = tmp_path / "t.keras"
    tiny_hgq(p)
    m = read_keras3(str(p))
    m.layer("d1").config["activation"] = "tanh"
    with pytest.raises(ExportError, match="activation 'tanh'"):
        convert(m)
    m = read_keras3(str(p))
    m.layer("d2").config["kq_conf"]["config"]["q_type"] = "float"
    with pytest.raises(ExportError, match="floating-point"):
        convert(m)


def test_reference_qkeras_v3_family():
    p = REPO / "refs" / "example-models" / "keras" / "qkeras-v3_3layer.keras"
    s = shared_dir()
    if not p.exists() and s is not None:
        p = s / "reference" / "example-models" / "keras" / "qkeras-v3_3layer.keras"
    if not p.exists():
        pytest.skip("qkeras-v3_3layer.keras not available")
    m = read_keras3(str(p))
    fams = {l.name: l.family for l in m.layers}
    assert fams["fc1"] == "qkeras" and fams["relu1"] == "qkeras" and fams["softmax"] == "keras"
    assert set(m.layer("fc1").weights) == {"kernel", "bias"}
    assert m.extra["outputs"] == ["softmax"]


# ---------------------------------------------------------------------------------------------------------
# Conformance on the peers' models (shared/peers)

PEERS = ("hgq", "homog16", "qkeras6")


@pytest.mark.parametrize("name", PEERS)
def test_peers_weights_match_dump(name):
    s = shared_dir()
    if s is None:
        pytest.skip("shared/peers not available")
    dump = json.loads((s / "peers" / "results" / f"{name}.weights.json").read_text())
    b = export(s / "peers" / "models" / f"{name}.keras")
    nodes = {n["name"]: n for n in b.nodes}
    checked = 0
    for lay in dump["layers"]:
        if lay.get("class") != "QDense":
            continue
        node = nodes[lay["name"]]
        for key, field in (("kernel_quantized", "weight"), ("bias_quantized", "bias")):
            t = node[field]
            tys = t.get("types") or [t["type"]] * len(t["data"])
            got = np.array([Fraction(m) / (2 ** _frac_of(ty)) for m, ty in zip(t["data"], tys)], dtype=object)
            want = np.array([Fraction(v) for v in np.asarray(lay[key], dtype=np.float64).reshape(-1).tolist()], dtype=object)
            iq = lay.get("input_quantizer") or {}
            if key == "kernel_quantized" and "k" in iq:
                # rows of inputs that the input quantiser always zeroes (k+i+f <= 0) are exported as 0
                kif = np.array(iq["k"]) + np.array(iq["i"]) + np.array(iq["f"])
                dead = np.broadcast_to(kif.reshape(-1), (node[field]["shape"][0],)) <= 0
                want = want.reshape(node[field]["shape"])
                want[dead, :] = Fraction(0)
                want = want.reshape(-1)
            assert got.tolist() == want.tolist(), (name, lay["name"], key)
            checked += 1
    assert checked == 8


def _frac_of(ty: str) -> int:
    w, i = ty[ty.index("<") + 1:ty.index(">")].split(",")[:2]
    return int(w) - int(i)


@pytest.mark.parametrize("name", PEERS)
def test_peers_bit_exact(name, tmp_path):
    s = shared_dir()
    if s is None:
        pytest.skip("shared/peers not available")
    mj = tmp_path / f"{name}.json"
    export(s / "peers" / "models" / f"{name}.keras", mj)
    res = s / "peers" / "results"
    pred = predict(mj, res / "x_test.txt")
    expected = [line.split() for line in (res / f"{name}.expected_logits.txt").read_text().splitlines() if line.strip()]
    assert len(pred) == len(expected) == 1000
    n = bad = 0
    for pr, er in zip(pred, expected):
        assert len(pr) == len(er) == 5
        for p, e in zip(pr, er):
            n += 1
            bad += not same(p, float(e))
    assert (n, bad) == (5000, 0)


@pytest.mark.parametrize("name", PEERS)
def test_peers_compile(name, tmp_path):
    s = shared_dir()
    if s is None:
        pytest.skip("shared/peers not available")
    exe = compiler()
    if exe is None:
        pytest.skip("fastml-compile binary not found")
    mj = tmp_path / f"{name}.json"
    export(s / "peers" / "models" / f"{name}.keras", mj)
    out = tmp_path / f"out_{name}"
    r = subprocess.run([exe, str(mj), "-o", str(out), "-q"], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    assert any(out.rglob("*.v")) or any(out.rglob("*.sv"))
