#!/usr/bin/env python3
"""Reference sets of Keras-3 models: HGQ2 0.2.0 and hgq2's qkeras compatibility module (env .refs-venv/hgq2).

For every model: `model.predict` (the framework, float32) and the float64 evaluation of
refs/exact_eval.py (exact). outputs.npy holds the exact values; where the framework's float32 run
differs, its values are kept in outputs_framework_float32.npy and counted in meta.json.
Run by refs/make_refs.sh; by hand: KERAS_BACKEND=jax .refs-venv/hgq2/bin/python refs/gen_hgq2.py
"""

import json
import os
import sys
from pathlib import Path

os.environ.setdefault('KERAS_BACKEND', 'jax')
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import refgen  # noqa: E402
from refgen import PEERS, REFS  # noqa: E402

DISTS = ['hgq2', 'keras', 'jax', 'jaxlib', 'numpy', 'quantizers', 'h5py']
BATCH = 10000


def sets():
    s = {}
    for m in ('hgq', 'homog16', 'qkeras6'):
        s[f'peers_{m}'] = dict(
            sources=[PEERS / 'models' / f'{m}.keras'], W=16, I=6,
            check=(PEERS / 'results' / 'x_test.txt', PEERS / 'results' / f'{m}.expected_logits.txt'),
            framework='hgq2 (qkeras compat)' if m == 'qkeras6' else 'hgq2',
            note="the peers' model (../shared/peers/README.md); inputs on ap_fixed<16,6> like their x_test",
        )
    models = REFS / 'models'
    for build in sorted(models.glob('hgq2*.build.json')):
        b = json.loads(build.read_text())
        s[b['name']] = dict(sources=[models / f for f in b['files']], W=b['W'], I=b['I'],
                            framework=b['framework'], note=b['description'], build=refgen.rel(build))
    return s


def compute(name, spec):
    import hgq  # noqa: F401  (registers the HGQ2 layers)
    import keras
    import qkeras  # noqa: F401  (hgq2's Keras-3 qkeras compat: quantized_bits, quantized_relu)

    import exact_eval

    model = keras.models.load_model(spec['sources'][0], compile=False)
    meta = {'framework': spec['framework'], 'versions': refgen.versions(*DISTS),
            'source_model': [refgen.rel(p) for p in spec['sources']],
            'source_sha256': {refgen.rel(p): refgen.file_sha256(p) for p in spec['sources']},
            'description': spec['note']}
    if 'build' in spec:
        meta['build_info'] = spec['build']
    if 'check' in spec:  # the brief's first check: our predict equals the peers' golden logits exactly
        xt = np.loadtxt(spec['check'][0])
        exp = np.loadtxt(spec['check'][1])
        got = model.predict(xt, verbose=0, batch_size=1000)
        bad = int(np.sum(got != exp))
        ex = exact_eval.eval_hgq2(model, xt)
        meta['peers_check'] = {'inputs': refgen.rel(spec['check'][0]), 'expected': refgen.rel(spec['check'][1]),
                               'predict_mismatches': bad, 'exact_eval_mismatches': int(np.sum(ex != exp))}
        if bad:
            raise SystemExit(f'{name}: predict differs from {spec["check"][1]} in {bad} values')
    n = int(model.inputs[0].shape[-1])
    x = refgen.inputs(n, spec['W'], spec['I'], refgen.N_VECTORS)
    y_fw = np.asarray(model.predict(x.astype(np.float32), verbose=0, batch_size=BATCH), dtype=np.float64)
    y_ex = exact_eval.eval_hgq2(model, x)
    cmp = refgen.compare(y_ex, y_fw)
    meta.update(refgen.input_meta(n, spec['W'], spec['I'], refgen.N_VECTORS))
    meta['exact'] = True
    meta['framework_arithmetic'] = 'float32'
    meta['how'] = (
        'outputs.npy = the exact outputs of the last layer (logits, no softmax in these models): the forward '
        'pass redone in float64 by refs/exact_eval.py:eval_hgq2 with the model\'s own quantised weights '
        '(layer.qkernel/qbias) and quantiser parameters (kif, round and overflow modes), every sum checked '
        f'exact. The framework\'s own model.predict (float32, jax CPU, batch {BATCH}) is compared below.')
    meta['framework_float32'] = cmp | {'how': f'keras model.predict, float32, batch_size={BATCH}'}
    extra = {}
    if cmp['mismatched_values']:
        meta['framework_float32']['file'] = 'outputs_framework_float32.npy'
        meta['framework_float32']['note'] = (
            'the float32 matmul of the framework rounds sums wider than 24 bits; the next quantiser then '
            'sometimes lands one step off. The exact values are in outputs.npy.')
        extra['outputs_framework_float32.npy'] = y_fw.astype(np.float32)
    refgen.log(f'{name}: framework float32 vs exact: {cmp["mismatched_values"]} values differ')
    return y_ex, meta, extra


if __name__ == '__main__':
    refgen.run_sets(sets(), compute, Path(__file__).resolve(), DISTS, 'hgq2 env')
