#!/usr/bin/env python3
"""Cross-check the stored outputs of the Keras-3 (HGQ2 / hgq2-qkeras) reference sets against hls4ml 1.3.0's
C simulation (bit-exact conversion of HGQ2 models; env .refs-venv/hgq2-hls4ml = the hgq2 env + hls4ml).

For each set made by gen_hgq2.py: convert the model (Vitis backend, io_parallel, Latency, as in
../shared/peers/run_hls4ml.py), compile with g++, run the same inputs, and record in meta.json under
`crosscheck_hls4ml_csim` how many values differ from outputs.npy. Nothing else in meta.json changes.
Skipped when meta.json already holds a cross-check of the same outputs with the same hls4ml version.
"""

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault('KERAS_BACKEND', 'jax')
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import refgen  # noqa: E402
from refgen import REFS, ROOT  # noqa: E402

WORK = ROOT / '.refs-venv' / 'work'


def one(name):
    import hgq  # noqa: F401
    import keras
    import qkeras  # noqa: F401

    import hls4ml

    d = REFS / name
    meta = json.loads((d / 'meta.json').read_text())
    src = ROOT / meta['source_model'][0] if not meta['source_model'][0].startswith('../') else \
        (ROOT / meta['source_model'][0]).resolve()
    model = keras.models.load_model(src, compile=False)
    inp = meta['inputs']
    x = refgen.inputs(inp['n_features'], inp['W'], inp['I'], inp['N'], inp['seed'])
    y = np.load(d / meta['outputs_file']).astype(np.float64)
    t0 = time.time()
    res = {'hls4ml': hls4ml.__version__, 'outputs_sha256': meta['outputs_sha256'],
           'how': 'hls4ml convert_from_keras_model, Vitis backend, io_parallel, Latency, RF 1, '
                  "Model Precision fixed<16,6> as fallback (HGQ2 layers carry their own bit-exact types); "
                  'g++ C simulation on the same inputs'}
    try:
        hm = hls4ml.converters.convert_from_keras_model(
            model, hls_config={'Model': {'Precision': 'fixed<16,6>', 'ReuseFactor': 1, 'Strategy': 'Latency'}},
            output_dir=str(WORK / f'xcheck_{name}'), backend='Vitis', io_type='io_parallel',
            part='xcvu9p-flga2104-2L-e', clock_period=5)
        hm.compile()
        yc = np.asarray(hm.predict(np.ascontiguousarray(x)), dtype=np.float64).reshape(y.shape)
        res.update(refgen.compare(y, yc))
        types = {}
        for layer in hm.get_layers():
            try:
                types[layer.name] = {k: str(v.precision) for k, v in layer.types.items()}
            except Exception:  # noqa: BLE001
                pass
        res['layer_types'] = types
    except Exception as e:  # noqa: BLE001
        res['error'] = f'{type(e).__name__}: {e}'[:600]
    res['timing_s'] = round(time.time() - t0, 1)
    meta['crosscheck_hls4ml_csim'] = res
    (d / 'meta.json').write_text(json.dumps(meta, indent=1) + '\n')
    refgen.log(f'{name}: hls4ml csim vs outputs.npy: '
               f'{res.get("mismatched_values", "error: " + res.get("error", "?")[:200])}')


def main():
    import subprocess

    if len(sys.argv) == 3 and sys.argv[1] == '--child':
        one(sys.argv[2])
        return
    from importlib.metadata import version

    hv = version('hls4ml')
    for d in sorted(REFS.iterdir()):
        mp = d / 'meta.json'
        if not mp.exists() or not refgen.wanted(d.name):
            continue
        meta = json.loads(mp.read_text())
        if not meta.get('framework', '').startswith('hgq2'):
            continue
        xc = meta.get('crosscheck_hls4ml_csim', {})
        if (not os.environ.get('REFS_FORCE') and xc.get('outputs_sha256') == meta['outputs_sha256']
                and xc.get('hls4ml') == hv):
            refgen.log(f'{d.name}: hls4ml cross-check up to date')
            continue
        refgen.log(f'{d.name}: hls4ml cross-check ...')
        subprocess.run([sys.executable, __file__, '--child', d.name], check=True)


if __name__ == '__main__':
    main()
