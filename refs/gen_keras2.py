#!/usr/bin/env python3
"""Reference sets that need Keras 2 + hls4ml or HGQ v1 (env .refs-venv/keras2: tensorflow-cpu 2.14.1,
qkeras 0.9.0, hls4ml 1.3.0, HGQ 0.2.6).

* hgq_jet_classifier: the HGQ v1 proxy model. outputs.npy = the exact outputs (float64 re-evaluation by
  refs/exact_eval.py:eval_hgq1_proxy with the model's own quantisers), cross-checked against hls4ml
  C simulation of the same proxy model; HGQ's own float32 predict is compared in meta.json.
* hls4ml_*: post-training quantisation of float (and one QKeras) Keras models by hls4ml 1.3.0 with
  their hls4ml configs (Vivado backend, io_parallel, Latency): outputs.npy = hls4ml's C simulation
  (g++, ap_fixed: exact by construction) of the model without its softmax.
"""

import json
import os
import sys
from pathlib import Path

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import refgen  # noqa: E402
from refgen import REFERENCE, ROOT  # noqa: E402

DISTS = ['tensorflow-cpu', 'keras', 'QKeras', 'hls4ml', 'HGQ', 'numpy', 'h5py']
BATCH = 10000
K = REFERENCE / 'example-models' / 'keras'
HP = REFERENCE / 'hector-plata-hls4ml-tutorial'
WORK = ROOT / '.refs-venv' / 'work'
PART_KU115 = 'xcku115-flvb2104-2-i'
PART_U250 = 'xcu250-figd2104-2L-e'


def sets():
    s = {
        'hgq_jet_classifier': dict(
            kind='hgq1', sources=[K / 'hgq_jet_classifier.h5'], W=12, I=5,
            note='HGQ v1 proxy jet classifier (../shared/reference/SOURCES.md); it has no softmax, the output is '
                 'the dense_4 quantizer; input grid fixed<12,5> = the union of its per-input '
                 'FixedPointQuantizer types (bits<=12, integers<=5, fractional bits<=7)'),
    }
    keras3 = {'': 'KERAS_3layer_weights.h5', '_70pruned': 'KERAS_3layer_70pruned_retrained_weights.h5',
              '_95pruned': 'KERAS_3layer_95pruned_retrained_weights.h5'}
    for suffix, w in keras3.items():
        s[f'hls4ml_KERAS_3layer{suffix}'] = dict(
            kind='hls4ml', sources=[K / 'KERAS_3layer.json', K / w, REFERENCE / 'example-models' / 'keras-config.yml'],
            W=16, I=6, config='keras-config', part=PART_KU115,
            note=f'float Keras KERAS_3layer with {w}, post-training quantised by hls4ml with keras-config.yml '
                 '(Model Precision ap_fixed<16,6>, ReuseFactor 1, io_parallel); the softmax of output_softmax is '
                 'replaced by linear before conversion, so the outputs are the Dense logits at ap_fixed<16,6>')
    for m in (1, 2, 3):
        s[f'hls4ml_model_{m}'] = dict(
            kind='hls4ml', sources=[HP / f'model_{m}' / 'KERAS_check_best_model.h5',
                                    HP / f'model_{m}' / 'hls4ml_prj' / 'hls4ml_config.yml'],
            W=16, I=6, config='yml', part=PART_U250,
            note=f'hls4ml tutorial model_{m} ({"QKeras 6-bit, 75% pruned" if m == 3 else "float" + (", 75% pruned" if m == 2 else "")}) '
                 f'converted by hls4ml with its own hls4ml_config.yml (HLSConfig as stored; softmax layer cut off, '
                 'outputs = the `output` Dense logits)')
    return s


def hls_config_from_yml(path):
    import yaml

    class L(yaml.SafeLoader):
        pass

    L.add_multi_constructor('!', lambda loader, suffix, node: None)
    doc = yaml.load(Path(path).read_text(), Loader=L)
    cfg = doc['HLSConfig']
    cfg.get('LayerName', {}).pop('softmax', None)
    return cfg, doc


