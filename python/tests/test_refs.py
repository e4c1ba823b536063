"""Every reference model in tests/data/refs re-exports to exactly the stored model.json.

The stored files are what `tests/tests/conformance.rs` checks against the frameworks' own outputs (100,000
inputs per model) and co-simulates; this test ties them to the exporter as it is now, so a change in the
exporter that changes a model fails here (regenerate with `.venv/bin/python refs/export_models.py` only
after checking the conformance tests still pass). Skips references whose sources are not available
(`../shared` missing).
"""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REFS = ROOT / "tests" / "data" / "refs"
spec = importlib.util.spec_from_file_location("export_models", ROOT / "refs" / "export_models.py")
export_models = importlib.util.module_from_spec(spec)
spec.loader.exec_module(export_models)

NAMES = sorted(p.parent.name for p in REFS.glob("*/model.json"))


def test_there_are_references():
    assert len(NAMES) >= 20


@pytest.mark.parametrize("name", NAMES)
def test_reexport_is_identical(name, tmp_path):
    meta = json.loads((REFS / name / "meta.json").read_text())
    args = export_models.export_args(name, meta)
    for a in args:
        if a.endswith((".h5", ".keras", ".json", ".yml")) and not Path(a).exists():
            pytest.skip(f"source {a} not available")
    out = tmp_path / "model.json"
    from fastml_export.cli import main

    assert main(args + ["-o", str(out), "--name", name, "-q"]) == 0
    assert out.read_text() == (REFS / name / "model.json").read_text()
