"""Keras 2 reader (keras2.py) and the exact model.json interpreter the other tests use.

Reference files come from ../shared/reference (see its SOURCES.md); tests that need them skip when absent.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess

import numpy as np
import pytest

from fastml_export import ExportError
from fastml_export.keras2 import parse_architecture, read_keras2, sibling_weights
from fastml_export.registry import convert

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
REF = os.path.normpath(os.path.join(REPO, "..", "shared", "reference"))
KERAS = os.path.join(REF, "example-models", "keras")
COMPILER = os.environ.get("FASTML_COMPILE", "/tmp/fastml-compile")


def ref(*parts):
    p = os.path.join(REF, *parts)
    if not os.path.exists(p):
        pytest.skip(f"reference file {p} not present")
    return p


def have_compiler() -> bool:
    return os.path.isfile(COMPILER) and os.access(COMPILER, os.X_OK)


# ----------------------------------------------------------------------------------------------------
# an exact interpreter of model.json v1 (float64; every value here has far fewer than 53 bits)
# ----------------------------------------------------------------------------------------------------

TYPE_RE = re.compile(r"^(?:ap_)?(u?)fixed<(-?\d+),(-?\d+)(?:,(?:AP_)?(\w+))?(?:,(?:AP_)?(\w+))?>$")


def parse_type(s):
    m = TYPE_RE.match(s.replace(" ", ""))
    assert m, s
    u, w, i, q, o = m.groups()
    return (u == "", int(w), int(i), q or "TRN", o or "WRAP")


def mant_range(t):
    signed, w, _, _, _ = t
    return (-(2 ** (w - 1)), 2 ** (w - 1) - 1) if signed else (0, 2 ** w - 1)


def tensor_values(t):
    data = np.asarray(t["data"], dtype=np.float64)
    types = t.get("types") or [t["type"]] * len(data)
    out = np.empty(len(data))
    for k, (d, ts) in enumerate(zip(data, types)):
        ty = parse_type(ts)
        lo, hi = mant_range(ty)
        assert lo <= d <= hi, (d, ts)
        out[k] = math.ldexp(d, -(ty[1] - ty[2]))
    return out.reshape(t["shape"])


def quantize(x, ty):
    signed, w, i, q, o = ty
    f = w - i
    s = np.ldexp(x, f)
    assert np.all(np.abs(s) < 2.0 ** 52)
    fl = np.floor(s)
    r = s - fl
    tie = r == 0.5
    near = np.floor(s + 0.5)
    if q == "TRN":
        m = fl
    elif q == "TRN_ZERO":
        m = np.trunc(s)
    elif q == "RND":
        m = near
    elif q == "RND_ZERO":
        m = np.where(tie, np.trunc(s), near)
    elif q == "RND_INF":
        m = np.where(tie, np.where(s > 0, fl + 1, fl), near)
    elif q == "RND_MIN_INF":
        m = np.where(tie, fl, near)
    elif q == "RND_CONV":
        m = np.rint(s)
    else:
        raise ValueError(q)
    lo, hi = mant_range(ty)
    if o == "WRAP":
        m = np.mod(m - lo, 2.0 ** w) + lo
    elif o == "SAT":
        m = np.clip(m, lo, hi)
    elif o == "SAT_ZERO":
        m = np.where((m < lo) | (m > hi), 0.0, m)
    elif o == "SAT_SYM":
        m = np.clip(m, -hi if signed else 0, hi)
    else:
        raise ValueError(o)
    return np.ldexp(m, -f)


def quantize_cols(x, node):
    if "types" in node:
        return np.stack([quantize(x[:, k], parse_type(t)) for k, t in enumerate(node["types"])], axis=1)
    return quantize(x, parse_type(node["type"]))


def run_model(model, x, quantize_input=True):
    """Forward pass of a model.json dict on a batch x (rows); returns the list of outputs."""
    nodes = {n["name"]: n for n in model["nodes"]}
    vals = {}

    def ev(name):
        if name in vals:
            return vals[name]
        n = nodes[name]
        op = n["op"]
        if op == "Input":
            v = quantize_cols(np.asarray(x, dtype=np.float64), n) if quantize_input else np.asarray(x, dtype=np.float64)
        else:
            a = ev(n["inputs"][0])
            if op == "Dense":
                w = tensor_values(n["weight"])
                assert np.max(np.abs(a) @ np.abs(w), initial=0) < 2.0 ** 40
                v = a @ w
                if "bias" in n:
                    v = v + tensor_values(n["bias"])
            elif op == "BatchNorm":
                v = a * tensor_values(n["scale"]) + tensor_values(n["shift"])
            elif op == "ReLU":
                v = np.maximum(a, 0.0)
            elif op == "Quantize":
                v = quantize_cols(a, n)
            elif op == "Output":
                v = a
            else:
                raise ValueError(op)
        vals[name] = v
        return v

    return [ev(n["name"]) for n in model["nodes"] if n["op"] == "Output"]


def to_dict(builder):
    return json.loads(builder.to_json())


def compile_predict(model_json_path, x, tmp_path):
    """Run `fastml-compile predict`; returns the outputs or None when the compiler is absent."""
    if not have_compiler():
        return None
    xin = tmp_path / "x.dat"
    np.savetxt(xin, x, fmt="%.17g")
    out = subprocess.run([COMPILER, "predict", "--input", str(xin), str(model_json_path)],
                         capture_output=True, text=True, check=True).stdout
    return np.loadtxt(out.splitlines(), ndmin=2)


# ----------------------------------------------------------------------------------------------------
# reader tests
# ----------------------------------------------------------------------------------------------------

def test_json_plus_weights_sequential():
    m = read_keras2(ref("example-models", "keras", "qkeras_3layer.json"),
                    ref("example-models", "keras", "qkeras_3layer_weights.h5"))
    assert m.keras_version == 2
    assert [l.name for l in m.layers] == ["fc1_input", "fc1", "relu1", "fc2", "relu2", "fc3", "relu3", "output", "softmax"]
    assert [l.family for l in m.layers] == ["keras", "qkeras", "qkeras", "qkeras", "qkeras", "qkeras", "qkeras", "qkeras", "keras"]
    fc1 = m.layer("fc1")
    assert sorted(fc1.weights) == ["bias", "kernel"]
    assert fc1.weights["kernel"].shape == (16, 64) and fc1.weights["kernel"].dtype == np.float32
    assert m.layer("relu1").inbound == ["fc1"]
    assert m.extra["outputs"] == ["softmax"]
    assert m.input_shape == (16,)


def test_sibling_weights_are_found():
    p = ref("example-models", "keras", "qkeras_3layer.json")
    assert sibling_weights(p).endswith("qkeras_3layer_weights.h5")
    m = read_keras2(p)
    assert m.layer("output").weights["kernel"].shape == (32, 5)


def test_functional_json_keras_2_0():
    m = read_keras2(ref("example-models", "keras", "KERAS_3layer.json"),
                    ref("example-models", "keras", "KERAS_3layer_weights.h5"))
    assert [l.class_name for l in m.layers] == ["InputLayer", "Dense", "Dense", "Dense", "Dense"]
    assert all(l.family == "keras" for l in m.layers)
    assert m.layer("fc2_relu").inbound == ["fc1_relu"]
    assert m.extra["outputs"] == ["output_softmax"]


def test_full_model_h5_and_hgq_family():
    m = read_keras2(ref("example-models", "keras", "hgq_jet_classifier.h5"))
    assert m.extra["hgq1_proxy"] is True
    assert {l.family for l in m.layers} == {"hgq1"}
    q = m.layer("inp_q_quantizer")
    assert sorted(q.weights) == ["bits", "integers", "keep_negative"]
    assert q.weights["bits"].dtype == np.int8 and q.weights["bits"].shape == (1, 16)
    assert m.extra["outputs"] == ["dense_4_quantizer"]


def test_full_model_h5_sequential_tf211():
    m = read_keras2(ref("hector-plata-hls4ml-tutorial", "model_3", "KERAS_check_best_model.h5"))
    assert [l.class_name for l in m.layers][:3] == ["InputLayer", "QDense", "QActivation"]
    assert m.layer("fc1").weights["kernel"].shape == (16, 64)


def test_weights_only_h5_is_refused():
    with pytest.raises(ExportError, match="only weights"):
        read_keras2(ref("example-models", "keras", "KERAS_3layer_weights.h5"))


def test_wrong_weights_file_is_refused():
    with pytest.raises(ExportError, match="no weights for layer"):
        read_keras2(ref("example-models", "keras", "KERAS_3layer.json"),
                    ref("example-models", "keras", "qkeras_3layer_weights.h5"))


def test_not_json_and_not_hdf5(tmp_path):
    p = tmp_path / "m.json"
    p.write_text('{"class_name": "Model", "config": {"layers": [')
    with pytest.raises(ExportError, match="invalid JSON"):
        read_keras2(str(p), ref("example-models", "keras", "KERAS_3layer_weights.h5"))
    h = tmp_path / "m.h5"
    h.write_bytes(b"\x89HDF\r\n\x1a\ngarbage")
    with pytest.raises(ExportError, match="HDF5"):
        read_keras2(str(h))


def _dense(name, units, inbound=None, **cfg):
    d = {"class_name": "Dense", "config": {"name": name, "units": units, "activation": "linear", "use_bias": True, **cfg}}
    if inbound is not None:
        d["inbound_nodes"] = inbound
    return d


def test_sequential_without_inputlayer_keras_2_0_list_config():
    arch = {"class_name": "Sequential", "keras_version": "2.0.5",
            "config": [_dense("a", 3, batch_input_shape=[None, 4]), _dense("b", 2)]}
    name, specs, outputs, shape, major = parse_architecture(arch, "t")
    assert [s[0] for s in specs] == ["a_input", "a", "b"]
    assert specs[2][4] == ["a"] and outputs == ["b"] and shape == (4,)


def test_functional_topological_order_and_keras3_inbound():
    inp = {"class_name": "InputLayer", "config": {"name": "x", "batch_shape": [None, 4]}, "inbound_nodes": []}
    k3 = lambda src: [{"args": [{"class_name": "__keras_tensor__", "config": {"keras_history": [src, 0, 0]}}], "kwargs": {}}]
    arch = {"class_name": "Functional", "config": {
        "name": "f", "layers": [_dense("b", 2, k3("a")), _dense("a", 3, k3("x")), inp],
        "input_layers": [["x", 0, 0]], "output_layers": [["b", 0, 0]]}}
    _, specs, outputs, shape, _ = parse_architecture(arch, "t")
    assert [s[0] for s in specs] == ["x", "a", "b"] and outputs == ["b"] and shape == (4,)


@pytest.mark.parametrize("mutate, message", [
    (lambda a: a["config"]["layers"][1].__setitem__("inbound_nodes", [[["x", 0, 0, {}]], [["x", 0, 0, {}]]]), "shared"),
    (lambda a: a["config"]["layers"].append({"class_name": "Sequential", "config": {"name": "sub", "layers": []}}), "nested"),
    (lambda a: a["config"]["layers"].append({"class_name": "InputLayer", "config": {"name": "y", "batch_input_shape": [None, 2]}, "inbound_nodes": []}), "input layers"),
    (lambda a: a["config"]["layers"][1].__setitem__("inbound_nodes", [[["nope", 0, 0, {}]]]), "unknown layer"),
])
def test_graph_errors(mutate, message):
    arch = {"class_name": "Model", "config": {"name": "m", "layers": [
        {"class_name": "InputLayer", "config": {"name": "x", "batch_input_shape": [None, 4]}, "inbound_nodes": []},
        _dense("a", 3, [[["x", 0, 0, {}]]])], "input_layers": [["x", 0, 0]], "output_layers": [["a", 0, 0]]}}
    mutate(arch)
    with pytest.raises(ExportError, match=message):
        parse_architecture(arch, "t")


def test_unsupported_layer_is_a_clear_error(tmp_path):
    arch = json.load(open(ref("example-models", "keras", "KERAS_3layer.json")))
    arch["config"]["layers"][2]["class_name"] = "Conv2D"
    p = tmp_path / "conv.json"
    p.write_text(json.dumps(arch))
    m = read_keras2(str(p), ref("example-models", "keras", "KERAS_3layer_weights.h5"))
    with pytest.raises(ExportError, match=r"layer 'fc2_relu' of class Conv2D \(keras\) is not supported"):
        convert(m, precision="fixed<16,6>")


def test_interpreter_agrees_with_compiler(tmp_path):
    """The test interpreter above and fastml-compile's golden model agree (when the compiler exists)."""
    p = os.path.join(REPO, "models", "qkeras_3layer", "model.json")
    if not os.path.exists(p) or not have_compiler():
        pytest.skip("needs models/qkeras_3layer/model.json and the compiler")
    x = np.loadtxt(ref("test-hls4ml-backend", "data_X_inputs.dat"))
    x = np.round(x * 2**10) / 2**10
    (ours,) = run_model(json.load(open(p)), x)
    assert np.array_equal(compile_predict(p, x, tmp_path), ours)


