"""Reading Keras 3 `.keras` files (a zip of config.json, metadata.json and model.weights.h5) into a KModel.

Only numpy, h5py, json and zipfile are used: no Keras, TensorFlow or JAX.

How Keras 3 (checked on 3.14/3.15, keras/src/saving/saving_lib.py) lays out model.weights.h5:

* A Functional or Sequential model saves `model.layers` first, as `layers/<snake_case(class)>[_N]`, in the
  order of `model.layers` (for Sequential this leaves out the InputLayer). Since Keras 3.6 the `vars`
  group of each saveable carries an attribute `name` with the layer's own name; we use it and fall back to
  the order-based group names for older files.
* A layer's own variables are `<group>/vars/0..n-1`, numbered over `layer._trainable_variables +
  layer._non_trainable_variables` (Layer.save_own_variables). A variable lands in the trainable list when
  it is *created* with `trainable=True`, whatever the layer's own `trainable` flag, so the order is fixed by
  the class's build() and the config (e.g. HGQ2's quantiser `i` is trainable unless the overflow mode is
  WRAP).
* Sub-layers are saved under the public attribute name that reaches them, e.g. an HGQ2 QDense has
  `iq/`, `kq/`, `bq/`, `oq/` (each a `Quantizer` layer), and each Quantizer has `quantizer/vars/..`
  (the internal FixedPointQuantizerKIF/KBI's `k`, `i`, `f`/`b` and `i_decay_speed`).

`KModel.extra` holds "outputs" (the output layers' names), "input_shapes" ({layer: [shape of each
input without the batch dimension]}, from the inbound tensors or build_config), "trainable" (the model's
flag), "model_class" ("Functional" or "Sequential") and "hgq2_qkeras_compat" (True when hgq2's QKeras look-alike is used).

`KLayer.weights` gets semantic names where the class is known ("kernel", "bias", "gamma", ...; a
sub-quantiser's variables as "iq/k", "iq/i", "iq/f", "kq/b", ...; a standalone HGQ2 Quantizer's as
"quantizer/k", ...), otherwise the file's own relative paths ("0", "iq/quantizer/0", ...).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from typing import Any

import numpy as np

from .builder import ExportError
from .graph import KLayer, KModel

# ---------------------------------------------------------------------------------------------------------
# Families


def _walk_json(obj):
    if isinstance(obj, dict):
        yield obj
        for v in obj.values():
            yield from _walk_json(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk_json(v)


def _is_hgq(entry: dict) -> bool:
    reg = entry.get("registered_name") or ""
    module = entry.get("module") or ""
    return reg.startswith("hgq>") or module == "hgq" or module.startswith("hgq.")


def _uses_hgq_qkeras(entry: dict) -> bool:
    """True when a layer's config holds an object of hgq2's QKeras look-alike (registered as `hgq/qkeras>`)."""
    for d in _walk_json(entry.get("config", {})):
        reg = d.get("registered_name")
        if isinstance(reg, str) and reg.startswith("hgq/qkeras>"):
            return True
    return False


def _is_qkeras(entry: dict) -> bool:
    reg = entry.get("registered_name") or ""
    module = entry.get("module") or ""
    return reg.startswith("qkeras>") or module == "qkeras" or module.startswith("qkeras.")


def layer_family(entry: dict, hgq_qkeras_model: bool) -> str:
    """Family of one serialized layer.

    * "hgq2": module `hgq.*` / registered `hgq>...` (HGQ2's own layers).
    * "qkeras_hgq2": the same hgq classes when the model uses hgq2's QKeras look-alike (`import qkeras` from
      the hgq2 wheel). Its layers are hgq's own classes (`qkeras.qlayers.QDense` *is* `hgq.layers.QDense`
      with a wrapped `__init__`, `QActivation` *is* `hgq.quantizer.Quantizer`), so the file only shows it
      through the quantiser configs: `quantized_bits` registered as `hgq/qkeras>quantized_bits` (module
      `qkeras.quantizers.quantized_bits`). The real qkeras-v3 package registers `qkeras>quantized_bits`
      and its layers as `qkeras>QDense` (module `qkeras.qlayers`).
    * "qkeras": the real QKeras for Keras 3 (qkeras-v3), module `qkeras.*` / registered `qkeras>...`.
    * "keras": anything else.
    """
    if _is_hgq(entry):
        return "qkeras_hgq2" if hgq_qkeras_model else "hgq2"
    reg = entry.get("registered_name") or ""
    if reg.startswith("hgq/qkeras>"):
        return "qkeras_hgq2"
    if _is_qkeras(entry):
        return "qkeras"
    return "keras"


# ---------------------------------------------------------------------------------------------------------
# Variable names


def _to_snake_case(name: str) -> str:  # keras/src/utils/naming.py
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _conf_cfg(conf: Any) -> dict:
    """The inner config dict of a serialized object ({"class_name", "config", ...}) or {}."""
    if isinstance(conf, dict):
        inner = conf.get("config")
        if isinstance(inner, dict):
            return inner
    return {}


def quantizer_var_names(conf: Any, n: int) -> list[str] | None:
    """Names of an HGQ2 internal quantiser's saved variables (in file order), from its serialized config.

    hgq/quantizer/internal/fixed_point_quantizer.py: KIF builds k (uint8, non-trainable), i (trainable
    unless WRAP), f (trainable); KBI builds k, b (trainable), i (trainable unless WRAP); the base class then
    adds i_decay_speed (non-trainable) for WRAP. Saved order = trainables then non-trainables, each in
    creation order. hgq2's QKeras `quantized_bits` with alpha="trainable_po2" (use_variables) is a KBI
    with SAT/SAT_SYM; with fixed alpha it is a frozen KBI with no variables.
    """
    if not isinstance(conf, dict):
        return None
    cls = conf.get("class_name")
    cfg = _conf_cfg(conf)
    if cls in ("quantized_bits", "quantized_relu"):
        q_type, overflow = "kbi", ("SAT_SYM" if cfg.get("symmetric") else "SAT")
    elif cls in ("QuantizerConfig", "HardTanhConfig", "HardSigmoidConfig"):
        q_type = str(cfg.get("q_type", "default")).lower()
        place = str(cfg.get("place", "datalane")).lower()
        if q_type == "default":
            q_type = {"weight": "kbi", "datalane": "kif", "bias": "kbi", "table": "kbi"}.get(place, "kif")
        if cls == "HardTanhConfig":
            overflow = "SAT_SYM" if cfg.get("symmetric") else "SAT"
        elif cls == "HardSigmoidConfig":
            overflow = "SAT"
        else:
            overflow = str(cfg.get("overflow_mode", "WRAP" if place in ("datalane", "bias") else "SAT_SYM")).upper()
    else:
        return None
    wrap = overflow == "WRAP"
    if q_type == "kif":
        names = (["f"] if wrap else ["i", "f"]) + (["k", "i", "i_decay_speed"] if wrap else ["k"])
    elif q_type == "kbi":
        names = (["b"] if wrap else ["b", "i"]) + (["k", "i", "i_decay_speed"] if wrap else ["k"])
    elif q_type == "dummy":
        names = []
    else:
        return None
    return names if len(names) == n else None


def own_var_names(class_name: str, family: str, cfg: dict, n: int) -> list[str] | None:
    """Names of a layer's own saved variables (trainable ones first, each group in creation order)."""
    use_bias = cfg.get("use_bias", True)
    hgq = family in ("hgq2", "qkeras_hgq2")
    ebops = ["ebops_beta", "ebops"] if hgq and cfg.get("enable_ebops") else []
    t: list[str]
    nt: list[str] = []
    if class_name in ("InputLayer",):
        t = []
    elif hgq and class_name == "QDenseT":
        # Its weights live in its sub-network (`module/layers/einsum_dense*/vars/*`); its own two
        # variables are the EBOPs bookkeeping.
        t, nt = [], ["ebops_beta", "ebops"] if n == 2 else []
    elif hgq and class_name in ("QDense", "QEinsumDense", "QConv1D", "QConv2D", "QConv3D"):
        t, nt = ["kernel"] + (["bias"] if (use_bias if class_name != "QEinsumDense" else cfg.get("bias_axes")) else []), ebops
    elif hgq and class_name == "QBatchNormDense":
        t = ["kernel", "bias"] + (["bn_gamma"] if cfg.get("scale", True) else [])
        nt = ebops + ["moving_mean", "moving_variance"]
    elif hgq and class_name == "QEinsumDenseBatchnorm":
        t = ["kernel"] + (["bias"] if cfg.get("bias_axes") else []) + (["bn_gamma"] if cfg.get("scale", True) else [])
        nt = ebops + ["moving_mean", "moving_variance"]
    elif hgq and class_name == "QBatchNormalization":
        t = (["bn_gamma"] if cfg.get("scale", True) else []) + (["bn_beta"] if cfg.get("center", True) else [])
        nt = ["moving_mean", "moving_variance"] + ebops
    elif hgq and class_name == "QAffinedUnaryFunctionLUT":
        t, nt = ["scale", "bias"], ebops
    elif hgq:
        t, nt = [], ebops
    elif class_name in ("Dense", "QDense", "EinsumDense", "Conv1D", "Conv2D", "Conv3D", "QConv1D", "QConv2D",
                        "Conv1DTranspose", "Conv2DTranspose", "QConv2DBatchnorm", "QDenseBatchnorm"):
        bias = use_bias if class_name != "EinsumDense" else bool(cfg.get("bias_axes"))
        t = ["kernel"] + (["bias"] if bias else [])
    elif class_name in ("DepthwiseConv1D", "DepthwiseConv2D", "QDepthwiseConv2D"):
        t = ["depthwise_kernel"] + (["bias"] if use_bias else [])
    elif class_name in ("SeparableConv1D", "SeparableConv2D", "QSeparableConv1D", "QSeparableConv2D"):
        t = ["depthwise_kernel", "pointwise_kernel"] + (["bias"] if use_bias else [])
    elif class_name in ("BatchNormalization", "QBatchNormalization"):
        t = (["gamma"] if cfg.get("scale", True) else []) + (["beta"] if cfg.get("center", True) else [])
        nt = ["moving_mean", "moving_variance"]
    elif class_name in ("LayerNormalization",):
        t = (["gamma"] if cfg.get("scale", True) else []) + (["beta"] if cfg.get("center", True) else [])
    elif class_name == "Embedding":
        t = ["embeddings"]
    elif class_name == "PReLU":
        t = ["alpha"]
    else:
        return None
    names = t + nt
    return names if len(names) == n else None


