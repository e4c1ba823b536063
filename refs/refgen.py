"""Shared helpers of the reference-vector scripts (numpy only; imported from every framework env).

* `inputs(n, W, I, N, seed)`: the deterministic input generator of refs/README.md ("Input vectors"),
  which the Rust tests re-implement instead of storing the inputs.
* `write_ref(...)`: writes tests/data/refs/<name>/outputs.npy + meta.json.
* `up_to_date(...)`: the idempotency check of make_refs.sh.
"""

import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
REFS = ROOT / 'tests' / 'data' / 'refs'
SHARED = Path(os.environ.get('FASTML_SHARED', ROOT.parent / 'shared')).resolve()
REFERENCE = SHARED / 'reference'
PEERS = SHARED / 'peers'

SEED = 1
N_VECTORS = int(os.environ.get('REFS_N', '100000'))

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
C1 = np.uint64(0xBF58476D1CE4E5B9)
C2 = np.uint64(0x94D049BB133111EB)


def splitmix64(x):
    """One step of SplitMix64 with state = x (uint64 numpy array or scalar); arithmetic mod 2^64."""
    with np.errstate(over='ignore'):
        z = np.asarray(x, dtype=np.uint64) + GOLDEN
        z = (z ^ (z >> np.uint64(30))) * C1
        z = (z ^ (z >> np.uint64(27))) * C2
        return z ^ (z >> np.uint64(31))


def input_mantissas(n, W, I, N, seed=SEED):
    """int64 array (N, n) of input mantissas for a signed fixed<W,I> input (README, "Input vectors")."""
    if not (1 <= W <= 62):
        raise ValueError(f'W={W} unsupported')
    lo, hi = -(1 << (W - 1)), (1 << (W - 1)) - 1
    m = np.empty((N, n), dtype=np.int64)
    corners = [
        np.full(n, lo), np.full(n, hi), np.zeros(n), np.full(n, 1), np.full(n, -1),
        np.where(np.arange(n) % 2 == 0, lo, hi), np.where(np.arange(n) % 2 == 0, hi, lo), np.full(n, hi >> 1),
    ]
    for k in range(min(8, N)):
        m[k] = corners[k]
    if N > 8:
        with np.errstate(over='ignore'):
            base = np.uint64(seed) * GOLDEN
            k = np.arange(8, N, dtype=np.uint64)[:, None]
            j = np.arange(n, dtype=np.uint64)[None, :]
            r = splitmix64(base + k * np.uint64(n) + j) % np.uint64(hi - lo + 1)
        m[8:] = r.astype(np.int64) + lo
    return m


def inputs(n, W, I, N, seed=SEED):
    """float64 array (N, n): the input values mantissa * 2^-(W-I) (exact in float64 for W <= 53)."""
    return np.ldexp(input_mantissas(n, W, I, N, seed).astype(np.float64), -(W - I))


def mantissa_sha256(m):
    return hashlib.sha256(np.ascontiguousarray(m, dtype='<i8').tobytes()).hexdigest()


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def rel(path):
    """A path as written in meta.json: relative to the repo root, or ../shared/... for shared files."""
    p = Path(path).resolve()
    try:
        return str(p.relative_to(ROOT))
    except ValueError:
        try:
            return '../shared/' + str(p.relative_to(SHARED))
        except ValueError:
            return str(p)


