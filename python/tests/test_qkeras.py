"""QKeras conformance: quantized_bits / quantized_relu semantics, QDense/QActivation, Keras 2 and qkeras-v3.

Conformance checks:
1. qkeras_3layer from the Keras 2 pair (json + weights.h5) gives byte-identical weights to
   models/qkeras_3layer/model.json, and, with input type fixed<32,6> and a softmax, reproduces QKeras's
   own predictions y_qkeras.npy[:8] on the 8 real jets to 1e-5 (interpreter; and fastml-compile predict
   when /tmp/fastml-compile exists).
2. qkeras-v3_3layer.keras (read by keras3.read_keras3) gives the same weights.
3. A small QKeras model exercising auto_po2 (kernel and bias), alpha='auto', alpha=0.5, symmetric,
   keep_negative=False, quantized_bits on the input, a fused quantized_relu activation: its QKeras 0.9.0
   outputs (generated once with tensorflow-cpu 2.14.1 + qkeras 0.9.0, embedded below) are reproduced
   exactly.
"""

from __future__ import annotations

import json
import os

import h5py
import numpy as np
import pytest

from fastml_export import ExportError, FixedType
from fastml_export.keras2 import read_keras2
from fastml_export.qkeras import (parse_quantizer, quantized_bits_activation_type, quantized_bits_weights,
                                  quantized_relu_type)
from fastml_export.registry import convert
from test_keras2 import REPO, compile_predict, ref, run_model, to_dict


