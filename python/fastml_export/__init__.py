"""fastml_export: Keras / QKeras / HGQ / HGQ2 models to fastml-compile's model.json, bit-exactly.

    from fastml_export import export
    export(keras_model, "model.json")                       # a live model (QKeras, HGQ proxy, HGQ2, Keras)
    export("jet.h5", "model.json", precision="fixed<16,6>") # a file; float models need a precision
                                                           # (hls4ml's default fixed<16,6> otherwise)

Only numpy and h5py are needed; reading files never imports TensorFlow or Keras.
"""

from __future__ import annotations

import os

from .builder import ExportError, FixedType
from .ptq import Precision

__all__ = ["export", "convert_model", "read_model", "ExportError", "FixedType", "Precision"]
__version__ = "0.1.0"


def read_model(model_or_path, weights: str | None = None):
    """A KModel from a live Keras model or a model file (.keras, .h5, architecture .json [+ weights])."""
    if isinstance(model_or_path, (str, os.PathLike)):
        from .cli import read_model as _read

        return _read(os.fspath(model_or_path), weights)
    from .live import from_live

    return from_live(model_or_path)


def convert_model(model_or_path, precision=None, name: str | None = None, weights: str | None = None):
    """Read and convert; returns the ModelBuilder (`.to_json()`, `.write(path)`, `.nodes`) and the
    notes (list of strings) the converters left."""
    from .ptq import as_precision
    from .registry import convert

    km = read_model(model_or_path, weights)
    b = convert(km, precision=as_precision(precision), name=name)
    return b, list(km.extra.get("notes", []))


def export(model_or_path, path: str, precision=None, name: str | None = None, weights: str | None = None) -> str:
    """Write model.json for a live Keras model or a model file.

    `precision`: None, a spec string ("fixed<16,6>; fc1.weight=fixed<8,1>"), a path to an hls4ml
    config (YAML/JSON), an hls4ml config dict, or a `Precision`. Returns `path`."""
    b, _ = convert_model(model_or_path, precision=precision, name=name, weights=weights)
    b.write(path)
    return path