def _sub_conf(layer_cfg: dict, class_name: str, sub: str):
    """The serialized quantiser config behind sub-layer `sub` (iq, kq, bq, oq, or a Quantizer's quantizer)."""
    if sub == "quantizer" and class_name in ("Quantizer", "QActivation"):
        return layer_cfg.get("config")
    return layer_cfg.get(f"{sub}_conf")


def _collect_datasets(group) -> dict[str, np.ndarray]:
    """Every dataset under `group`, keyed by its path relative to the group, as numpy arrays."""
    import h5py

    out: dict[str, np.ndarray] = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            out[name] = np.array(obj[()])

    group.visititems(visit)
    return out


def name_weights(klayer_cls: str, family: str, cfg: dict, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Turn raw relative paths ("vars/0", "iq/quantizer/vars/1", ...) into semantic names where known."""
    out: dict[str, np.ndarray] = {}
    groups: dict[str, dict[int, np.ndarray]] = {}
    for path, arr in raw.items():
        parts = path.split("/")
        if len(parts) >= 2 and parts[-2] == "vars" and parts[-1].isdigit():
            groups.setdefault("/".join(parts[:-2]), {})[int(parts[-1])] = arr
        else:
            out[path] = arr
    for gpath, items in groups.items():
        n = len(items)
        ordered = [items[k] for k in sorted(items)]
        names = None
        if gpath == "":
            names = own_var_names(klayer_cls, family, cfg, n)
            prefix = ""
        else:
            segs = gpath.split("/")
            # <sub>/quantizer: an HGQ2 Quantizer's internal quantiser
            if len(segs) == 2 and segs[1] == "quantizer":
                names = quantizer_var_names(_sub_conf(cfg, klayer_cls, segs[0]), n)
                prefix = segs[0] + "/"
            elif len(segs) == 1 and segs[0] == "quantizer" and klayer_cls in ("Quantizer", "QActivation"):
                names = quantizer_var_names(cfg.get("config"), n)
                prefix = "quantizer/"
            else:
                prefix = gpath + "/"
        if names is None:
            for k in sorted(items):
                out[f"{prefix}{k}" if gpath == "" else f"{gpath}/{k}"] = items[k]
        else:
            for nm, arr in zip(names, ordered):
                out[prefix + nm] = arr
    return out


# ---------------------------------------------------------------------------------------------------------
# Graph


def _keras_tensors(obj) -> list[tuple]:
    """(layer, node_index, tensor_index) of every `__keras_tensor__` in an inbound node's args, in order."""
    found: list[tuple] = []
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            h = obj.get("config", {}).get("keras_history")
            if h:
                found.append(tuple(h))
            return found
        for v in obj.values():
            found += _keras_tensors(v)
    elif isinstance(obj, list):
        # Keras 2 style inbound nodes: [[name, node, tensor, kwargs], ...]
        if len(obj) >= 3 and isinstance(obj[0], str) and isinstance(obj[1], int) and isinstance(obj[2], int):
            return [tuple(obj[:3])]
        for v in obj:
            found += _keras_tensors(v)
    return found


def _inbound_shapes(obj) -> list[tuple]:
    """Shapes (without the batch dimension) of the `__keras_tensor__`s an inbound node reads."""
    found: list[tuple] = []
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            shape = obj.get("config", {}).get("shape")
            if isinstance(shape, list) and shape:
                found.append(tuple(shape[1:]))
            return found
        for v in obj.values():
            found += _inbound_shapes(v)
    elif isinstance(obj, list):
        for v in obj:
            found += _inbound_shapes(v)
    return found


def _io_names(spec) -> list[str]:
    """Layer names of a Functional config's input_layers/output_layers (flat [n, 0, 0] or nested)."""
    if not spec:
        return []
    if isinstance(spec, list) and len(spec) == 3 and isinstance(spec[0], str) and isinstance(spec[1], int):
        return [spec[0]]
    if isinstance(spec, dict):
        return [n for v in spec.values() for n in _io_names(v)]
    out = []
    for s in spec:
        out += _io_names(s)
    return out


def _toposort(layers: list[KLayer]) -> list[KLayer]:
    by_name = {l.name: l for l in layers}
    done: set[str] = set()
    order: list[KLayer] = []
    remaining = list(layers)
    while remaining:
        progressed = False
        rest = []
        for l in remaining:
            if all(s in done or s not in by_name for s in l.inbound):
                order.append(l)
                done.add(l.name)
                progressed = True
            else:
                rest.append(l)
        if not progressed:
            raise ExportError(f"the model graph has a cycle through {[l.name for l in rest]}")
        remaining = rest
    return order


def _read_zip(path: str) -> tuple[dict, dict, bytes]:
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as e:
        raise ExportError(f"{path}: not a Keras 3 .keras file (zip): {e}") from None
    with zf:
        names = set(zf.namelist())
        if "config.json" not in names:
            raise ExportError(f"{path}: no config.json in the archive (not a Keras 3 .keras file)")
        config = json.loads(zf.read("config.json"))
        metadata = json.loads(zf.read("metadata.json")) if "metadata.json" in names else {}
        if "model.weights.h5" in names:
            weights = zf.read("model.weights.h5")
        elif "model.weights.npz" in names:
            raise ExportError(f"{path}: weights are stored as npz; only model.weights.h5 is supported")
        else:
            weights = b""
    return config, metadata, weights


def read_keras3(path: str) -> KModel:
    """Read a Keras 3 `.keras` model (Functional or Sequential) without importing Keras."""
    import h5py

    config, metadata, weights_blob = _read_zip(path)
    top_cls = config.get("class_name")
    mcfg = config.get("config", {})
    if top_cls not in ("Functional", "Sequential", "Model"):
        raise ExportError(f"{path}: top-level object is {top_cls!r}; only Functional and Sequential models are supported")
    entries = list(mcfg.get("layers", []))
    hgq_qkeras = any(_is_hgq(e) and _uses_hgq_qkeras(e) for e in entries) or any(
        (e.get("registered_name") or "").startswith("hgq/qkeras>") for e in entries
    )

    def lname(e):
        return e.get("name") or e.get("config", {}).get("name")

    layers: list[KLayer] = []
    input_shapes: dict[str, list] = {}  # layer -> shapes (without batch) of its inputs, where the file says
    for e in entries:
        bc = (e.get("build_config") or {}).get("input_shape")
        if isinstance(bc, list) and bc and (bc[0] is None or isinstance(bc[0], int)):
            input_shapes[lname(e)] = [tuple(bc[1:])]
    sequential = top_cls == "Sequential"
    if sequential:
        prev = None
        if entries and entries[0].get("class_name") != "InputLayer":
            shape = mcfg.get("build_input_shape") or (entries[0].get("build_config") or {}).get("input_shape")
            if shape is None:
                raise ExportError(f"{path}: Sequential model without an InputLayer or an input shape")
            layers.append(KLayer("input", "InputLayer", "keras", {"batch_shape": list(shape), "name": "input"}, [],
                                 module="keras.layers"))
            prev = "input"
        for e in entries:
            cls = e["class_name"]
            if cls in ("Functional", "Sequential", "Model"):
                raise ExportError(f"layer {lname(e)!r} is a nested {cls} model; nested models are not supported (flatten it first)")
            layers.append(KLayer(lname(e), cls, layer_family(e, hgq_qkeras), e.get("config", {}),
                                 [] if prev is None or cls == "InputLayer" else [prev], module=e.get("module")))
            prev = lname(e)
        outputs = [layers[-1].name] if layers else []
    else:
        for e in entries:
            cls = e["class_name"]
            if cls in ("Functional", "Sequential", "Model"):
                raise ExportError(f"layer {lname(e)!r} is a nested {cls} model; nested models are not supported (flatten it first)")
            nodes = e.get("inbound_nodes") or []
            if len(nodes) > 1:
                raise ExportError(f"layer {lname(e)!r} ({cls}) is called {len(nodes)} times (shared layer); not supported")
            inbound = [h[0] for h in _keras_tensors(nodes)]
            layers.append(KLayer(lname(e), cls, layer_family(e, hgq_qkeras), e.get("config", {}), inbound,
                                 module=e.get("module")))
            shapes = _inbound_shapes(nodes)
            if shapes:
                input_shapes[lname(e)] = shapes
        outputs = _io_names(mcfg.get("output_layers")) or ([layers[-1].name] if layers else [])

    # Weights
    if weights_blob:
        with h5py.File(io.BytesIO(weights_blob), "r") as f:
            _attach_weights(f, layers, sequential, path)

    # Sequential's h5 lists model.layers, which leaves the InputLayer out; Functional's includes it.
    layers = _toposort(layers)
    input_shape = None
    for l in layers:
        if l.class_name == "InputLayer":
            bs = l.config.get("batch_shape") or l.config.get("batch_input_shape")
            if bs:
                input_shape = tuple(bs[1:])
            break
    kv = str(metadata.get("keras_version", "3"))
    major = int(kv.split(".")[0]) if kv.split(".")[0].isdigit() else 3
    name = mcfg.get("name") or "model"
    extra = {"outputs": outputs, "input_shapes": input_shapes, "keras_version_full": kv, "trainable": bool(mcfg.get("trainable", True)),
             "model_class": top_cls}
    if hgq_qkeras:
        extra["hgq2_qkeras_compat"] = True
    return KModel(name=name, layers=layers, keras_version=major, source=path, input_shape=input_shape, extra=extra)


def _attach_weights(f, layers: list[KLayer], sequential: bool, path: str) -> None:
    if "layers" not in f:
        return
    top = f["layers"]
    # Group name by layer name: the `name` attribute Keras >= 3.6 writes on each `vars` group.
    by_attr: dict[str, str] = {}
    for g in top:
        vg = top[g].get("vars")
        nm = vg.attrs.get("name") if vg is not None else None
        if isinstance(nm, bytes):
            nm = nm.decode()
        if nm is not None:
            by_attr[str(nm)] = g
    # Fallback: snake_case(class) with _1, _2... in model.layers order.
    by_order: dict[str, str] = {}
    used: dict[str, int] = {}
    for l in layers:
        if sequential and l.class_name == "InputLayer":
            continue
        base = _to_snake_case(l.class_name)
        if base in used:
            used[base] += 1
            g = f"{base}_{used[base]}"
        else:
            used[base] = 0
            g = base
        by_order[l.name] = g
    for l in layers:
        g = by_attr.get(l.name)
        if g is None and not by_attr:
            g = by_order.get(l.name)
        if g is None or g not in top:
            continue
        raw = _collect_datasets(top[g])
        l.weights = name_weights(l.class_name, l.family, l.config, raw)