# QKeras 0.9.0 model "qmix" (architecture without initializers/regularizers/constraints), its float32
# weights (hex; the last item of each list is the shape), 40 inputs on a 1/64 grid (x64 = 64 * x) and
# QKeras's float32 outputs of layer d4 (before the softmax), as hex.
QMIX = json.loads(r"""
{"arch":{"class_name":"Functional","config":{"name":"qmix",
"trainable":true,"layers":[{"module":"keras.layers","class_name":"InputLayer",
"config":{"batch_input_shape":[null,5],
"sparse":false,"ragged":false,"name":"x"},
"registered_name":null,"name":"x","inbound_nodes":[]},
{"module":"qkeras.qlayers","class_name":"QActivation","config":{"name":"inq",
"activation":"quantized_bits(10,3,alpha=1)"},
"registered_name":"QActivation","build_config":{"input_shape":[null,5]},
"name":"inq","inbound_nodes":[[["x",0,0,{}]]]},
{"module":"qkeras.qlayers","class_name":"QDense","config":{"name":"d1","units":6,"activation":"linear",
"use_bias":true,"kernel_quantizer":{"module":"qkeras.quantizers","class_name":"quantized_bits",
"config":{"bits":5,"integer":1,"symmetric":true,"alpha":"auto_po2",
"keep_negative":true,"use_stochastic_rounding":false,"qnoise_factor":1.0},
"registered_name":"quantized_bits"},
"bias_quantizer":{"module":"qkeras.quantizers","class_name":"quantized_bits",
"config":{"bits":8,"integer":2,"symmetric":0,"alpha":null,"keep_negative":true,"use_stochastic_rounding":false,"qnoise_factor":1.0},
"registered_name":"quantized_bits"}},
"registered_name":"QDense","build_config":{"input_shape":[null,5]},
"name":"d1","inbound_nodes":[[["inq",0,0,{}]]]},
{"module":"qkeras.qlayers","class_name":"QActivation","config":{"name":"r1",
"activation":{"module":"qkeras.quantizers","class_name":"quantized_relu",
"config":{"bits":7,"integer":2,"use_sigmoid":0,"negative_slope":0.0,"use_stochastic_rounding":false,"relu_upper_bound":null,"qnoise_factor":1.0},
"registered_name":"quantized_relu"}},
"registered_name":"QActivation","build_config":{"input_shape":[null,6]},
"name":"r1","inbound_nodes":[[["d1",0,0,{}]]]},
{"module":"qkeras.qlayers","class_name":"QDense","config":{"name":"d2",
"units":5,"activation":{"module":"qkeras.quantizers","class_name":"quantized_relu",
"config":{"bits":5,"integer":1,"use_sigmoid":0,"negative_slope":0.0,"use_stochastic_rounding":false,"relu_upper_bound":null,"qnoise_factor":1.0},
"registered_name":"quantized_relu"},
"use_bias":true,"kernel_quantizer":{"module":"qkeras.quantizers","class_name":"quantized_bits",
"config":{"bits":6,"integer":0,"symmetric":true,"alpha":"auto",
"keep_negative":true,"use_stochastic_rounding":false,"qnoise_factor":1.0},
"registered_name":"quantized_bits"},
"bias_quantizer":{"module":"qkeras.quantizers","class_name":"quantized_bits",
"config":{"bits":6,"integer":1,"symmetric":0,"alpha":null,"keep_negative":true,"use_stochastic_rounding":false,"qnoise_factor":1.0},
"registered_name":"quantized_bits"}},
"registered_name":"QDense","build_config":{"input_shape":[null,6]},
"name":"d2","inbound_nodes":[[["r1",0,0,{}]]]},
{"module":"qkeras.qlayers","class_name":"QDense","config":{"name":"d3","units":4,"activation":"linear",
"use_bias":false,"kernel_quantizer":{"module":"qkeras.quantizers","class_name":"quantized_bits",
"config":{"bits":3,"integer":0,"symmetric":true,"alpha":"auto_po2",
"keep_negative":true,"use_stochastic_rounding":false,"qnoise_factor":1.0},
"registered_name":"quantized_bits"},
"bias_quantizer":null},
"registered_name":"QDense","build_config":{"input_shape":[null,5]},
"name":"d3","inbound_nodes":[[["d2",0,0,{}]]]},
{"module":"qkeras.qlayers","class_name":"QActivation","config":{"name":"q3",
"activation":"quantized_bits(8,2,keep_negative=False)"},
"registered_name":"QActivation","build_config":{"input_shape":[null,4]},
"name":"q3","inbound_nodes":[[["d3",0,0,{}]]]},
{"module":"keras.layers","class_name":"Dropout","config":{"name":"drop",
"rate":0.1,"noise_shape":null,"seed":null},
"registered_name":null,"build_config":{"input_shape":[null,4]},
"name":"drop","inbound_nodes":[[["q3",0,0,{}]]]},
{"module":"qkeras.qlayers","class_name":"QDense","config":{"name":"d4","units":3,"activation":"linear",
"use_bias":true,"kernel_quantizer":{"module":"qkeras.quantizers","class_name":"quantized_bits",
"config":{"bits":6,"integer":0,"symmetric":1,"alpha":0.5,"keep_negative":true,"use_stochastic_rounding":false,"qnoise_factor":1.0},
"registered_name":"quantized_bits"},
"bias_quantizer":{"module":"qkeras.quantizers","class_name":"quantized_bits",
"config":{"bits":4,"integer":1,"symmetric":true,"alpha":"auto_po2",
"keep_negative":true,"use_stochastic_rounding":false,"qnoise_factor":1.0},
"registered_name":"quantized_bits"}},
"registered_name":"QDense","build_config":{"input_shape":[null,4]},
"name":"d4","inbound_nodes":[[["drop",0,0,{}]]]},
{"module":"keras.layers","class_name":"Activation","config":{"name":"sm","activation":"softmax"},
"registered_name":null,"build_config":{"input_shape":[null,3]},
"name":"sm","inbound_nodes":[[["d4",0,0,{}]]]}],
"input_layers":[["x",0,0]],
"output_layers":[["sm",0,0]]},
"keras_version":"2.14.0","backend":"tensorflow"},
"weights":{"d1":{"kernel":["0x1.c150fa0000000p-3","0x1.5d28c80000000p-1","0x1.bd8e8c0000000p-3",
"-0x1.1a88440000000p-1","0x1.72229e0000000p-2","0x1.bd4c0c0000000p-1","-0x1.1094d00000000p-2",
"-0x1.5525940000000p+0","0x1.9b2f940000000p-2","0x1.5aaed20000000p-1","0x1.b97d660000000p-3",
"-0x1.10995c0000000p-5","-0x1.5a5da40000000p-1","0x1.f099220000000p-2","-0x1.f468820000000p-2",
"0x1.608f140000000p-2","0x1.f433420000000p-1","-0x1.e67bdc0000000p-1","-0x1.ee4b8a0000000p-6",
"0x1.24cf800000000p-2","0x1.0d86740000000p-1","0x1.3248c40000000p-3","-0x1.7eefce0000000p-5",
"0x1.ca58cc0000000p-7","-0x1.81891a0000000p-4","0x1.62b2d80000000p-1","-0x1.df2ed60000000p-4",
"0x1.ba7de00000000p-1","-0x1.e3a6260000000p-1","-0x1.08245e0000000p-3",[5,6]],
"bias":["-0x1.8bc3440000000p-15","-0x1.aac1480000000p-13","-0x1.4c57fa0000000p-9","0x1.b0c2540000000p-8",
"0x1.480ad60000000p-8","0x1.03e0720000000p-6",[6]]},
"d2":{"kernel":["0x1.1a56ec0000000p-3","-0x1.26eca00000000p-2","-0x1.0a23180000000p-2",
"0x1.5f2c400000000p-3","-0x1.d5f1dc0000000p-2","-0x1.03d0040000000p-2","0x1.fdeef00000000p-1",
"0x1.6743ae0000000p-1","0x1.fb78840000000p-3","0x1.599cac0000000p-1","0x1.f2d1b40000000p-4",
"0x1.2ab8e80000000p-1","-0x1.96ab480000000p-1","0x1.20fc1e0000000p-5","-0x1.03fcea0000000p-1",
"-0x1.39202c0000000p-1","0x1.7362780000000p-6","0x1.0c954c0000000p-1","-0x1.beae200000000p-4",
"0x1.be67560000000p-2","-0x1.f98d220000000p-3","0x1.54c7600000000p-1","-0x1.6d35540000000p-1",
"0x1.81b22e0000000p-9","-0x1.ebd58e0000000p-2","-0x1.2250c40000000p-1","-0x1.6723f40000000p-3",
"-0x1.647dfc0000000p-8","-0x1.69c5600000000p-2","-0x1.839a060000000p-8",[6,5]],
"bias":["0x1.ee18580000000p-7","0x1.7cd5c00000000p-11","-0x1.fecff80000000p-7","-0x1.80b80a0000000p-7",
"0x1.e5be980000000p-7",[5]]},
"d3":{"kernel":["0x1.b7f55c0000000p-1","0x1.c42fde0000000p-3","-0x1.0fb4be0000000p-1",
"-0x1.fad2b80000000p-1","-0x1.eebb380000000p-4","-0x1.53604e0000000p-1","0x1.9c9f340000000p-4",
"-0x1.b6f2ce0000000p-1","0x1.299aba0000000p-3","0x1.f696e20000000p-1","-0x1.b59e020000000p-2",
"0x1.13890a0000000p-2","0x1.f028f20000000p-3","0x1.70b87a0000000p-4","-0x1.cd007c0000000p-3",
"0x1.f943520000000p-1","0x1.9a24bc0000000p-5","-0x1.9b86d00000000p-2","0x1.7b679a0000000p-2",
"-0x1.e42d1e0000000p-1",[5,4]]},
"d4":{"kernel":["-0x1.118cfa0000000p-3","0x1.d2c2740000000p-4","0x1.a6e8120000000p-1",
"-0x1.3ea1540000000p-1","0x1.143fa80000000p-2","0x1.6165660000000p-1","-0x1.c388ba0000000p-2",
"-0x1.683d1a0000000p-3","-0x1.4cab020000000p-1","-0x1.5b675c0000000p-3","-0x1.42eb540000000p-1",
"0x1.0000000000000p+0",[4,3]],
"bias":["0x1.3046900000000p-6","0x1.b31d160000000p-8","-0x1.620cd40000000p-6",[3]]}},
"x64":[[-58,214,110,103,68],
[62,186,-3,238,-122],
[-33,-176,-44,66,186],
[-85,1,-46,-95,-152],
[8,-222,14,3,-84],
[-129,-177,240,-172,199],
[77,-47,-148,133,221],
[-120,-38,135,43,256],
[-73,69,-160,268,-93],
[-283,-16,-18,245,-43],
[-2,76,203,-8,133],
[66,-38,10,4,-117],
[155,-177,150,122,-12],
[-98,-29,61,95,37],
[127,-71,30,-201,98],
[20,-53,149,89,-360],
[5,-186,137,319,-66],
[10,-32,45,83,165],
[-126,201,-119,35,148],
[91,-120,-90,-59,-7],
[147,-165,60,78,71],
[60,194,62,110,72],
[230,-243,164,-33,-36],
[-124,-239,-49,-88,63],
[-188,183,35,-32,-91],
[-101,-145,-70,1,-23],
[-181,-34,-114,20,239],
[80,-40,-208,-181,-216],
[93,-98,8,-80,12],
[179,-88,-44,-103,112],
[-131,-145,-178,-180,60],
[329,-127,122,32,-141],
[-35,-30,-88,247,-244],
[49,42,-74,19,112],
[20,53,89,-260,189],
[292,126,130,-180,-15],
[-104,-75,124,-103,-17],
[-244,-20,12,-90,-92],
[241,-155,-134,-104,153],
[269,43,-92,-55,136]],
"y":[["0x1.2000000000000p-7","0x1.3000000000000p-6","0x1.7c00000000000p-5"],
["0x1.4000000000000p-6","0x1.0000000000000p-7","-0x1.8000000000000p-6"],
["-0x1.b000000000000p-6","0x1.b800000000000p-5","0x1.1980000000000p-2"],
["0x1.3000000000000p-6","0x1.2000000000000p-7","-0x1.1800000000000p-6"],
["-0x1.c000000000000p-6","0x1.c000000000000p-5","0x1.2000000000000p-2"],
["-0x1.5000000000000p-6","0x1.8800000000000p-5","0x1.e500000000000p-3"],
["-0x1.8000000000000p-8","0x1.1000000000000p-5","0x1.2200000000000p-3"],
["-0x1.3000000000000p-6","0x1.7800000000000p-5","0x1.cb00000000000p-3"],
["0x1.4000000000000p-6","0x1.0000000000000p-7","-0x1.8000000000000p-6"],
["0x1.e000000000000p-7","0x1.a000000000000p-7","0x1.1000000000000p-7"],
["-0x1.6000000000000p-7","0x1.3800000000000p-5","0x1.6300000000000p-3"],
["0x1.4000000000000p-6","0x1.0000000000000p-7","-0x1.8000000000000p-6"],
["-0x1.0000000000000p-7","0x1.2000000000000p-5","0x1.3c00000000000p-3"],
["-0x1.0000000000000p-8","0x1.0000000000000p-5","0x1.0800000000000p-3"],
["-0x1.2000000000000p-6","0x1.7000000000000p-5","0x1.be00000000000p-3"],
["0x1.4000000000000p-6","0x1.0000000000000p-7","-0x1.8000000000000p-6"],
["-0x1.6000000000000p-7","0x1.3800000000000p-5","0x1.6300000000000p-3"],
["-0x1.5000000000000p-6","0x1.8800000000000p-5","0x1.e500000000000p-3"],
["0x1.2000000000000p-7","0x1.3000000000000p-6","0x1.7c00000000000p-5"],
["0x0.0p+0","0x1.c000000000000p-6","0x1.a800000000000p-4"],
["-0x1.5000000000000p-6","0x1.8800000000000p-5","0x1.e500000000000p-3"],
["0x1.3000000000000p-7","0x1.c000000000000p-9","-0x1.3e00000000000p-5"],
["0x1.0000000000000p-7","0x1.4000000000000p-6","0x1.b000000000000p-5"],
["-0x1.d000000000000p-6","0x1.c800000000000p-5","0x1.2680000000000p-2"],
["0x1.1000000000000p-6","0x1.6000000000000p-7","-0x1.2000000000000p-8"],
["0x1.0000000000000p-10","0x1.b000000000000p-6","0x1.8e00000000000p-4"],
["-0x1.6000000000000p-7","0x1.3800000000000p-5","0x1.6300000000000p-3"],
["0x1.4000000000000p-6","0x1.0000000000000p-7","-0x1.8000000000000p-6"],
["-0x1.8000000000000p-7","0x1.4000000000000p-5","0x1.7000000000000p-3"],
["-0x1.c000000000000p-7","0x1.5000000000000p-5","0x1.8a00000000000p-3"],
["0x1.5000000000000p-7","-0x1.4000000000000p-6","0x1.1c00000000000p-5"],
["-0x1.2000000000000p-8","-0x1.4000000000000p-9","-0x1.e600000000000p-5"],
["0x1.4000000000000p-6","0x1.0000000000000p-7","-0x1.8000000000000p-6"],
["0x1.0800000000000p-6","0x1.a000000000000p-8","-0x1.d400000000000p-6"],
["-0x1.6000000000000p-7","0x1.3800000000000p-5","0x1.6300000000000p-3"],
["0x1.4000000000000p-6","0x1.0000000000000p-7","-0x1.8000000000000p-6"],
["0x1.1000000000000p-6","0x1.6000000000000p-7","-0x1.2000000000000p-8"],
["0x1.1000000000000p-6","0x1.6000000000000p-7","-0x1.2000000000000p-8"],
["-0x1.8000000000000p-7","0x1.4000000000000p-5","0x1.7000000000000p-3"],
["0x1.e000000000000p-7","0x1.a000000000000p-7","0x1.1000000000000p-7"]]}
""")


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _dense_tensors(model: dict) -> dict:
    """{name: serialized weight and bias} of every Dense node, as model.json bytes."""
    out = {}
    for n in model["nodes"]:
        if n["op"] == "Dense":
            out[n["name"]] = json.dumps([n["weight"], n.get("bias")], separators=(",", ":"))
    return out