def keras_model(spec):
    import h5py
    import tensorflow as tf
    from qkeras.utils import _add_supported_quantized_objects

    co = {}
    _add_supported_quantized_objects(co)
    src = spec['sources']
    if src[0].name == 'KERAS_3layer.json':
        cfg = json.loads(src[0].read_text())
        for layer in cfg['config']['layers']:
            if layer['config'].get('activation') == 'softmax':
                layer['config']['activation'] = 'linear'
        model = tf.keras.models.model_from_json(json.dumps(cfg), custom_objects=co)
        model.load_weights(src[1])
        return model
    model = tf.keras.models.load_model(src[0], custom_objects=co, compile=False)
    if model.layers[-1].name == 'softmax':
        model = tf.keras.Model(model.inputs, model.get_layer('output').output)
    return model


def hls_convert(name, model, hls_config, part, extra_kwargs=None):
    import hls4ml

    outdir = WORK / f'hls4ml_{name}'
    hm = hls4ml.converters.convert_from_keras_model(
        model, hls_config=hls_config, output_dir=str(outdir), backend='Vivado', io_type='io_parallel', part=part,
        clock_period=5, **(extra_kwargs or {}))
    hm.compile()
    types = {}
    for layer in hm.get_layers():
        try:
            types[layer.name] = {k: str(v.precision) for k, v in layer.types.items()}
        except Exception:  # noqa: BLE001
            pass
    return hm, types


def csim(hm, x, n_out):
    y = np.asarray(hm.predict(np.ascontiguousarray(x, dtype=np.float64)), dtype=np.float64)
    return y.reshape(len(x), n_out)


