"""A framework-neutral view of a Keras model as read from a file or a live object.

Readers (`keras2.py`: Keras 2 `.h5` and `model.json` + weights `.h5`; `keras3.py`: Keras 3 `.keras`;
`live.py`: a model object in memory) produce a `KModel`; converters (`registry.py` handlers) consume it.
Nothing here imports TensorFlow, Keras or JAX.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class KLayer:
    """One layer: its name, Keras class, framework family, config, inputs and weights.

    `family` tells converters whose semantics apply: "keras" (plain Keras), "qkeras" (QKeras, Keras 2 or
    the qkeras-v3 package for Keras 3), "qkeras_hgq2" (hgq2's QKeras look-alike, whose quantized_bits(b, i)
    counts b without the sign bit), "hgq1" (HGQ v1 proxy models), "hgq2" (HGQ2). `weights` maps variable
    names (e.g. "kernel", "bias", "gamma", or a quantiser's "i", "f", "b", "k") to arrays; readers keep
    names as the file has them and converters look up what they need.
    """

    name: str
    class_name: str
    family: str
    config: dict
    inbound: list[str]
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    module: str | None = None


@dataclass
class KModel:
    name: str
    layers: list[KLayer]
    keras_version: int
    source: str
    # Shape of the model input without the batch dimension, when the file states it.
    input_shape: tuple | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def layer(self, name: str) -> KLayer:
        for l in self.layers:
            if l.name == name:
                return l
        raise KeyError(name)