# ----------------------------------------------------------------------------------------------------
# conformance 1 and 2: the public QKeras jet tagger
# ----------------------------------------------------------------------------------------------------

def test_qkeras_3layer_weights_byte_identical():
    m = read_keras2(ref("example-models", "keras", "qkeras_3layer.json"),
                    ref("example-models", "keras", "qkeras_3layer_weights.h5"))
    ours = to_dict(convert(m))
    theirs = json.load(open(os.path.join(REPO, "models", "qkeras_3layer", "model.json")))
    assert _dense_tensors(ours) == _dense_tensors(theirs)
    ops = [(n["name"], n["op"], n.get("type")) for n in ours["nodes"]]
    assert ops[:4] == [("fc1_input", "Input", "fixed<16,6,TRN,WRAP>"), ("fc1", "Dense", None),
                       ("relu1", "ReLU", None), ("relu1_q", "Quantize", "ufixed<6,0,RND_CONV,SAT>")]
    assert [o for o in ops if o[1] == "Output"][0][0] == "softmax_out"
    # the Output reads the logits of the last QDense
    assert ours["nodes"][-1]["inputs"] == ["output"]


def test_qkeras_3layer_predictions_match_qkeras(tmp_path):
    m = read_keras2(ref("example-models", "keras", "qkeras_3layer.json"),
                    ref("example-models", "keras", "qkeras_3layer_weights.h5"))
    b = convert(m, precision="fixed<32,6>")
    model = to_dict(b)
    assert model["nodes"][0]["type"] == "fixed<32,6,TRN,WRAP>"
    x = np.loadtxt(ref("test-hls4ml-backend", "data_X_inputs.dat"))
    y = np.load(ref("hls4ml-super", "tb_data", "y_qkeras.npy"))[:8].astype(np.float64)
    (logits,) = run_model(model, x)
    assert np.max(np.abs(_softmax(logits) - y)) < 1e-5
    assert np.array_equal(np.argmax(logits, 1), np.argmax(y, 1))
    p = tmp_path / "model.json"
    b.write(str(p))
    z = compile_predict(p, x, tmp_path)
    if z is not None:
        assert np.array_equal(z, logits)
        assert np.max(np.abs(_softmax(z) - y)) < 1e-5


