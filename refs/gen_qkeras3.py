#!/usr/bin/env python3
"""Reference set of qkeras-v3_3layer.keras: QKeras for Keras 3 (qkeras-v3 1.2.1, keras 3.15.1, jax backend;
env .refs-venv/qkeras3, qkeras-v3 installed without its tensorflow dependencies, which the jax backend
does not need).

outputs.npy = qkeras-v3's predict (float32) of the logits sub-model (layer `output`). It is the same
network as qkeras_3layer (same weights, same quantisers), so the float32 outputs are compared with the
exact qkeras_3layer reference (QKeras 0.9 float64 run): equal values mean these outputs are exact too.
"""

import json
import os
import sys
from pathlib import Path

os.environ.setdefault('KERAS_BACKEND', 'jax')
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import refgen  # noqa: E402
from refgen import REFERENCE, REFS  # noqa: E402

DISTS = ['qkeras-v3', 'keras', 'jax', 'jaxlib', 'numpy', 'h5py']
BATCH = 10000
K = REFERENCE / 'example-models' / 'keras'


def sets():
    return {'qkeras-v3_3layer': dict(
        sources=[K / 'qkeras-v3_3layer.keras'], W=16, I=6, logits='output',
        note='the qkeras_3layer jet tagger saved by qkeras-v3 in the Keras 3 .keras format; logits of layer '
             '`output`; input grid fixed<16,6>',
        # the cross-check depends on the qkeras_3layer outputs: part of the recipe
        extra={'qkeras_3layer_outputs': refgen.file_sha256(REFS / 'qkeras_3layer' / 'outputs.npy')
               if (REFS / 'qkeras_3layer' / 'outputs.npy').exists() else None})}


def compute(name, spec):
    import keras
    import qkeras  # noqa: F401  (registers the qkeras-v3 layers and quantizers)

    model = keras.models.load_model(spec['sources'][0], compile=False)
    sub = keras.Model(model.inputs, model.get_layer(spec['logits']).output)
    n = int(sub.inputs[0].shape[-1])
    x = refgen.inputs(n, spec['W'], spec['I'], refgen.N_VECTORS)
    y = np.asarray(sub.predict(x.astype(np.float32), verbose=0, batch_size=BATCH), dtype=np.float64)
    meta = {'framework': 'qkeras-v3', 'versions': refgen.versions(*DISTS),
            'source_model': [refgen.rel(p) for p in spec['sources']],
            'source_sha256': {refgen.rel(p): refgen.file_sha256(p) for p in spec['sources']},
            'description': spec['note'], 'logits_layer': spec['logits']}
    meta.update(refgen.input_meta(n, spec['W'], spec['I'], refgen.N_VECTORS))
    meta['framework_arithmetic'] = 'float32'
    meta['how'] = f'qkeras-v3 predict (keras 3, jax backend, float32, batch_size={BATCH}) of the logits sub-model'
    ref = REFS / 'qkeras_3layer' / 'outputs.npy'
    if ref.exists():
        r = np.load(ref).astype(np.float64)
        cmp = refgen.compare(r, y) if r.shape == y.shape else {'error': f'shape {r.shape}'}
        meta['crosscheck_qkeras_3layer'] = cmp | {
            'how': 'against tests/data/refs/qkeras_3layer/outputs.npy (QKeras 0.9, exact float64 run, same inputs)',
            'reference_sha256': refgen.file_sha256(ref)}
        meta['exact'] = cmp.get('mismatched_values') == 0
    else:
        meta['exact'] = False
        meta['crosscheck_qkeras_3layer'] = {'error': 'qkeras_3layer reference not made yet'}
    refgen.log(f'{name}: vs qkeras_3layer: {meta["crosscheck_qkeras_3layer"].get("mismatched_values")}')
    return y, meta, {}


if __name__ == '__main__':
    refgen.run_sets(sets(), compute, Path(__file__).resolve(), DISTS, 'qkeras3 env')
