#!/usr/bin/env python3
"""Reference sets of real QKeras 0.9.0 models (Keras 2, tensorflow-cpu 2.14.1; env .refs-venv/qkeras).

For every model: `predict` of the logits sub-model as QKeras runs it (float32), and the same model
rebuilt with every layer in float64 (`"dtype": "float64"` in its config, tf.keras floatx float64): the
QKeras quantisers are exact on exact inputs and float64 sums are exact here, so that run is exact.
outputs.npy holds the float64 run; where the float32 run differs its values are kept in
outputs_framework_float32.npy and counted in meta.json.
"""

import json
import os
import sys
from pathlib import Path

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import refgen  # noqa: E402
from refgen import REFERENCE, REFS  # noqa: E402

DISTS = ['tensorflow-cpu', 'keras', 'QKeras', 'numpy', 'h5py', 'tensorflow-model-optimization']
BATCH = 10000
K = REFERENCE / 'example-models' / 'keras'


def sets():
    s = {
        'qkeras_3layer': dict(
            sources=[K / 'qkeras_3layer.json', K / 'qkeras_3layer_weights.h5'], W=16, I=6, logits='output',
            note='the hls4ml tutorial QKeras jet tagger (../shared/reference/SOURCES.md); logits of layer '
                 '`output` (the softmax layer is cut off); input grid fixed<16,6> as in its hls4ml config'),
        'qkeras_model_3': dict(
            sources=[REFERENCE / 'hector-plata-hls4ml-tutorial' / 'model_3' / 'KERAS_check_best_model.h5'], W=16, I=6,
            logits='output',
            note='the hls4ml tutorial part-4 QKeras model (6-bit, 75% pruned; tf.keras 2.11 .h5) as QKeras runs '
                 'it; logits of layer `output`; input grid fixed<16,6> as in its hls4ml config'),
    }
    models = REFS / 'models'
    for build in sorted(models.glob('qkeras_r*.build.json')):
        b = json.loads(build.read_text())
        s[b['name']] = dict(sources=[models / f for f in b['files']], W=b['W'], I=b['I'], logits=None,
                            note=b['description'], build=refgen.rel(build))
    return s


def load(spec, dtype):
    """Build the model from its config with every layer's dtype set to `dtype`, then load the weights."""
    import h5py
    import tensorflow as tf
    from qkeras.utils import _add_supported_quantized_objects

    co = {}
    _add_supported_quantized_objects(co)
    src = spec['sources']
    if src[0].suffix == '.json':
        cfg, weights = src[0].read_text(), src[1]
    else:
        with h5py.File(src[0], 'r') as f:
            cfg = f.attrs['model_config']
            cfg = cfg.decode() if isinstance(cfg, bytes) else cfg
        weights = src[0]
    if dtype != 'float32':
        cfg = cfg.replace('"dtype": "float32"', f'"dtype": "{dtype}"')
    model = tf.keras.models.model_from_json(cfg, custom_objects=co)
    model.load_weights(weights)
    if spec['logits']:
        model = tf.keras.Model(model.inputs, model.get_layer(spec['logits']).output)
    return model


def compute(name, spec):
    import tensorflow as tf

    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(2)
    m32 = load(spec, 'float32')
    n = int(m32.inputs[0].shape[-1])
    x = refgen.inputs(n, spec['W'], spec['I'], refgen.N_VECTORS)
    y32 = np.asarray(m32.predict(x.astype(np.float32), verbose=0, batch_size=BATCH), dtype=np.float64)
    tf.keras.backend.set_floatx('float64')
    m64 = load(spec, 'float64')
    assert all(w.dtype == np.float64 for w in m64.get_weights() if w.dtype.kind == 'f'), 'float64 rebuild failed'
    y64 = np.asarray(m64.predict(x, verbose=0, batch_size=BATCH), dtype=np.float64)
    cmp = refgen.compare(y64, y32)
    meta = {'framework': 'qkeras', 'versions': refgen.versions(*DISTS),
            'source_model': [refgen.rel(p) for p in spec['sources']],
            'source_sha256': {refgen.rel(p): refgen.file_sha256(p) for p in spec['sources']},
            'description': spec['note'], 'logits_layer': spec['logits'] or m32.layers[-1].name}
    if 'build' in spec:
        meta['build_info'] = spec['build']
    meta.update(refgen.input_meta(n, spec['W'], spec['I'], refgen.N_VECTORS))
    meta['exact'] = True
    meta['framework_arithmetic'] = 'float32'
    meta['how'] = (
        'outputs.npy = QKeras predict of the logits sub-model rebuilt in float64 (every layer dtype float64; '
        'QKeras quantisers are exact on exact inputs and the float64 sums are exact at these widths). '
        f'QKeras as normally run (float32, batch {BATCH}) is compared below.')
    meta['framework_float32'] = cmp | {'how': f'tf.keras predict, float32 model, batch_size={BATCH}'}
    extra = {}
    if cmp['mismatched_values']:
        meta['framework_float32']['file'] = 'outputs_framework_float32.npy'
        meta['framework_float32']['note'] = ('float32 sums wider than 24 bits are rounded, and a quantiser '
                                             'after them can then land one step off')
        extra['outputs_framework_float32.npy'] = y32.astype(np.float32)
    refgen.log(f'{name}: float32 vs float64 run: {cmp["mismatched_values"]} values differ')
    return y64, meta, extra


if __name__ == '__main__':
    refgen.run_sets(sets(), compute, Path(__file__).resolve(), DISTS, 'qkeras env')