def test_qkeras_v3_keras3_file_same_weights():
    from fastml_export.keras3 import read_keras3

    m3 = read_keras3(ref("example-models", "keras", "qkeras-v3_3layer.keras"))
    assert {l.name: l.family for l in m3.layers}["fc1"] == "qkeras"
    ours = to_dict(convert(m3))
    theirs = json.load(open(os.path.join(REPO, "models", "qkeras_3layer", "model.json")))
    assert _dense_tensors(ours) == _dense_tensors(theirs)


def test_hector_model_3_qkeras_predicts_tutorial_classes():
    m = read_keras2(ref("hector-plata-hls4ml-tutorial", "model_3", "KERAS_check_best_model.h5"))
    (logits,) = run_model(to_dict(convert(m)), np.loadtxt(ref("test-hls4ml-backend", "data_X_inputs.dat")))
    assert np.argmax(logits, 1).tolist() == [0, 1, 2, 2, 2, 2, 1, 0]


# ----------------------------------------------------------------------------------------------------
# conformance 3: quantiser variety against QKeras 0.9.0's own outputs
# ----------------------------------------------------------------------------------------------------

def _write_keras2_pair(tmp_path, data):
    """Architecture JSON + weights HDF5 in Keras 2's save_weights layout, from the embedded data."""
    arch = tmp_path / "qmix.json"
    arch.write_text(json.dumps(data["arch"]))
    w = tmp_path / "qmix_weights.h5"
    with h5py.File(w, "w") as f:
        names = [l["config"]["name"] for l in data["arch"]["config"]["layers"]]
        f.attrs["layer_names"] = np.array([n.encode() for n in names])
        f.attrs["keras_version"] = b"2.14.0"
        f.attrs["backend"] = b"tensorflow"
        for lname in names:
            g = f.create_group(lname)
            ws = data["weights"].get(lname, {})
            g.attrs["weight_names"] = np.array([f"{lname}/{k}:0".encode() for k in ws])
            for k, vals in ws.items():
                shape = vals[-1]
                arr = np.array([float.fromhex(v) for v in vals[:-1]], dtype=np.float32).reshape(shape)
                g.create_dataset(f"{lname}/{k}:0", data=arr)
    return str(arch), str(w)


