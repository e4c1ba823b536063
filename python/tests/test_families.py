"""The seed tutorial's model families from their `.keras` files (tests/data/peers, copies of the peer
harness's models): the HGQ2 QDenseT lookup-table network and DeepSets.

* every table the exporter computes from the sub-network weights equals, entry by entry, the table the
  harness evaluated with the Keras layer itself (`seed_lutnet.weights.json`);
* the exported model.json is version 2 with the expected ops, and its Input composes exactly with the
  first layer's quantisers;
* with the compiler present (FASTML_COMPILE), `fastml-compile predict` reproduces Keras's logits
  exactly on the harness's 1000 inputs (each printed `%.17g` value compared as the float64 it denotes);
* an unsupported layer is named by its class.
"""

import json
import os
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from fastml_export import export
from fastml_export.builder import ExportError

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "peers"


def _export(name, tmp_path):
    out = tmp_path / f"{name}.json"
    export(str(DATA / f"{name}.keras"), str(out))
    return json.loads(out.read_text()), out


def _value(t, k):
    """Entry k of a model.json tensor as an exact fraction."""
    ty = t["types"][k] if "types" in t else t["type"]
    w, i = (int(v) for v in ty.split("<")[1].rstrip(">").split(",")[:2])
    return Fraction(t["data"][k], 2 ** (w - i))


def test_seed_lutnet_tables_equal_the_keras_evaluated_ones(tmp_path):
    doc, _ = _export("seed_lutnet", tmp_path)
    assert doc["version"] == 2
    dump = json.loads((DATA / "seed_lutnet.weights.json").read_text())
    layers = [n for n in doc["nodes"] if n["op"] == "LookupDense"]
    assert [n["name"] for n in layers] == ["t1", "t2"]
    compared = 0
    for node, L in zip(layers, [l for l in dump["layers"] if l["class"] == "QDenseT"]):
        ours = {(t["in"], t["out"]): t for t in node["tables"]}
        bias = node.get("bias")
        for t in L["tables"]:
            key = (t["in"], t["out"])
            want = [Fraction(v) for v in t["values"]]
            if key not in ours:
                # a zero-width domain (its constant went to the bias) or an always-zero table
                assert len(want) == 1 or all(v == 0 for v in want), key
                if len(want) == 1 and want[0] != 0:
                    assert bias is not None
                continue
            got = [_value(ours[key]["table"], k) for k in range(len(want))]
            assert got == want, key
            compared += len(want)
    assert compared > 10000


def test_seed_lutnet_input_keeps_an_extra_fractional_bit(tmp_path):
    doc, _ = _export("seed_lutnet", tmp_path)
    inp = doc["nodes"][0]
    assert inp["op"] == "Input" and inp["shape"] == [16]
    dump = json.loads((DATA / "seed_lutnet.weights.json").read_text())
    first = [l for l in dump["layers"] if l["class"] == "QDenseT"][0]
    for e, ty in enumerate(inp["types"]):
        w, i = (int(v) for v in ty.split("<")[1].split(",")[:2])
        fs = [t["in_kif"][2] for t in first["tables"] if t["in"] == e and sum(t["in_kif"]) > 0]
        assert w - i == max(fs) + 1, (e, ty)


def test_deepsets_is_a_shared_dense_over_a_set_with_mean_pooling(tmp_path):
    doc, _ = _export("deepsets", tmp_path)
    assert doc["version"] == 2
    ops = [n["op"] for n in doc["nodes"]]
    assert "Reshape" in ops and "Reduce" in ops
    reshape = next(n for n in doc["nodes"] if n["op"] == "Reshape")
    assert reshape["shape"] == [16, 1]
    pool = next(n for n in doc["nodes"] if n["op"] == "Reduce")
    assert (pool["axis"], pool["kind"]) == (0, "mean")


def _predict(model_json, inputs):
    exe = os.environ.get("FASTML_COMPILE")
    if not exe or not Path(exe).exists():
        pytest.skip("FASTML_COMPILE is not set to a built fastml-compile")
    r = subprocess.run([exe, "predict", str(model_json), "--input", str(inputs)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return [[Fraction(v) for v in l.split()] for l in r.stdout.splitlines() if l.strip()]


@pytest.mark.parametrize("name", ["seed_lutnet", "deepsets"])
def test_predict_reproduces_the_keras_logits_exactly(name, tmp_path):
    _, mj = _export(name, tmp_path)
    ours = _predict(mj, DATA / "x_test.txt")
    want = [[Fraction(float(v)) for v in l.split()] for l in (DATA / f"{name}.expected_logits.txt").read_text().splitlines()]
    assert len(ours) == len(want) == 1000
    bad = sum(a != b for r, s in zip(ours, want) for a, b in zip(r, s))
    assert bad == 0, f"{bad} of 5000 logits differ"


def test_shipped_family_models_are_the_exporter_output(tmp_path):
    """models/<name>/model.json is exactly what the exporter writes for the copy in tests/data/peers."""
    for name in ("seed_lutnet", "deepsets"):
        _, mj = _export(name, tmp_path)
        assert mj.read_text() == (REPO / "models" / name / "model.json").read_text(), name