def compute(name, spec):
    import tensorflow as tf

    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(2)
    meta = {'versions': refgen.versions(*DISTS), 'source_model': [refgen.rel(p) for p in spec['sources']],
            'source_sha256': {refgen.rel(p): refgen.file_sha256(p) for p in spec['sources']},
            'description': spec['note']}
    extra = {}
    if spec['kind'] == 'hgq1':
        from HGQ.proxy import FixedPointQuantizer

        import exact_eval

        model = tf.keras.models.load_model(spec['sources'][0], compile=False,
                                           custom_objects={'FixedPointQuantizer': FixedPointQuantizer})
        n, n_out = int(model.inputs[0].shape[-1]), int(model.outputs[0].shape[-1])
        x = refgen.inputs(n, spec['W'], spec['I'], refgen.N_VECTORS)
        meta.update(refgen.input_meta(n, spec['W'], spec['I'], refgen.N_VECTORS))
        y_fw = np.asarray(model.predict(x.astype(np.float32), verbose=0, batch_size=BATCH), dtype=np.float64)
        y = exact_eval.eval_hgq1_proxy(model, x)
        meta['framework'] = 'HGQ (v1, proxy model)'
        meta['exact'] = True
        meta['framework_arithmetic'] = 'float32'
        meta['how'] = ('outputs.npy = the exact outputs: the proxy model re-evaluated in float64 by '
                       'refs/exact_eval.py:eval_hgq1_proxy (its own FixedPointQuantizer bits/integers/keep_negative '
                       'and RND/SAT modes, its stored already-quantised Dense weights; every sum checked exact)')
        cmp = refgen.compare(y, y_fw)
        meta['framework_float32'] = cmp | {'how': f'HGQ 0.2.6 proxy model.predict, float32, batch_size={BATCH}'}
        if cmp['mismatched_values']:
            meta['framework_float32']['file'] = 'outputs_framework_float32.npy'
            extra['outputs_framework_float32.npy'] = y_fw.astype(np.float32)
        try:
            hm, types = hls_convert(name, model, None, PART_U250)
            y_c = csim(hm, x, n_out)
            meta['crosscheck_hls4ml_csim'] = refgen.compare(y, y_c) | {
                'how': 'hls4ml 1.3.0 convert_from_keras_model(proxy model) Vivado io_parallel, g++ C simulation',
                'layer_types': types}
        except Exception as e:  # noqa: BLE001
            meta['crosscheck_hls4ml_csim'] = {'error': f'{type(e).__name__}: {e}'[:500]}
        refgen.log(f'{name}: float32 vs exact {cmp["mismatched_values"]} differ; csim: '
                   f'{meta["crosscheck_hls4ml_csim"].get("mismatched_values", "n/a")}')
        return y, meta, extra

    # hls4ml post-training quantisation
    model = keras_model(spec)
    n, n_out = int(model.inputs[0].shape[-1]), int(model.outputs[0].shape[-1])
    x = refgen.inputs(n, spec['W'], spec['I'], refgen.N_VECTORS)
    meta.update(refgen.input_meta(n, spec['W'], spec['I'], refgen.N_VECTORS))
    if spec['config'] == 'yml':
        hls_config, doc = hls_config_from_yml(spec['sources'][1])
        meta['hls4ml_config_used'] = {'HLSConfig': hls_config, 'IOType': doc.get('IOType'),
                                      'Backend': doc.get('Backend'), 'Part': doc.get('Part'),
                                      'note': "the stored config's HLSConfig minus its `softmax` entry"}
    else:
        hls_config = {'Model': {'Precision': 'ap_fixed<16,6>', 'ReuseFactor': 1}}
        meta['hls4ml_config_used'] = {'HLSConfig': hls_config, 'IOType': 'io_parallel', 'Backend': 'Vivado',
                                      'Part': spec['part'], 'note': 'as in ../shared/reference/example-models/keras-config.yml'}
    hm, types = hls_convert(name, model, hls_config, spec['part'])
    y = csim(hm, x, n_out)
    y_keras = np.asarray(model.predict(x.astype(np.float32), verbose=0, batch_size=BATCH), dtype=np.float64)
    meta['framework'] = 'hls4ml'
    meta['exact'] = True
    meta['framework_arithmetic'] = 'exact (ap_fixed C simulation)'
    meta['how'] = ('outputs.npy = hls4ml 1.3.0 C simulation (convert_from_keras_model, Vivado backend, io_parallel, '
                   'Latency strategy, compiled with g++; ap_fixed arithmetic, exact) of the model without softmax; '
                   'inputs passed as float64 on the fixed<16,6> grid (exact in the ap_fixed<16,6> input)')
    meta['hls4ml_layer_types'] = types
    meta['hls4ml_semantics_note'] = (
        "hls4ml's Dense (nnet_dense_latency.h) casts every product x*w into accum_t before summing "
        '(mult[] is accum_t: TRN, WRAP per product), casts the bias into accum_t, sums in accum_t (WRAP) '
        'and casts the sum to result_t; ReLU results are cast to their result_t. With accum_t narrower than '
        'the product (e.g. fixed<16,6> for fixed<16,6> x fixed<16,6>) this is NOT an exact Dense followed by '
        'one Quantize: each product is truncated to the accumulator grid first.')
    meta['keras_float_vs_hls4ml'] = {
        'max_abs_diff': float(np.max(np.abs(y - y_keras))),
        'argmax_agreement': float(np.mean(np.argmax(y, 1) == np.argmax(y_keras, 1))),
        'note': 'the float Keras model (float32 predict) against the quantised hls4ml outputs; information only'}
    refgen.log(f'{name}: hls4ml csim done; max |keras float - hls4ml| = {meta["keras_float_vs_hls4ml"]["max_abs_diff"]:.3g}')
    return y, meta, extra


if __name__ == '__main__':
    refgen.run_sets(sets(), compute, Path(__file__).resolve(), DISTS, 'keras2 env')
