#!/usr/bin/env python3
"""Build the small random test models of tests/data/refs/models/ (test data for the importers).

Every model is a Dense stack with random widths (3..24), built from a fixed seed, trained for a few
steps on seeded random data (so its weights are not the initialisers'), and saved with a sidecar
`<name>.build.json` (input type, seed, what it exercises). A model whose file already exists is left
alone (REFS_REBUILD=1 rebuilds): the stored file is the source of truth for the reference outputs.

  hgq2 env (KERAS_BACKEND=jax):   python refs/build_random_models.py hgq2      -> hgq2_r*.keras, hgq2qk_r*.keras
  QKeras env (tf 2.14, Keras 2):  python refs/build_random_models.py qkeras    -> qkeras_r*.h5 / .json + _weights.h5
  one model:                      python refs/build_random_models.py hgq2 hgq2_r3

Each model is built in its own subprocess: hgq2's `qkeras` compatibility module changes global HGQ2
quantiser defaults (../shared/peers/README.md, "What failed" #11).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODELS = Path(os.environ.get('REFS_MODELS_DIR', HERE.parent / 'tests' / 'data' / 'refs' / 'models'))

# name -> (framework, seed, input type (W, I), description)
SPECS = {
    'hgq2_r1': ('hgq2', 101, (16, 6), 'HGQ2 QDense x3, default quantisers: per-weight kbi kernels (RND, SAT_SYM), '
                'per-feature kif activations (RND, WRAP), relu; trace_minmax'),
    'hgq2_r2': ('hgq2', 102, (12, 4), 'HGQ2 QDense x4 with per-tensor kif quantisers of mixed modes: inputs TRN/SAT, '
                'kernels RND_CONV/SAT_SYM, biases TRN/WRAP, hidden datalanes RND/SAT; relu'),
    'hgq2_r3': ('hgq2', 103, (10, 3), 'HGQ2 QBatchNormDense x3 (BatchNorm fused into the quantised kernel) with kbi '
                'per-weight kernels, kif per-feature datalanes (RND, WRAP), relu; trace_minmax'),
    'hgq2_r4': ('hgq2', 104, (14, 5), 'HGQ2 QDense -> QBatchNormalization (standalone, quantised scale/offset) -> relu '
                '-> QDense -> QDense; kif per-tensor TRN/WRAP datalanes, kbi per-weight kernels'),
    'hgq2qk_r1': ('hgq2qk', 201, (16, 6), "hgq2 qkeras compat: QDense(quantized_bits(5,0,alpha=1)) + "
                  "QActivation(quantized_relu(6)) x2, final QDense; no input quantiser"),
    'hgq2qk_r2': ('hgq2qk', 202, (12, 5), "hgq2 qkeras compat: input QActivation(quantized_bits(11,4,alpha=1)), "
                  "QDense(quantized_bits(7,1,alpha=1)), QActivation(quantized_relu(8,3)) x3, final QDense"),
    'hgq2qk_r3': ('hgq2qk', 203, (16, 6), "hgq2 qkeras compat: QDense(quantized_bits(3,0,alpha=1)) kernels, "
                  "quantized_bits(9,2,alpha=1) biases, QActivation(quantized_relu(4,1)), final QDense"),
    'qkeras_r1': ('qkeras', 301, (16, 6), 'QKeras 0.9 (Keras 2): QDense(quantized_bits(6,0,alpha=1)) + '
                  'QActivation(quantized_relu(6)) x2, final QDense; saved as .json + _weights.h5'),
    'qkeras_r2': ('qkeras', 302, (16, 6), 'QKeras 0.9: QDense(quantized_bits(8,3,alpha=1)) + quantized_relu(8,3) x3, '
                  '~70% of kernel weights pruned to exactly zero after training; saved as .h5'),
    'qkeras_r3': ('qkeras', 303, (12, 4), 'QKeras 0.9: input QActivation(quantized_bits(10,3,alpha=1)), '
                  'QDense(quantized_bits(4,1,alpha=1)) kernels / quantized_bits(10,4,alpha=1) biases, '
                  'quantized_relu(5,2), one layer without bias, final QDense; saved as .h5'),
}

N_TRAIN = 512
STEPS_EPOCHS = 4


def widths(rng, n_layers):
    """Random feature counts: 3..24 for the input and the hidden layers, 2..6 outputs (keeps the stored
    reference outputs small: 100,000 x n_out values per model)."""
    return [int(v) for v in rng.integers(3, 25, size=n_layers)] + [int(rng.integers(2, 7))]


def train_data(rng, n_in, n_out, W, I):
    import numpy as np

    lim = 2.0 ** (I - 1)
    x = rng.uniform(-lim, lim, size=(N_TRAIN, n_in))
    x = np.floor(x * 2 ** (W - I)) / 2 ** (W - I)
    y = rng.integers(0, n_out, size=N_TRAIN)
    return x.astype('float32'), y


# ---------------------------------------------------------------- HGQ2 (Keras 3, jax backend)

def save_keras3(model, name):
    """Save without the optimizer state (smaller file): save, reload uncompiled, save again."""
    import keras

    path = MODELS / f'{name}.keras'
    model.save(path)
    keras.models.load_model(path, compile=False).save(path)
    return path


def build_hgq2(name, seed, W, I):
    import keras
    import numpy as np
    from hgq.config import QuantizerConfig, QuantizerConfigScope
    from hgq.layers import QBatchNormalization, QBatchNormDense, QDense
    from hgq.utils import trace_minmax

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)

    def kif(place, k, i, f, rnd, ovf, het=False):
        return QuantizerConfig('kif', place, k0=k, i0=i, f0=f, round_mode=rnd, overflow_mode=ovf, trainable=False,
                               heterogeneous_axis=None if het else (), homogeneous_axis=(0,) if het else None)

    in_q = kif('datalane', 1, I - 1, W - I, 'TRN', 'WRAP')
    if name == 'hgq2_r1':
        w = widths(rng, 3)
        with QuantizerConfigScope(place='all', default_q_type='kbi', overflow_mode='SAT_SYM'):
            with QuantizerConfigScope(place='datalane', default_q_type='kif', overflow_mode='WRAP'):
                inp = keras.Input((w[0],), name='x_in')
                x = QDense(w[1], activation='relu', name='fc1', iq_conf=in_q)(inp)
                x = QDense(w[2], activation='relu', name='fc2')(x)
                out = QDense(w[3], name='out')(x)
    elif name == 'hgq2_r2':
        w = widths(rng, 4)
        inp = keras.Input((w[0],), name='x_in')
        x = inp
        for li in range(4):
            iq = kif('datalane', 1, I - 1, W - I, 'TRN', 'SAT') if li == 0 else \
                kif('datalane', 0, int(rng.integers(2, 5)), int(rng.integers(3, 7)), 'RND', 'SAT')
            kq = kif('weight', 1, int(rng.integers(0, 2)), int(rng.integers(3, 8)), 'RND_CONV', 'SAT_SYM')
            bq = kif('bias', 1, int(rng.integers(1, 4)), int(rng.integers(2, 6)), 'TRN', 'WRAP')
            last = li == 3
            x = QDense(w[li + 1], activation=None if last else 'relu', name=f'fc{li + 1}', iq_conf=iq, kq_conf=kq,
                       bq_conf=bq, enable_ebops=False)(x)
        out = x
    elif name == 'hgq2_r3':
        w = widths(rng, 3)
        with QuantizerConfigScope(place='all', default_q_type='kbi', overflow_mode='SAT_SYM'):
            with QuantizerConfigScope(place='datalane', default_q_type='kif', overflow_mode='WRAP'):
                inp = keras.Input((w[0],), name='x_in')
                x = QBatchNormDense(w[1], activation='relu', name='bnd1', iq_conf=in_q)(inp)
                x = QBatchNormDense(w[2], activation='relu', name='bnd2')(x)
                out = QBatchNormDense(w[3], name='bnd3')(x)
    elif name == 'hgq2_r4':
        w = widths(rng, 3)
        dq = kif('datalane', 1, 4, 6, 'TRN', 'WRAP')
        with QuantizerConfigScope(place='weight', default_q_type='kbi', overflow_mode='SAT_SYM'):
            inp = keras.Input((w[0],), name='x_in')
            x = QDense(w[1], name='fc1', iq_conf=in_q)(inp)
            x = QBatchNormalization(name='bn1', iq_conf=dq)(x)
            x = keras.layers.ReLU(name='relu1')(x)
            x = QDense(w[2], activation='relu', name='fc2', iq_conf=kif('datalane', 0, 4, 6, 'TRN', 'WRAP'))(x)
            out = QDense(w[3], name='out', iq_conf=kif('datalane', 0, 3, 5, 'RND', 'SAT'))(x)
    else:
        raise KeyError(name)
    model = keras.Model(inp, out, name=name)
    x, y = train_data(rng, w[0], w[-1], W, I)
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=STEPS_EPOCHS, batch_size=64, verbose=0)
    if name in ('hgq2_r1', 'hgq2_r3'):
        trace_minmax(model, x, batch_size=N_TRAIN)
    return [save_keras3(model, name)], w


def build_hgq2qk(name, seed, W, I):
    import keras
    import numpy as np
    from hgq.config import QuantizerConfig
    from hgq.layers import Quantizer
    from qkeras.qlayers import QActivation, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    # NB: hgq2's compat quantized_bits(b, i) counts b WITHOUT the sign bit: quantized_bits(5,0) == fixed<6,1>.
    if name == 'hgq2qk_r1':
        w = widths(rng, 3)
        inp = keras.Input((w[0],), name='x_in')
        x = inp
        for li in range(2):
            x = QDense(w[li + 1], name=f'fc{li + 1}', kernel_quantizer=quantized_bits(5, 0, alpha=1),
                       bias_quantizer=quantized_bits(5, 0, alpha=1))(x)
            x = QActivation(quantized_relu(6), name=f'relu{li + 1}')(x)
        out = QDense(w[3], name='out', kernel_quantizer=quantized_bits(5, 0, alpha=1),
                     bias_quantizer=quantized_bits(5, 0, alpha=1))(x)
    elif name == 'hgq2qk_r2':
        w = widths(rng, 4)
        inp = keras.Input((w[0],), name='x_in')
        x = QActivation(quantized_bits(11, 4, alpha=1), name='q_in')(inp)
        for li in range(3):
            x = QDense(w[li + 1], name=f'fc{li + 1}', kernel_quantizer=quantized_bits(7, 1, alpha=1),
                       bias_quantizer=quantized_bits(7, 1, alpha=1))(x)
            x = QActivation(quantized_relu(8, 3), name=f'relu{li + 1}')(x)
        out = QDense(w[4], name='out', kernel_quantizer=quantized_bits(7, 1, alpha=1),
                     bias_quantizer=quantized_bits(7, 1, alpha=1))(x)
    elif name == 'hgq2qk_r3':
        w = widths(rng, 2)
        inp = keras.Input((w[0],), name='x_in')
        # an explicit hgq2 input quantiser on the input grid (TRN, WRAP), as in the peers' qkeras6
        x = Quantizer(QuantizerConfig('kif', 'datalane', k0=1, i0=I - 1, f0=W - I, round_mode='TRN',
                                      overflow_mode='WRAP', trainable=False, heterogeneous_axis=(),
                                      homogeneous_axis=None), name='q_in')(inp)
        x = QDense(w[1], name='fc1', kernel_quantizer=quantized_bits(3, 0, alpha=1),
                   bias_quantizer=quantized_bits(9, 2, alpha=1))(x)
        x = QActivation(quantized_relu(4, 1), name='relu1')(x)
        out = QDense(w[2], name='out', kernel_quantizer=quantized_bits(3, 0, alpha=1),
                     bias_quantizer=quantized_bits(9, 2, alpha=1))(x)
    else:
        raise KeyError(name)
    model = keras.Model(inp, out, name=name)
    x, y = train_data(rng, w[0], w[-1], W, I)
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=STEPS_EPOCHS, batch_size=64, verbose=0)
    return [save_keras3(model, name)], w


# ---------------------------------------------------------------- real QKeras (tf 2.14, Keras 2)

def build_qkeras(name, seed, W, I):
    import numpy as np
    import tensorflow as tf
    from qkeras import QActivation, QDense, quantized_bits

    # QActivation quantisers are given as strings: a quantiser object in a QActivation config does not
    # survive Keras 2.14's model_from_json (the tutorial's own files use the legacy serialisation)

    tf.keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    rng = np.random.default_rng(seed)
    keras = tf.keras
    if name == 'qkeras_r1':
        w = widths(rng, 3)
        inp = keras.Input((w[0],), name='x_in')
        x = inp
        for li in range(2):
            x = QDense(w[li + 1], name=f'fc{li + 1}', kernel_quantizer=quantized_bits(6, 0, alpha=1),
                       bias_quantizer=quantized_bits(6, 0, alpha=1))(x)
            x = QActivation('quantized_relu(6)', name=f'relu{li + 1}')(x)
        out = QDense(w[3], name='out', kernel_quantizer=quantized_bits(6, 0, alpha=1),
                     bias_quantizer=quantized_bits(6, 0, alpha=1))(x)
    elif name == 'qkeras_r2':
        w = widths(rng, 4)
        inp = keras.Input((w[0],), name='x_in')
        x = inp
        for li in range(3):
            x = QDense(w[li + 1], name=f'fc{li + 1}', kernel_quantizer=quantized_bits(8, 3, alpha=1),
                       bias_quantizer=quantized_bits(8, 3, alpha=1))(x)
            x = QActivation('quantized_relu(8,3)', name=f'relu{li + 1}')(x)
        out = QDense(w[4], name='out', kernel_quantizer=quantized_bits(8, 3, alpha=1),
                     bias_quantizer=quantized_bits(8, 3, alpha=1))(x)
    elif name == 'qkeras_r3':
        w = widths(rng, 3)
        inp = keras.Input((w[0],), name='x_in')
        x = QActivation('quantized_bits(10,3,alpha=1)', name='q_in')(inp)
        x = QDense(w[1], name='fc1', kernel_quantizer=quantized_bits(4, 1, alpha=1),
                   bias_quantizer=quantized_bits(10, 4, alpha=1))(x)
        x = QActivation('quantized_relu(5,2)', name='relu1')(x)
        x = QDense(w[2], name='fc2', use_bias=False, kernel_quantizer=quantized_bits(4, 1, alpha=1))(x)
        x = QActivation('quantized_relu(5,2)', name='relu2')(x)
        out = QDense(w[3], name='out', kernel_quantizer=quantized_bits(4, 1, alpha=1),
                     bias_quantizer=quantized_bits(10, 4, alpha=1))(x)
    else:
        raise KeyError(name)
    model = keras.Model(inp, out, name=name)
    x, y = train_data(rng, w[0], w[-1], W, I)
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=STEPS_EPOCHS, batch_size=64, verbose=0, shuffle=False)
    if name == 'qkeras_r2':  # prune: zero the ~70% smallest-magnitude kernel weights of every layer
        for layer in model.layers:
            if isinstance(layer, QDense):
                k, *rest = layer.get_weights()
                k[np.abs(k) < np.quantile(np.abs(k), 0.7)] = 0.0
                layer.set_weights([k, *rest])
    if name == 'qkeras_r1':
        paths = [MODELS / f'{name}.json', MODELS / f'{name}_weights.h5']
        paths[0].write_text(model.to_json(indent=1))
        model.save_weights(paths[1])
    else:
        paths = [MODELS / f'{name}.h5']
        model.save(paths[0], include_optimizer=False)
    return paths, w


BUILDERS = {'hgq2': build_hgq2, 'hgq2qk': build_hgq2qk, 'qkeras': build_qkeras}


def build_one(name):
    fw, seed, (W, I), desc = SPECS[name]
    MODELS.mkdir(parents=True, exist_ok=True)
    paths, w = BUILDERS[fw](name, seed, W, I)
    side = {
        'name': name, 'framework': {'hgq2': 'hgq2', 'hgq2qk': 'hgq2 (qkeras compat)', 'qkeras': 'qkeras'}[fw],
        'files': [p.name for p in paths], 'seed': seed, 'input_type': f'fixed<{W},{I}>', 'W': W, 'I': I,
        'widths': w, 'description': desc,
        'training': f'{STEPS_EPOCHS} epochs of Adam(3e-3), batch 64, on {N_TRAIN} seeded random inputs on the '
                    'input grid with random class labels (the weights only need to be non-trivial)',
        'built_by': 'refs/build_random_models.py',
    }
    (MODELS / f'{name}.build.json').write_text(json.dumps(side, indent=1) + '\n')
    print(f'[build_random_models] built {name}: widths {w} -> {", ".join(p.name for p in paths)}', flush=True)


def exists(name):
    fw = SPECS[name][0]
    if fw == 'qkeras':
        main = MODELS / (f'{name}.json' if name == 'qkeras_r1' else f'{name}.h5')
    else:
        main = MODELS / f'{name}.keras'
    return main.exists() and (MODELS / f'{name}.build.json').exists()


def main(argv):
    if not argv or argv[0] not in ('hgq2', 'qkeras'):
        sys.exit(__doc__)
    group = argv[0]
    names = argv[1:] or [n for n, s in SPECS.items() if (s[0] == 'qkeras') == (group == 'qkeras')]
    if len(names) == 1 and os.environ.get('_BUILD_CHILD'):
        build_one(names[0])
        return
    for name in names:
        if exists(name) and not os.environ.get('REFS_REBUILD'):
            print(f'[build_random_models] {name}: exists, kept', flush=True)
            continue
        env = dict(os.environ, _BUILD_CHILD='1')
        if group == 'hgq2':
            env.setdefault('KERAS_BACKEND', 'jax')
        subprocess.run([sys.executable, __file__, group, name], check=True, env=env)


if __name__ == '__main__':
    main(sys.argv[1:])
