"""Reading Keras 2 models from files, without TensorFlow: `read_keras2(path, weights=None) -> KModel`.

Two file kinds are read:

* a full-model HDF5 file (`model.save("m.h5")`): the architecture is the JSON in the root attribute
  `model_config`, the weights are under the group `model_weights`;
* an architecture JSON (`model.to_json()`) plus a weights HDF5 file (`model.save_weights("w.h5")`), whose
  root holds the layer groups.

In both HDF5 layouts a layer's group has the attribute `weight_names` (e.g. `fc1/kernel:0`), each a path
to a dataset inside the group; the weight is stored under its short name (`kernel`, `bias`, `gamma`,
`moving_mean`, `bits`, ...). Sequential and Functional models are read; shared layers, nested models
and multiple inputs are refused with a clear message.

Layer families (which converter semantics apply): "qkeras" for QKeras classes, "hgq1" for every layer of
an HGQ v1 proxy model (one that contains FixedPointQuantizer layers) and for HGQ v1 training layers,
"keras" otherwise.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from .builder import ExportError
from .graph import KLayer, KModel

QKERAS_CLASSES = {
    "QDense", "QActivation", "QAdaptiveActivation", "QBatchNormalization", "QConv1D", "QConv2D",
    "QConv2DTranspose", "QDepthwiseConv2D", "QSeparableConv1D", "QSeparableConv2D", "QAveragePooling2D",
    "QGlobalAveragePooling2D", "QSimpleRNN", "QLSTM", "QGRU", "QBidirectional", "QDenseBatchnorm",
    "QConv2DBatchnorm", "QDepthwiseConv2DBatchnorm", "QOctaveConv2D", "QMaxPooling2D",
}
HGQ1_PROXY_CLASSES = {"FixedPointQuantizer", "UnaryLUT"}
HGQ1_TRAINING_CLASSES = {
    "HQuantize", "HDense", "HDenseBatchNorm", "HConv1D", "HConv2D", "HConv1DBatchNorm", "HConv2DBatchNorm",
    "HActivation", "HAdd", "Signature", "PDropout", "PReshape", "PFlatten", "PConcatenate", "PMaxPooling1D",
    "PMaxPooling2D", "PAveragePooling1D", "PAveragePooling2D", "PPermute",
}
NESTED_MODEL_CLASSES = {"Sequential", "Functional", "Model"}


def family_of(class_name: str, module: str | None = None, hgq1_proxy: bool = False) -> str:
    mod = (module or "").lower()
    if hgq1_proxy or class_name in HGQ1_PROXY_CLASSES or class_name in HGQ1_TRAINING_CLASSES or mod.startswith("hgq.proxy"):
        return "hgq1"
    if class_name in QKERAS_CLASSES or mod.startswith("qkeras"):
        return "qkeras"
    return "keras"


def short_weight_name(full: str) -> str:
    """`fc1/kernel:0` -> `kernel`; `model/dense/bias` -> `bias`."""
    return full.split("/")[-1].split(":")[0]


def _as_str(x) -> str:
    if isinstance(x, bytes):
        return x.decode("utf-8")
    if isinstance(x, np.ndarray) and x.shape == ():
        return _as_str(x.item())
    return str(x)


def _w(where: str | None) -> str:
    """Message prefix naming the source, when it is not already named by the caller."""
    return f"{where}: " if where else ""


def _major(version) -> int:
    try:
        return int(str(version).split(".")[0])
    except (ValueError, TypeError):
        return 2


# ----------------------------------------------------------------------------------------------------
# architecture
# ----------------------------------------------------------------------------------------------------

def _history_names(obj, out: list):
    """Collect (layer, node_index, tensor_index) of Keras 3 `__keras_tensor__` entries, in order."""
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            h = obj.get("config", {}).get("keras_history")
            if h:
                out.append((h[0], int(h[1]) if len(h) > 1 else 0, int(h[2]) if len(h) > 2 else 0))
            return
        for v in obj.values():
            _history_names(v, out)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _history_names(v, out)


def _parse_inbound(nodes, layer_name: str, where: str) -> list[str]:
    if not nodes:
        return []
    if not isinstance(nodes, list):
        raise ExportError(f"{_w(where)}layer {layer_name!r}: unreadable inbound_nodes")
    if len(nodes) > 1:
        raise ExportError(f"{_w(where)}layer {layer_name!r} is called {len(nodes)} times (a shared layer); "
                          "shared layers are not supported")
    node = nodes[0]
    refs: list[tuple] = []
    if isinstance(node, dict):  # Keras 3
        _history_names(node.get("args", []), refs)
        _history_names(node.get("kwargs", {}), refs)
    elif isinstance(node, list):  # Keras 2: [[name, node_index, tensor_index, kwargs], ...]
        for ref in node:
            if isinstance(ref, list) and ref and isinstance(ref[0], str):
                refs.append((ref[0], int(ref[1]) if len(ref) > 1 else 0, int(ref[2]) if len(ref) > 2 else 0))
            elif isinstance(ref, str):  # [name, 0, 0, {}] given flat
                refs.append((node[0], int(node[1]) if len(node) > 1 else 0, int(node[2]) if len(node) > 2 else 0))
                break
            else:
                raise ExportError(f"{_w(where)}layer {layer_name!r}: unreadable inbound node {ref!r}")
    else:
        raise ExportError(f"{_w(where)}layer {layer_name!r}: unreadable inbound node {node!r}")
    for src, node_index, tensor_index in refs:
        if node_index != 0 or tensor_index != 0:
            raise ExportError(f"{_w(where)}layer {layer_name!r} reads output {tensor_index} of call {node_index} of "
                              f"{src!r}; only single-call, single-output layers are supported")
    return [r[0] for r in refs]


def _io_names(spec) -> list[str]:
    """`[["a", 0, 0], ["b", 0, 0]]` or `["a", 0, 0]` -> names."""
    if not spec:
        return []
    if isinstance(spec, list) and spec and isinstance(spec[0], str):
        return [spec[0]]
    out = []
    for s in spec:
        if isinstance(s, list) and s and isinstance(s[0], str):
            out.append(s[0])
        elif isinstance(s, dict):
            refs: list = []
            _history_names(s, refs)
            out.extend(r[0] for r in refs)
    return out


def _shape_of(cfg: dict):
    for key in ("batch_input_shape", "batch_shape"):
        if cfg.get(key) is not None:
            return tuple(cfg[key][1:])
    if cfg.get("input_shape") is not None:
        return tuple(cfg["input_shape"])
    return None


def parse_architecture(arch: Any, where: str):
    """A Keras model config (the `model.to_json()` object, or `model.get_config()` plus class name) ->
    (name, [(name, class_name, module, config, inbound)], outputs, input_shape, keras_major).
    """
    if not isinstance(arch, dict) or "class_name" not in arch:
        raise ExportError(f"{_w(where)}not a Keras model description (no 'class_name' at the top)")
    top = arch["class_name"]
    cfg = arch.get("config")
    major = _major(arch.get("keras_version", 2))
    if top not in NESTED_MODEL_CLASSES:
        raise ExportError(f"{_w(where)}top-level class {top!r} is not a Keras model (Sequential/Functional/Model)")
    if isinstance(cfg, list):  # Keras 2.0/2.1 Sequential: the config is the layer list
        layers_cfg, cfg = cfg, {"name": "sequential"}
    elif isinstance(cfg, dict):
        layers_cfg = cfg.get("layers")
    else:
        layers_cfg = None
    if not isinstance(layers_cfg, list) or not layers_cfg:
        raise ExportError(f"{_w(where)}the model has no layers")
    name = cfg.get("name") or "model"
    specs = []
    for k, entry in enumerate(layers_cfg):
        if not isinstance(entry, dict) or "class_name" not in entry:
            raise ExportError(f"{_w(where)}layer {k} is not a Keras layer description")
        cls = entry["class_name"]
        lcfg = entry.get("config") or {}
        lname = lcfg.get("name") or entry.get("name") or f"layer_{k}"
        if cls in NESTED_MODEL_CLASSES:
            raise ExportError(f"{_w(where)}layer {lname!r} is a nested model ({cls}); nested models are not "
                              "supported, flatten the model first")
        specs.append([lname, cls, entry.get("module"), lcfg, entry.get("inbound_nodes")])

    outputs: list[str] = []
    input_shape = None
    if top == "Sequential":
        first = specs[0]
        if first[1] != "InputLayer":
            shape = _shape_of(first[3])
            if shape is None:
                raise ExportError(f"{_w(where)}Sequential model without an InputLayer and without "
                                  "batch_input_shape on its first layer: the input size is unknown")
            specs.insert(0, [f"{first[0]}_input", "InputLayer", None, {"name": f"{first[0]}_input",
                                                                     "batch_input_shape": [None, *shape]}, None])
        out = []
        for k, (lname, cls, module, lcfg, _) in enumerate(specs):
            out.append((lname, cls, module, lcfg, [] if k == 0 else [specs[k - 1][0]]))
        specs = out
        outputs = [specs[-1][0]]
    else:
        parsed = []
        for lname, cls, module, lcfg, nodes in specs:
            inbound = [] if cls == "InputLayer" else _parse_inbound(nodes, lname, where)
            parsed.append((lname, cls, module, lcfg, inbound))
        specs = _toposort(parsed, where)
        inputs = _io_names(cfg.get("input_layers"))
        if len(inputs) > 1:
            raise ExportError(f"{_w(where)}the model has {len(inputs)} inputs; exactly one is supported")
        outputs = _io_names(cfg.get("output_layers")) or [specs[-1][0]]
    inputs = [s for s in specs if s[1] == "InputLayer"]
    if len(inputs) != 1:
        raise ExportError(f"{_w(where)}the model has {len(inputs)} input layers; exactly one is supported")
    input_shape = _shape_of(inputs[0][3])
    names = {s[0] for s in specs}
    for o in outputs:
        if o not in names:
            raise ExportError(f"{_w(where)}output layer {o!r} is not in the model")
    return name, specs, outputs, input_shape, major


def _toposort(specs, where):
    names = [s[0] for s in specs]
    if len(set(names)) != len(names):
        raise ExportError(f"{_w(where)}duplicate layer names")
    by = {s[0]: s for s in specs}
    done, out, visiting = set(), [], set()

    def visit(n):
        if n in done:
            return
        if n in visiting:
            raise ExportError(f"{_w(where)}the layer graph has a cycle at {n!r}")
        visiting.add(n)
        for src in by[n][4]:
            if src not in by:
                raise ExportError(f"{_w(where)}layer {n!r} reads unknown layer {src!r}")
            visit(src)
        visiting.discard(n)
        done.add(n)
        out.append(by[n])

    for s in specs:
        visit(s[0])
    return out


def build_kmodel(arch: Any, weights_of, source: str, where: str | None = "") -> KModel:
    """Assemble a KModel from an architecture and a `weights_of(layer_name) -> dict` callable. Error
    messages start with `where` (default: `source`; None: no prefix)."""
    name, specs, outputs, input_shape, major = parse_architecture(arch, source if where == "" else where)
    proxy = any(cls in HGQ1_PROXY_CLASSES for _, cls, _, _, _ in specs)
    layers = []
    for lname, cls, module, lcfg, inbound in specs:
        fam = family_of(cls, module, proxy)
        layers.append(KLayer(lname, cls, fam, lcfg, list(inbound), weights_of(lname), module))
    return KModel(name, layers, major, source, input_shape=input_shape,
                  extra={"outputs": outputs, "notes": [], "hgq1_proxy": proxy})


# ----------------------------------------------------------------------------------------------------
# HDF5
# ----------------------------------------------------------------------------------------------------

def _h5_weights(root, layer_name: str, where: str) -> dict:
    if layer_name not in root:
        return {}
    g = root[layer_name]
    names = g.attrs.get("weight_names", [])
    out: dict[str, np.ndarray] = {}
    for wn in list(np.asarray(names).reshape(-1)):
        wn = _as_str(wn)
        if wn not in g:
            raise ExportError(f"{_w(where)}weight {wn!r} of layer {layer_name!r} is listed but missing")
        arr = np.array(g[wn])
        short = short_weight_name(wn)
        key = short if short not in out else wn
        out[key] = arr
    return out


def _open_h5(path: str):
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise ExportError(f"cannot read {path} as HDF5: {e}") from None


def sibling_weights(json_path: str) -> str | None:
    """The weights file next to an architecture JSON: <stem>_weights.h5, <stem>.h5, weights.h5."""
    d, base = os.path.split(os.path.abspath(json_path))
    stem = os.path.splitext(base)[0]
    for cand in (f"{stem}_weights.h5", f"{stem}.h5", f"{stem}.weights.h5", "weights.h5"):
        p = os.path.join(d, cand)
        if os.path.isfile(p):
            return p
    return None


def read_keras2(path: str, weights: str | None = None) -> KModel:
    """Read a Keras 2 full-model `.h5`, or an architecture `.json` with its weights `.h5`."""
    is_json = path.lower().endswith(".json")
    if not is_json:
        with open(path, "rb") as f:
            head = f.read(8)
        is_json = head.lstrip()[:1] == b"{"
    if is_json:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        try:
            arch = json.loads(text)
        except json.JSONDecodeError as e:
            raise ExportError(f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
        if isinstance(arch, dict) and arch.get("format") == "fastml-model":
            raise ExportError("this is already a fastml-compile model.json, not a Keras architecture")
        wpath = weights or sibling_weights(path)
        if wpath is None:
            raise ExportError("no weights file: give the weights .h5 as the second argument "
                              f"(looked for {os.path.splitext(os.path.basename(path))[0]}_weights.h5 next to it)")
        h5 = _open_h5(wpath)
        with h5:
            root = h5["model_weights"] if "model_weights" in h5 else h5
            if "model_config" in h5.attrs and "layer_names" not in root.attrs:
                raise ExportError(f"{wpath}: no layer weights found")
            cache = {}
            model = build_kmodel(arch, lambda n: cache.setdefault(n, _h5_weights(root, n, wpath)),
                                 source=os.path.basename(path), where=None)
            missing = [l.name for l in model.layers if _needs_weights(l) and not l.weights]
            if missing:
                raise ExportError(f"{wpath}: no weights for layer(s) {', '.join(missing)}; "
                                  "is this the weights file of this architecture?")
            return model
    # full model HDF5
    h5 = _open_h5(path)
    with h5:
        if "model_config" not in h5.attrs:
            if "layer_names" in h5.attrs:
                raise ExportError("this HDF5 file holds only weights (model.save_weights); "
                                  "give the architecture JSON (model.to_json()) first and this file second")
            if "model_weights" not in h5 and "layers" in h5:
                raise ExportError("this looks like Keras 3 weights (model.weights.h5); "
                                  "give the .keras file instead")
            raise ExportError("not a Keras model file (no model_config attribute)")
        try:
            arch = json.loads(_as_str(h5.attrs["model_config"]))
        except json.JSONDecodeError as e:
            raise ExportError(f"model_config is not valid JSON ({e.msg})") from None
        if isinstance(arch, dict) and "keras_version" not in arch and "keras_version" in h5.attrs:
            arch["keras_version"] = _as_str(h5.attrs["keras_version"])
        root = h5["model_weights"] if "model_weights" in h5 else h5
        cache = {}
        model = build_kmodel(arch, lambda n: cache.setdefault(n, _h5_weights(root, n, None)),
                             source=os.path.basename(path), where=None)
        missing = [l.name for l in model.layers if _needs_weights(l) and not l.weights]
        if missing:
            raise ExportError(f"no weights for layer(s) {', '.join(missing)} in model_weights")
        return model


def _needs_weights(layer: KLayer) -> bool:
    return layer.class_name in {"Dense", "QDense", "BatchNormalization", "QBatchNormalization",
                                "FixedPointQuantizer"} or layer.class_name.startswith("Conv")
