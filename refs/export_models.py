"""Export every reference model with fastml-export into tests/data/refs/<name>/model.json.

Run by `make refs` after the framework outputs exist (and by hand after a deliberate exporter change):
`.venv/bin/python refs/export_models.py`. `python/tests/test_refs.py` re-exports every model and checks
the result is byte-identical to the stored file, so an exporter change that alters a model fails
`make test`; `tests/tests/conformance.rs` then compares the stored model.json's golden model with the
framework's stored outputs on all N inputs and co-simulates the RTL.

How each family is exported (the options a user would give):
* hls4ml references: the hls4ml config they were built with (`--hls4ml-config`), hls4ml semantics;
* QKeras / qkeras-v3 (no input quantiser in the model): `--precision` = the reference input type, so the
  Input node holds the inputs exactly, as the framework saw them;
* HGQ v1 / HGQ2 / hgq2-QKeras: nothing; the model's own first quantiser types the input.
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFS = ROOT / "tests" / "data" / "refs"
sys.path.insert(0, str(ROOT / "python"))

from fastml_export.cli import main as export_main  # noqa: E402


def export_args(name: str, meta: dict) -> list:
    """The fastml-export arguments (without -o) for a reference."""
    srcs = [s if s.startswith("../") else str(ROOT / s) for s in meta["source_model"]]
    srcs = [str((ROOT / s).resolve()) if s.startswith("../") else s for s in srcs]
    fw = meta["framework"]
    if fw == "hls4ml":
        cfg = [s for s in srcs if s.endswith((".yml", ".yaml", ".json")) and "config" in Path(s).name]
        models = [s for s in srcs if s not in cfg]
        return models + ["--hls4ml-config", cfg[0]]
    if fw.startswith("qkeras"):
        return srcs + ["--precision", meta["inputs"]["type"]]
    return srcs


def main() -> int:
    names = sys.argv[1:] or sorted(p.parent.name for p in REFS.glob("*/meta.json"))
    for name in names:
        meta = json.loads((REFS / name / "meta.json").read_text())
        out = REFS / name / "model.json"
        args = export_args(name, meta) + ["-o", str(out), "--name", name, "-q"]
        code = export_main(args)
        print(f"{name}: {'ok' if code == 0 else f'FAILED ({code})'}")
        if code != 0:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