# ----------------------------------------------------------------------------------------------------
# live models (a stand-in with the Keras 2 API: get_config, layers, layer.weights, layer.get_weights)
# ----------------------------------------------------------------------------------------------------

class _Var:
    def __init__(self, name):
        self.name = name


class _Layer:
    def __init__(self, name, weights):
        self.name = name
        self.weights = [_Var(f"{name}/{k}:0") for k in weights]
        self._values = list(weights.values())

    def get_weights(self):
        return self._values


class Sequential:  # the class name is what from_live looks at
    def __init__(self, arch, weights):
        self._arch = arch
        self.name = "live"
        self.layers = [_Layer(l["config"]["name"], weights.get(l["config"]["name"], {}))
                       for l in arch["config"]["layers"]]

    def get_config(self):
        return self._arch["config"]


def test_live_model_exports_like_its_file():
    from fastml_export.live import from_live

    jpath = ref("example-models", "keras", "qkeras_3layer.json")
    filed = read_keras2(jpath, ref("example-models", "keras", "qkeras_3layer_weights.h5"))
    arch = json.load(open(jpath))
    live = Sequential(arch, {l.name: l.weights for l in filed.layers})
    km = from_live(live)
    assert [l.name for l in km.layers] == [l.name for l in filed.layers]
    a, b = to_dict(convert(km)), to_dict(convert(filed))
    assert a["nodes"] == b["nodes"]
    with pytest.raises(ExportError, match="expected a Keras model"):
        from_live(object())