def test_qmix_matches_qkeras_exactly(tmp_path):
    arch, w = _write_keras2_pair(tmp_path, QMIX)
    m = read_keras2(arch, w)
    b = convert(m)
    model = to_dict(b)
    x = np.array(QMIX["x64"], dtype=np.float64) / 64
    y = np.array([[float.fromhex(v) for v in r] for r in QMIX["y"]])
    (z,) = run_model(model, x)
    assert np.array_equal(z, y)
    by = {n["name"]: n for n in model["nodes"]}
    # quantized_bits(10,3) on the input is the Input type itself (round half even, saturate)
    assert by["x"]["type"] == "fixed<10,4,RND_CONV,SAT>" and "inq" not in by and "inq_q" not in by
    # auto_po2: per-channel power-of-two scales -> per-element types of 5 bits
    d1 = by["d1"]["weight"]
    assert "types" in d1 and {t.split(",")[0] for t in d1["types"]} == {"fixed<5"}
    # fused quantized_relu activation of a QDense
    assert by["d2_relu_q"]["type"] == "ufixed<5,1,RND_CONV,SAT>"
    assert by["q3_q"]["type"] == "ufixed<8,2,RND_CONV,SAT>"
    p = tmp_path / "model.json"
    b.write(str(p))
    zc = compile_predict(p, x, tmp_path)
    if zc is not None:
        assert np.array_equal(zc, y)


