"""Reading a live Keras model object: `from_live(model) -> KModel`.

Nothing is imported at module level; Keras is only touched through the object you pass in.

* Keras 2 (tf.keras / tf_keras, QKeras, HGQ v1 proxies): the architecture comes from
  `model.get_config()` (the same description `model.to_json()` writes), the weights from each layer's
  `layer.weights` names and `layer.get_weights()` values; everything then goes through the same parser
  as files (keras2.py), so a live model and its saved file export identically.
* Keras 3 (keras >= 3, qkeras-v3, HGQ2): the model is saved to a temporary `.keras` file and read back
  with keras3.read_keras3, because Keras 3 names nested (quantiser) variables by the saving library's
  layout, which the file reader already knows.
"""

from __future__ import annotations

import os
import tempfile

from .builder import ExportError
from .graph import KModel
from .keras2 import build_kmodel, short_weight_name


def _keras_major(model) -> int:
    mod = type(model).__module__ or ""
    if mod.startswith(("tf_keras", "tensorflow")):
        return 2
    if mod.startswith("keras"):
        try:
            import keras  # the user's own Keras, already loaded since the model exists

            return int(str(keras.__version__).split(".")[0])
        except Exception:  # pragma: no cover - unusual installs
            return 2
    return 2


def from_live(model) -> KModel:
    if not hasattr(model, "get_config") or not hasattr(model, "layers"):
        raise ExportError(f"expected a Keras model, got {type(model).__name__}")
    major = _keras_major(model)
    if major >= 3:
        return _from_keras3(model)
    cls = type(model).__name__
    if cls not in ("Sequential", "Functional", "Model"):
        cls = "Functional" if hasattr(model, "_is_graph_network") and model._is_graph_network else cls
    if cls not in ("Sequential", "Functional", "Model"):
        raise ExportError(f"model class {type(model).__name__} is a subclassed model; only Sequential and "
                          "Functional models can be exported")
    try:
        config = model.get_config()
    except NotImplementedError:
        raise ExportError("the model does not implement get_config(); only Sequential and Functional models "
                          "can be exported") from None
    version = "2"
    try:
        import tensorflow as tf  # noqa: F401

        version = getattr(getattr(tf, "keras", None), "__version__", "2")
    except Exception:
        pass
    arch = {"class_name": cls, "config": config, "keras_version": version}

    by_name = {}
    for layer in model.layers:
        names = [short_weight_name(v.name) for v in layer.weights]
        values = layer.get_weights()
        d = {}
        for n, v, var in zip(names, values, layer.weights):
            d[n if n not in d else var.name] = v
        by_name[layer.name] = d
    return build_kmodel(arch, lambda n: by_name.get(n, {}), source=f"live {type(model).__name__} {model.name!r}")


def _from_keras3(model) -> KModel:
    from .keras3 import read_keras3

    with tempfile.TemporaryDirectory(prefix="fastml-export-") as d:
        path = os.path.join(d, "model.keras")
        try:
            model.save(path)
        except Exception as e:
            raise ExportError(f"could not serialise the Keras 3 model ({type(e).__name__}: {e})") from None
        km = read_keras3(path)
    km.source = f"live {type(model).__name__} {model.name!r}"
    return km
