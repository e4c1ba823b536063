"""Converter registry: which function turns which Keras layer into model.json nodes.

A handler is registered for a family and class names (`@handles("qkeras", "QDense")`) and called as
`handler(ctx, layer)`; it reads the input tensors from `ctx`, adds nodes through `ctx.builder`, and sets
`ctx.tensors[layer.name]`. An unregistered layer is an ExportError naming the layer, its class and what
is supported, never a traceback. Every layer's class is checked before any is converted, so an
unsupported class is what the error names even when another problem (a tensor input, say) comes first.

Handlers take vectors unless registered with `tensors=True` (`@handles("hgq2", "QDense", tensors=True)`):
a layer whose input is a tensor of rank > 1 and whose handler is not marked is refused with its name and
class, before the handler runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .builder import ExportError, FixedType, ModelBuilder
from .graph import KLayer, KModel

Handler = Callable[["Context", KLayer], None]
_HANDLERS: dict[tuple[str, str], Handler] = {}
_TENSOR_AWARE: set[tuple[str, str]] = set()  # (family, class) whose handler takes inputs of any rank


def handles(family: str, *class_names: str, tensors: bool = False):
    def deco(fn: Handler) -> Handler:
        for c in class_names:
            _HANDLERS[(family, c)] = fn
            if tensors:
                _TENSOR_AWARE.add((family, c))
        return fn

    return deco


def supported() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for fam, c in sorted(_HANDLERS):
        out.setdefault(fam, []).append(c)
    return out


@dataclass
class Tensor:
    """The value a Keras layer produces, as a model.json node: its name, its number of elements, its
    per-element types when they are known (inputs, quantisers; `None` for exact Dense outputs), in
    row-major order, and its shape without the batch axis (`None`: a vector of `n`)."""

    node: str
    n: int
    types: list[FixedType] | None = None
    shape: tuple | None = None

    @property
    def dims(self) -> tuple:
        return tuple(self.shape) if self.shape is not None else (self.n,)


@dataclass
class Context:
    model: KModel
    builder: ModelBuilder
    tensors: dict[str, Tensor] = field(default_factory=dict)
    # Post-training quantisation settings for float models (see ptq.py); None for quantised models.
    precision: object | None = None

    def input_of(self, layer: KLayer, k: int = 0) -> Tensor:
        if k >= len(layer.inbound):
            raise ExportError(f"layer {layer.name!r} ({layer.class_name}) has no input {k}")
        src = layer.inbound[k]
        if src not in self.tensors:
            raise ExportError(f"layer {layer.name!r} reads {src!r}, which was not converted before it")
        return self.tensors[src]


def convert(model: KModel, precision=None, name: str | None = None) -> ModelBuilder:
    """Convert a read model into a ModelBuilder (call `.write(path)` or `.to_json()`)."""
    # Import the handler modules so they register themselves.
    from . import hgq1, hgq2, keras_std, qkeras  # noqa: F401

    # Only the file's name: the same model exported anywhere gives the same model.json.
    source = str(model.source).replace("\\", "/").rsplit("/", 1)[-1]
    ctx = Context(model, ModelBuilder(name=name or model.name, description=f"exported by fastml-export from {source}"), precision=precision)
    for layer in model.layers:  # every class first: an unsupported one is the error, whatever else is wrong
        if (layer.family, layer.class_name) not in _HANDLERS:
            sup = "; ".join(f"{fam}: {', '.join(cs)}" for fam, cs in supported().items())
            raise ExportError(
                f"layer {layer.name!r} of class {layer.class_name} ({layer.family}) is not supported; supported: {sup}"
            )
    for layer in model.layers:
        key = (layer.family, layer.class_name)
        if key not in _TENSOR_AWARE:
            for src in layer.inbound:
                t = ctx.tensors.get(src)
                if t is not None and len(t.dims) > 1:
                    raise ExportError(f"layer {layer.name!r} ({layer.class_name}) reads a tensor of shape {list(t.dims)}; "
                                      f"the {layer.class_name} importer supports vector (rank-1) inputs only")
        _HANDLERS[key](ctx, layer)
    outputs = model.extra.get("outputs") or [model.layers[-1].name]
    for o in outputs:
        t = ctx.tensors[o]
        ctx.builder.output(ctx.builder.unique(f"{o}_out"), t.node)
    return ctx.builder