# ----------------------------------------------------------------------------------------------------
# quantiser units
# ----------------------------------------------------------------------------------------------------

def test_parse_quantizer_forms():
    assert parse_quantizer("quantized_bits(6,0,alpha=1)", "t") == ("quantized_bits", {"bits": 6, "integer": 0, "alpha": 1})
    assert parse_quantizer("quantized_relu(6)", "t") == ("quantized_relu", {"bits": 6})
    assert parse_quantizer({"class_name": "quantized_bits", "config": {"bits": 4}}, "t") == ("quantized_bits", {"bits": 4})
    assert parse_quantizer({"module": "qkeras.quantizers", "class_name": "qkeras>quantized_relu", "config": {}}, "t")[0] == "quantized_relu"
    assert parse_quantizer("relu", "t") == ("relu", {})
    assert parse_quantizer(None, "t") is None
    with pytest.raises(ExportError):
        parse_quantizer("quantized_bits(6,", "t")
    with pytest.raises(ExportError):
        parse_quantizer("__import__('os')", "t")


def test_quantized_bits_integer_convention_and_ties():
    # bits=6, integer=0: step 1/32, range [-1, 31/32]; ties to even; +1.0 clips to 31/32
    w = np.array([1 / 64, 3 / 64, -1 / 64, 1.0, -1.0, -2.0, 0.49], dtype=np.float32)
    v, t = quantized_bits_weights(w, ("quantized_bits", {"bits": 6, "integer": 0, "alpha": 1}), "t")
    assert t[0] == FixedType(True, 6, 1)
    assert (v * 32).tolist() == [0, 2, 0, 31, -32, -32, 16]
    # symmetric: -m excluded
    v, _ = quantized_bits_weights(w, ("quantized_bits", {"bits": 6, "integer": 0, "symmetric": 1}), "t")
    assert (v * 32).tolist()[4:6] == [-31, -31]
    # unsigned: ufixed<bits, integer>
    v, t = quantized_bits_weights(np.array([0.3, -0.2, 5.0], np.float32),
                                  ("quantized_bits", {"bits": 4, "integer": 1, "keep_negative": False}), "t")
    assert t[0] == FixedType(False, 4, 1) and (v * 8).tolist() == [2, 0, 15]