def recipe_key(name, sources, scripts, versions, W, I, N, seed, extra=None):
    """A hash of everything that decides a reference set; stored in meta.json for idempotency."""
    doc = {
        'name': name, 'W': W, 'I': I, 'N': N, 'seed': seed, 'versions': versions,
        'sources': {rel(s): file_sha256(s) for s in sources},
        'scripts': {rel(s): file_sha256(s) for s in scripts},
        'extra': extra,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def up_to_date(name, key):
    if os.environ.get('REFS_FORCE'):
        return False
    meta = REFS / name / 'meta.json'
    out = REFS / name / 'outputs.npy'
    if not (meta.exists() and out.exists()):
        return False
    try:
        return json.loads(meta.read_text()).get('recipe_sha256') == key
    except ValueError:
        return False


def wanted(name):
    only = os.environ.get('REFS_ONLY', '').split()
    return not only or name in only


def store_dtype(y):
    """float32 when every value survives the round trip exactly, else float64."""
    y = np.asarray(y, dtype=np.float64)
    if np.all(np.isfinite(y)) and np.array_equal(y.astype(np.float32).astype(np.float64), y):
        return np.float32
    return np.float64


def grid_bits(y):
    """The smallest f such that every value is a multiple of 2^-f (None if > 60)."""
    y = np.asarray(y, dtype=np.float64)
    for f in range(0, 61):
        s = np.ldexp(y, f)
        if np.array_equal(s, np.round(s)):
            return f
    return None


def write_ref(name, y, meta, key):
    """Write tests/data/refs/<name>/outputs.npy (float32 if exact, else float64) and meta.json."""
    y = np.asarray(y, dtype=np.float64)
    if not np.all(np.isfinite(y)):
        raise ValueError(f'{name}: non-finite outputs')
    d = REFS / name
    d.mkdir(parents=True, exist_ok=True)
    dt = store_dtype(y)
    np.save(d / 'outputs.npy', y.astype(dt))
    meta = dict(meta)
    meta.update({
        'name': name,
        'outputs_file': 'outputs.npy',
        'outputs_shape': list(y.shape),
        'outputs_dtype': np.dtype(dt).name,
        'outputs_dtype_note': ('float32: every value is exactly representable in float32 (checked); widen '
                               'to float64 losslessly' if dt == np.float32 else 'float64'),
        'outputs_sha256': file_sha256(d / 'outputs.npy'),
        'outputs_grid_bits': grid_bits(y),
        'outputs_min': float(y.min()), 'outputs_max': float(y.max()),
        'recipe_sha256': key,
        'host': {'python': platform.python_version(), 'machine': platform.machine()},
        'generated': time.strftime('%Y-%m-%d'),
    })
    (d / 'meta.json').write_text(json.dumps(meta, indent=1, sort_keys=False) + '\n')
    print(f'[refs] wrote {rel(d)}/outputs.npy {y.shape} as {np.dtype(dt).name}', flush=True)


def input_meta(n, W, I, N, seed=SEED):
    m = input_mantissas(n, W, I, N, seed)
    return {
        'inputs': {
            'generator': 'refs/README.md#input-vectors (splitmix64; corner rows 0..7)',
            'n_features': n, 'type': f'fixed<{W},{I}>', 'W': W, 'I': I, 'seed': seed, 'N': N,
            'mantissa_sha256': mantissa_sha256(m),
            'mantissa_sha256_note': 'sha256 of the (N, n) int64 little-endian mantissa array, row-major',
            'row8_mantissas': m[8].tolist() if N > 8 else None,
        }
    }


def log(*a):
    print('[refs]', *a, file=sys.stderr, flush=True)


def versions(*dists):
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for d in dists:
        try:
            out[d] = version(d)
        except PackageNotFoundError:
            out[d] = None
    return out


def compare(y_exact, y_fw):
    """Statistics of a framework's float32 outputs against the exact ones."""
    y_exact = np.asarray(y_exact, dtype=np.float64)
    y_fw = np.asarray(y_fw, dtype=np.float64)
    d = y_exact != y_fw
    return {
        'mismatched_values': int(d.sum()),
        'mismatched_rows': int(d.any(axis=1).sum()),
        'max_abs_diff': float(np.max(np.abs(y_exact - y_fw))) if d.any() else 0.0,
        'first_mismatched_rows': np.unique(np.argwhere(d)[:, 0])[:10].tolist(),
    }


def run_sets(sets, compute, script, dists, env_name):
    """Driver shared by the gen_*.py scripts.

    sets: name -> dict(sources=[paths], W, I, n, ...). compute(name, spec) -> (y, meta) runs in a child
    process (one per set: fresh framework state, e.g. hgq2's qkeras compat leaks global defaults).
    """
    import subprocess

    if len(sys.argv) == 3 and sys.argv[1] == '--child':
        name = sys.argv[2]
        spec = sets[name]
        t0 = time.time()
        y, meta, extra_files = compute(name, spec)
        meta['timing_s'] = round(time.time() - t0, 1)
        write_ref(name, y, meta, spec['_key'] if '_key' in spec else os.environ['_REFS_KEY'])
        for fname, arr in (extra_files or {}).items():
            np.save(REFS / name / fname, arr)
            print(f'[refs] wrote {rel(REFS / name / fname)} {arr.shape} {arr.dtype}', flush=True)
        return
    vers = versions(*dists)
    todo = [n for n in sets if wanted(n)]
    for name in todo:
        spec = sets[name]
        missing = [s for s in spec['sources'] if not Path(s).exists()]
        if missing:
            log(f'{name}: SKIPPED, missing source {", ".join(rel(m) for m in missing)}')
            continue
        key = recipe_key(name, spec['sources'], [script, Path(__file__), ROOT / 'refs' / 'exact_eval.py'],
                         vers, spec['W'], spec['I'], N_VECTORS, SEED, extra=spec.get('extra'))
        if up_to_date(name, key):
            log(f'{name}: up to date ({env_name})')
            continue
        log(f'{name}: computing in {env_name} ...')
        t0 = time.time()
        # stale companion files of an earlier run must not survive
        for old in (REFS / name).glob('*.npy') if (REFS / name).exists() else []:
            old.unlink()
        subprocess.run([sys.executable, str(script), '--child', name], check=True,
                       env=dict(os.environ, _REFS_KEY=key))
        log(f'{name}: done in {time.time() - t0:.0f} s')
