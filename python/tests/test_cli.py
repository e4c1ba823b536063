"""The `fastml-export` command line, the `export()` API, and HGQ v1 proxy models.

HGQ v1 conformance: hgq_jet_classifier.h5 (an HGQ v1 proxy model) is exported and its outputs equal
the proxy model's own Keras outputs bit for bit. The vectors below (8 real jets and 24 random rows on a
2^-12 grid, x4096 = 4096 * x; outputs y64 = 64 * y) were generated once by loading the file in
tf.keras 2.14 with HGQ 0.2.6's FixedPointQuantizer and calling model.predict.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from fastml_export import export
from fastml_export.cli import main
from test_keras2 import COMPILER, compile_predict, have_compiler, ref, run_model

HGQ_VECTORS = {
  'x4096': [
    [-489,1664,-4262,-3378,-3094,-2380,8138,6300,8138,2586,1571,-825,4341,1674,-4178,-738],
    [1265,930,-4735,-3466,-4238,-2539,750,2441,750,6973,8360,9924,6244,7649,-5046,-4895],
    [-5183,2734,5770,5739,6462,5295,506,111,506,1346,2132,3004,2261,2386,5363,7197],
    [-4362,2795,8904,9151,8399,9633,-544,935,-544,3714,4550,6606,3734,5717,7424,3985],
    [-6228,3593,9929,11343,8170,7293,-1466,-1250,-1466,2146,4322,4603,1734,1509,7202,6253],
    [-1045,1445,1704,-111,2384,706,621,959,621,3187,2779,3631,2036,1908,-428,2285],
    [2004,-2312,-1707,-1940,648,-804,6467,2190,6467,-1588,-2689,-2324,1406,584,-1140,3608],
    [-4060,2863,-1358,-2291,478,-497,4362,6492,4362,4681,3097,2337,4616,4554,-892,3608],
    [16719,-20936,3425,-4651,-3708,-1766,-16548,-1900,-7088,27222,1850,-2889,-2304,-5473,-8644,-3201],
    [3948,-1954,7846,-1637,199,12663,4466,-4139,-1498,4428,15852,-2209,-1995,8211,-7262,-2390],
    [7230,4754,750,5489,-23168,8367,-7861,-13669,2265,5739,-3644,-8818,214,-432,11515,6123],
    [1588,9106,-1684,-7585,4785,4772,-1760,-6413,1877,-20430,5654,4025,-13426,503,-7898,6203],
    [-16664,-7492,5813,9473,-17678,-4080,2687,-4991,13031,-9759,2904,-8589,11518,-177,-3049,-14075],
    [13778,6167,6173,9322,2861,-5237,-6556,-6555,11224,-11963,-4885,-2632,1840,4713,-10233,-14172],
    [-36,9942,6202,1767,-2598,2402,-1993,6695,-6508,1100,-908,4451,1840,20890,12277,12261],
    [-16708,-2788,-4986,4364,-18670,9621,8741,-10667,-8016,-6563,355,5251,16776,-1617,6287,1273],
    [14417,6080,11211,-8828,-1575,-6666,12329,5387,-2500,-3707,3970,-5747,-7623,3943,20178,-2016],
    [-4554,-9594,-10936,4301,6970,75,2724,950,1136,-12502,-3753,913,-6416,-3903,-6710,-2732],
    [6989,-3331,-1261,6666,5282,13887,-17125,7019,-3951,1103,6863,8874,8514,1271,13186,-2318],
    [-1155,6548,-4517,17702,8349,17822,-218,-3138,1368,6018,-4812,3111,-138,13236,-5429,8570],
    [-5275,-7870,-5819,-9750,1199,8448,1346,5114,13371,2212,1599,-2253,-13175,6224,-14389,5347],
    [-117,9231,-555,-6744,2932,-4589,-1482,343,-1102,-1547,-6819,-1549,-17517,-1289,-9814,9177],
    [10403,-15983,1187,-1035,-8575,4355,-3782,-14480,-2185,-1214,872,-10086,5044,6025,-9387,-5397],
    [-658,-4636,14285,1707,-8279,-6456,-471,18807,-1460,1044,4211,-329,18683,-4354,6097,1314],
    [5089,-9639,14484,-996,280,-7659,-5978,4622,8081,6171,9904,5853,233,6853,4863,-824],
    [5948,10532,1922,-2918,5888,15571,-1725,-756,-1117,10019,-15050,2997,9767,-6663,12198,4385],
    [-4498,1672,-12571,-4633,14966,-7322,15111,-668,8148,360,-18362,-4691,1555,-9429,-11038,3000],
    [-5320,-13892,-5604,7051,-3881,7658,12511,266,-9254,-10662,-215,7218,2204,4483,-3632,2461],
    [-3861,-2667,-10586,-12880,-3948,-9073,-7854,5497,-877,23873,7589,-5187,6373,2923,-5617,9032],
    [-6351,-25054,6505,-5057,12174,-5322,-9678,12685,-8810,1666,11876,938,-660,839,6874,-6609],
    [5002,4727,19110,-2757,-7494,6027,-3254,2368,1086,9571,-5381,-756,-20907,-7292,12586,-5583],
    [-5746,-9977,4750,1458,-9723,5468,2131,6177,-5255,14238,3358,-958,-4250,-2006,7035,-2203]],
  'y64': [
    [94,54,-18,-16,-94],
    [-16,130,18,3,-226],
    [238,220,12,67,368],
    [288,306,78,175,586],
    [238,248,46,115,438],
    [168,138,-8,21,188],
    [88,30,-18,-13,-22],
    [188,0,-48,-33,-12],
    [188,134,-54,-41,150],
    [188,134,-54,-41,150],
    [528,-102,-150,-101,22],
    [188,134,-54,-41,150],
    [188,134,-54,-41,150],
    [228,196,-18,21,298],
    [358,-50,-98,-67,6],
    [462,-106,-158,-87,-2],
    [218,-8,-56,-39,-8],
    [188,134,-54,-41,150],
    [248,40,-80,-65,52],
    [188,134,-54,-41,150],
    [188,134,-54,-41,150],
    [188,134,-54,-41,150],
    [188,134,-54,-41,150],
    [152,74,-86,-55,54],
    [-198,-200,-106,313,74],
    [428,-72,-120,-81,12],
    [-194,-360,194,149,54],
    [198,132,-56,-43,152],
    [736,-86,-206,-148,-174],
    [-248,-138,14,-5,-190],
    [238,14,-70,-53,22],
    [362,-76,-128,-67,-12]],
}


def run_cli(*args):
    """Run the CLI as a separate process (what a user sees): (exit code, stdout, stderr)."""
    env = dict(os.environ)
    here = os.path.dirname(os.path.abspath(__file__))
    env["PYTHONPATH"] = os.path.join(here, "..") + os.pathsep + env.get("PYTHONPATH", "")
    p = subprocess.run([sys.executable, "-m", "fastml_export.cli", *map(str, args)], capture_output=True, text=True, env=env)
    return p.returncode, p.stdout, p.stderr


# ----------------------------------------------------------------------------------------------------
# happy paths
# ----------------------------------------------------------------------------------------------------

def test_cli_json_pair(tmp_path):
    out = tmp_path / "m.json"
    rc, _, err = run_cli(ref("example-models", "keras", "qkeras_3layer.json"),
                         ref("example-models", "keras", "qkeras_3layer_weights.h5"), "-o", out, "--name", "jet")
    assert rc == 0, err
    d = json.load(open(out))
    assert d["format"] == "fastml-model" and d["version"] == 1 and d["name"] == "jet"
    assert "note: softmax: final softmax dropped" in err and "wrote" in err


def test_cli_keras3_and_quiet(tmp_path):
    out = tmp_path / "m.json"
    rc, so, err = run_cli(ref("example-models", "keras", "qkeras-v3_3layer.keras"), "-o", out, "-q")
    assert rc == 0 and so == "" and err == ""
    assert json.load(open(out))["nodes"][1]["weight"]["type"] == "fixed<6,1>"


def test_cli_hls4ml_config_and_precision(tmp_path):
    h5 = ref("hector-plata-hls4ml-tutorial", "model_1", "KERAS_check_best_model.h5")
    cfg = ref("hector-plata-hls4ml-tutorial", "model_1", "hls4ml_prj", "hls4ml_config.yml")
    a, b, c = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    assert run_cli(h5, "--hls4ml-config", cfg, "-o", a, "-q")[0] == 0
    assert run_cli(h5, "--precision", "fixed<16,6>", "-o", b, "-q")[0] == 0
    assert json.load(open(a))["nodes"][1:] == json.load(open(b))["nodes"][1:]
    assert run_cli(h5, "--precision", "fixed<16,6>", "--exact-sums", "-o", c, "-q")[0] == 0
    assert "fc1_fanout" not in open(c).read() and "fc1_fanout" in open(b).read()
    rc, _, err = run_cli(h5, "--precision", "fixed<16,6>", "--hls4ml-config", cfg, "-o", c)
    assert rc == 2  # argparse: mutually exclusive


def test_in_process_main(tmp_path, capsys):
    out = tmp_path / "m.json"
    assert main([ref("example-models", "keras", "hgq_jet_classifier.h5"), "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().err


def test_export_api(tmp_path):
    out = tmp_path / "m.json"
    assert export(ref("example-models", "keras", "KERAS_3layer.json"), str(out), precision="fixed<12,4>",
                  weights=ref("example-models", "keras", "KERAS_3layer_weights.h5"), name="k3") == str(out)
    d = json.load(open(out))
    assert d["name"] == "k3" and d["nodes"][0]["type"] == "fixed<12,4,TRN,WRAP>"


# ----------------------------------------------------------------------------------------------------
# HGQ v1 proxy
# ----------------------------------------------------------------------------------------------------

def test_hgq_jet_classifier_exact(tmp_path):
    out = tmp_path / "hgq.json"
    rc, _, err = run_cli(ref("example-models", "keras", "hgq_jet_classifier.h5"), "-o", out)
    assert rc == 0, err
    d = json.load(open(out))
    by = {n["name"]: n for n in d["nodes"]}
    # the input quantiser becomes the Input's per-element types (TRN, WRAP); no separate Quantize
    assert len(by["input_1"]["types"]) == 16 and by["input_1"]["types"][0] == "fixed<6,4,TRN,WRAP>"
    assert "inp_q_quantizer" not in by
    assert by["dense_1"]["weight"]["type"] == "fixed<10,5>"  # = the proxy's own weight_t
    assert by["dense_1_quantizer"]["type"] == "fixed<12,9,TRN,WRAP>"
    # bits == 0 elements are zeroed
    assert by["dense_1_relu_quantizer_zero"]["op"] == "BatchNorm"
    x = np.array(HGQ_VECTORS["x4096"], dtype=np.float64) / 4096
    y = np.array(HGQ_VECTORS["y64"], dtype=np.float64) / 64
    (z,) = run_model(d, x)
    assert np.array_equal(z, y)
    if have_compiler():
        assert np.array_equal(compile_predict(out, x, tmp_path), y)
        rc = subprocess.run([COMPILER, str(out), "-o", str(tmp_path / "rtl"), "-q"]).returncode
        assert rc == 0 and os.path.exists(tmp_path / "rtl" / "report.json")


# ----------------------------------------------------------------------------------------------------
# hostile input: always `error: <file>: <message>` and exit code 2, never a traceback
# ----------------------------------------------------------------------------------------------------

def _assert_clean_error(rc, err, fragment):
    assert rc == 2
    assert err.startswith("error: ") and fragment in err, err
    assert "Traceback" not in err


def test_unsupported_layer(tmp_path):
    arch = json.load(open(ref("example-models", "keras", "KERAS_3layer.json")))
    arch["config"]["layers"][2]["class_name"] = "Conv2D"
    p = tmp_path / "conv.json"
    p.write_text(json.dumps(arch))
    rc, _, err = run_cli(p, ref("example-models", "keras", "KERAS_3layer_weights.h5"), "-o", tmp_path / "o.json")
    _assert_clean_error(rc, err, f"error: {p}: layer 'fc2_relu' of class Conv2D (keras) is not supported")
    assert not (tmp_path / "o.json").exists()


@pytest.mark.parametrize("content, fragment", [
    (b'{"class_name": "Model", "config": {"layers": [', "invalid JSON at line 1"),
    (b'{"class_name": "Model", "config": {"layers": [{"class_name": "Dense", "config": {}}]}}', "input layers"),
    (b'{"format": "fastml-model", "version": 1, "nodes": []}', "already a fastml-compile model.json"),
    (b'[1, 2, 3]', "not a Keras model description"),
    (b'{"class_name": "Model", "config": {"layers": 5}}', "no layers"),
])
def test_malformed_json(tmp_path, content, fragment):
    p = tmp_path / "bad.json"
    p.write_bytes(content)
    rc, _, err = run_cli(p, ref("example-models", "keras", "KERAS_3layer_weights.h5"), "-o", tmp_path / "o.json")
    _assert_clean_error(rc, err, fragment)


@pytest.mark.parametrize("name, content, fragment", [
    ("bad.h5", b"\x89HDF\r\n\x1a\nnot really hdf5", "cannot read"),
    ("bad.keras", b"PK\x03\x04 truncated zip", ""),
    ("empty.h5", b"", "cannot read"),
    ("text.bin", b"hello", "unknown file kind"),
])
def test_malformed_files(tmp_path, name, content, fragment):
    p = tmp_path / name
    p.write_bytes(content)
    rc, _, err = run_cli(p, "-o", tmp_path / "o.json")
    _assert_clean_error(rc, err, fragment)


def test_other_user_errors(tmp_path):
    o = tmp_path / "o.json"
    rc, _, err = run_cli(tmp_path / "missing.h5", "-o", o)
    _assert_clean_error(rc, err, "no such file")
    rc, _, err = run_cli(ref("example-models", "keras", "KERAS_3layer_weights.h5"), "-o", o)
    _assert_clean_error(rc, err, "holds only weights")
    rc, _, err = run_cli(ref("example-models", "keras", "KERAS_1layer.json"), "-o", o)
    _assert_clean_error(rc, err, "activation 'sigmoid' is not supported")
    rc, _, err = run_cli(ref("example-models", "keras", "KERAS_3layer_binary_smaller.json"), "-o", o)
    _assert_clean_error(rc, err, "class BinaryDense (keras) is not supported")
    rc, _, err = run_cli(ref("example-models", "keras", "qkeras_3layer.json"), "--precision", "fixed<99,3>", "-o", o)
    _assert_clean_error(rc, err, "width 99")
    bad_cfg = tmp_path / "cfg.yml"
    bad_cfg.write_text("HLSConfig:\n  Model:\n    Precision: fixed<16>\n")
    rc, _, err = run_cli(ref("example-models", "keras", "qkeras_3layer.json"), "--hls4ml-config", bad_cfg, "-o", o)
    _assert_clean_error(rc, err, "fixed<16>")
    rc, _, err = run_cli(ref("example-models", "keras", "qkeras_3layer.json"), "-o", tmp_path / "nodir" / "o.json")
    _assert_clean_error(rc, err, "does not exist")
    rc, _, err = run_cli(ref("example-models", "keras", "hgq_jet_classifier.h5"),
                         ref("example-models", "keras", "KERAS_3layer_weights.h5"), "-o", o)
    _assert_clean_error(rc, err, "holds its own weights")