def test_quantized_bits_alpha_scaling():
    w = np.array([[0.3, -0.7], [0.1, 0.5]], np.float32)
    v1, _ = quantized_bits_weights(w, ("quantized_bits", {"bits": 4, "integer": 0}), "t")
    v2, _ = quantized_bits_weights(w, ("quantized_bits", {"bits": 4, "integer": 0, "alpha": 0.25}), "t")
    assert np.array_equal(v2, v1 * 0.25)
    v3, _ = quantized_bits_weights(w, ("quantized_bits", {"bits": 4, "integer": 0, "alpha": [1.0, 2.0]}), "t")
    assert np.array_equal(v3, v1 * np.array([1.0, 2.0]))


def test_quantized_relu_and_activation_types():
    assert quantized_relu_type({"bits": 6, "integer": 0}, "t") == FixedType(False, 6, 0, "RND_CONV", "SAT")
    assert quantized_relu_type({"bits": 8, "integer": 3, "relu_upper_bound": 2.0}, "t") == FixedType(False, 8, 3, "RND_CONV", "SAT")
    with pytest.raises(ExportError, match="negative_slope"):
        quantized_relu_type({"bits": 6, "negative_slope": 0.25}, "t")
    with pytest.raises(ExportError, match="use_sigmoid"):
        quantized_relu_type({"bits": 6, "use_sigmoid": 1}, "t")
    with pytest.raises(ExportError, match="qnoise_factor"):
        quantized_relu_type({"bits": 6, "qnoise_factor": 0.5}, "t")
    t, s = quantized_bits_activation_type({"bits": 8, "integer": 3}, "t")
    assert t == FixedType(True, 8, 4, "RND_CONV", "SAT") and s is None
    t, s = quantized_bits_activation_type({"bits": 8, "integer": 3, "alpha": 4}, "t")
    assert s == 4.0
    for bad in ({"bits": 8, "alpha": "auto_po2"}, {"bits": 8, "symmetric": 1}, {"bits": 8, "alpha": 0.3},
                {"bits": 1}):
        with pytest.raises(ExportError):
            quantized_bits_activation_type(bad, "t")


def test_unsupported_quantizers_are_clear_errors():
    with pytest.raises(ExportError, match="quantized_po2 is not supported"):
        quantized_bits_weights(np.zeros(3, np.float32), ("quantized_po2", {}), "t")
    with pytest.raises(ExportError, match="post_training_scale"):
        quantized_bits_weights(np.ones((2, 2), np.float32),
                               ("quantized_bits", {"bits": 4, "alpha": "auto_po2", "post_training_scale": [1.0, 1.0]}), "t")


def test_qactivation_tanh_is_refused(tmp_path):
    arch, w = _write_keras2_pair(tmp_path, QMIX)
    a = json.loads(open(arch).read())
    for l in a["config"]["layers"]:
        if l["config"]["name"] == "r1":
            l["config"]["activation"] = "quantized_tanh(4)"
    open(arch, "w").write(json.dumps(a))
    with pytest.raises(ExportError, match="quantized_tanh is not supported"):
        convert(read_keras2(arch, w))
