"""`fastml-export MODEL [WEIGHTS] -o model.json [--precision SPEC | --hls4ml-config FILE] [--name N]`

MODEL is a Keras 3 `.keras` file, a Keras 2 full-model `.h5`, or an architecture `.json`
(`model.to_json()`) whose weights `.h5` is WEIGHTS or lies next to it (`<stem>_weights.h5`).
Errors print `error: <file>: <message>` and exit with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys

from .builder import ExportError


def detect_kind(path: str) -> str:
    """'keras3', 'h5' or 'json', from the extension, else from the first bytes."""
    low = path.lower()
    if low.endswith(".keras"):
        return "keras3"
    if low.endswith((".h5", ".hdf5", ".hdf")):
        return "h5"
    if low.endswith(".json"):
        return "json"
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"PK"):
        return "keras3"
    if head.startswith(b"\x89HDF"):
        return "h5"
    if head.lstrip()[:1] == b"{":
        return "json"
    raise ExportError("unknown file kind: expected a .keras, .h5 or architecture .json file")


def read_model(path: str, weights: str | None = None):
    """Read any supported model file into a KModel."""
    kind = detect_kind(path)
    if kind == "keras3":
        if weights:
            raise ExportError("a .keras file holds its own weights; do not give a weights file")
        from .keras3 import read_keras3

        return read_keras3(path)
    from .keras2 import read_keras2

    if kind == "h5" and weights:
        raise ExportError("a full-model .h5 holds its own weights; a weights file goes with an architecture .json")
    return read_keras2(path, weights)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="fastml-export",
        description="Export a Keras / QKeras / HGQ model to fastml-compile's model.json (exact weights and quantisers).",
    )
    ap.add_argument("model", help="model file: .keras (Keras 3), .h5 (Keras 2 full model) or architecture .json")
    ap.add_argument("weights", nargs="?", help="weights .h5 for an architecture .json (default: <stem>_weights.h5 next to it)")
    ap.add_argument("-o", "--out", default="model.json", help="output model.json (default: %(default)s)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--precision", metavar="SPEC",
                   help="post-training types, hls4ml style: 'fixed<16,6>' (default for everything), "
                        "'VAR=TYPE' (weight, bias, accum, result, ...) or 'LAYER.VAR=TYPE', separated by ';'")
    g.add_argument("--hls4ml-config", metavar="FILE", help="take the types from an hls4ml config (YAML or JSON)")
    ap.add_argument("--exact-sums", action="store_true",
                    help="Dense layers with an accumulator type: round only the exact sum to it, not every "
                         "product as hls4ml does (cheaper to describe; not hls4ml's numbers)")
    ap.add_argument("--semantics", choices=("framework", "hls4ml"),
                    help="layers with their own quantisers (QKeras): compute what the framework computes "
                         "(default with --precision) or what hls4ml builds from the config, accumulator and "
                         "result types included (default with --hls4ml-config)")
    ap.add_argument("--name", help="model name (default: the Keras model's name)")
    ap.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    return ap


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    where = args.model
    try:
        from .ptq import Precision
        from .registry import convert

        precision = None
        if args.precision is not None:
            precision = Precision.parse(args.precision)
        elif args.hls4ml_config is not None:
            where = args.hls4ml_config
            precision = Precision.load(args.hls4ml_config)
            where = args.model
        if args.exact_sums or args.semantics:
            if precision is None:
                precision = Precision()
                precision.user_given = True
            if args.exact_sums:
                precision.hls4ml_products = False
            if args.semantics:
                precision.semantics = args.semantics
        model = read_model(args.model, args.weights)
        builder = convert(model, precision=precision, name=args.name)
        out_dir = os.path.dirname(os.path.abspath(args.out))
        if not os.path.isdir(out_dir):
            raise ExportError(f"output folder {out_dir} does not exist")
        text = builder.to_json()
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
        if not args.quiet:
            for n in model.extra.get("notes", []):
                print(f"note: {n}", file=sys.stderr)
            print(f"wrote {args.out}: {len(builder.nodes)} nodes ({model.source})", file=sys.stderr)
        return 0
    except ExportError as e:
        print(f"error: {where}: {e}", file=sys.stderr)
    except FileNotFoundError as e:
        print(f"error: {e.filename or where}: no such file", file=sys.stderr)
    except IsADirectoryError as e:
        print(f"error: {e.filename or where}: is a directory", file=sys.stderr)
    except OSError as e:
        print(f"error: {getattr(e, 'filename', None) or where}: {e.strerror or e}", file=sys.stderr)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
        print(f"error: {where}: malformed or unsupported model file ({type(e).__name__}: {e})", file=sys.stderr)
        if os.environ.get("FASTML_EXPORT_DEBUG"):
            raise
    except Exception as e:  # never a traceback for users
        print(f"error: {where}: internal error ({type(e).__name__}: {e}); set FASTML_EXPORT_DEBUG=1 for details",
              file=sys.stderr)
        if os.environ.get("FASTML_EXPORT_DEBUG"):
            raise
    return 2


if __name__ == "__main__":
    sys.exit(main())
