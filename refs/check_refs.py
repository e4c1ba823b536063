#!/usr/bin/env python3
"""Validate tests/data/refs/ with numpy only: every <set>/meta.json is complete and consistent with its
outputs.npy (shape, dtype, sha256, finite values, grid), the input generator reproduces the recorded
input hash, companion files are as described, and the folder stays under its size budget.

  python refs/check_refs.py            # exit 0 when everything is valid, 1 otherwise
  python refs/check_refs.py -v         # also print one line of statistics per set
"""

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REFS = HERE.parent / 'tests' / 'data' / 'refs'
BUDGET_MB = 60
REQUIRED = ['name', 'framework', 'framework_arithmetic', 'versions', 'source_model', 'source_sha256', 'inputs', 'exact', 'how',
            'outputs_file', 'outputs_shape', 'outputs_dtype', 'outputs_sha256', 'recipe_sha256']

sys.path.insert(0, str(HERE))
from refgen import input_mantissas, mantissa_sha256  # noqa: E402  (numpy only)


def sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def check_set(d, verbose):
    errs = []
    meta_p = d / 'meta.json'
    if not meta_p.exists():
        return [f'{d.name}: no meta.json']
    meta = json.loads(meta_p.read_text())
    for k in REQUIRED:
        if k not in meta:
            errs.append(f'{d.name}: meta.json lacks {k!r}')
    if errs:
        return errs
    if meta['name'] != d.name:
        errs.append(f'{d.name}: meta name {meta["name"]!r}')
    out = d / meta['outputs_file']
    if not out.exists():
        return errs + [f'{d.name}: {out.name} missing']
    if sha(out) != meta['outputs_sha256']:
        errs.append(f'{d.name}: outputs sha256 differs from meta.json')
    y = np.load(out, allow_pickle=False)
    inp = meta['inputs']
    N, n = inp['N'], inp['n_features']
    if y.dtype.name != meta['outputs_dtype'] or y.dtype.name not in ('float32', 'float64'):
        errs.append(f'{d.name}: dtype {y.dtype} vs meta {meta["outputs_dtype"]}')
    if list(y.shape) != meta['outputs_shape'] or y.ndim != 2 or y.shape[0] != N or y.shape[1] < 1:
        errs.append(f'{d.name}: shape {y.shape} vs meta {meta["outputs_shape"]}, N {N}')
    if not np.all(np.isfinite(y)):
        errs.append(f'{d.name}: non-finite outputs')
    g = meta.get('outputs_grid_bits')
    if g is not None:
        s = np.ldexp(y.astype(np.float64), g)
        if not np.array_equal(s, np.round(s)):
            errs.append(f'{d.name}: outputs not on the 2^-{g} grid stated in meta.json')
    W, I = inp['W'], inp['I']
    if inp['type'] != f'fixed<{W},{I}>':
        errs.append(f'{d.name}: input type {inp["type"]} vs W={W}, I={I}')
    m = input_mantissas(n, W, I, N, inp['seed'])
    if mantissa_sha256(m) != inp['mantissa_sha256']:
        errs.append(f'{d.name}: the input generator no longer reproduces the recorded input hash')
    if inp.get('row8_mantissas') is not None and m[8].tolist() != inp['row8_mantissas']:
        errs.append(f'{d.name}: row 8 mantissas differ')
    if not isinstance(meta['exact'], bool):
        errs.append(f'{d.name}: exact must be a bool')
    ff = meta.get('framework_float32')
    if ff is not None:
        if ff.get('mismatched_values', 0) > 0:
            f = d / ff.get('file', '')
            if not f.is_file():
                errs.append(f'{d.name}: framework_float32 mismatches recorded but no file')
            else:
                yf = np.load(f)
                if yf.shape != y.shape:
                    errs.append(f'{d.name}: {f.name} shape {yf.shape}')
                elif int(np.sum(yf.astype(np.float64) != y.astype(np.float64))) != ff['mismatched_values']:
                    errs.append(f'{d.name}: {f.name} mismatch count differs from meta.json')
    for c in ('crosscheck_hls4ml_csim', 'crosscheck_qkeras_3layer'):
        if c in meta and (meta[c].get('mismatched_values', 0) or 'error' in meta[c]):
            # a cross-check that disagrees is reported, not fatal: meta.json says which side is trusted
            print(f'WARN {d.name}: {c}: {meta[c].get("mismatched_values", meta[c].get("error"))}')
    # model.json: the exporter's output for this model, written by refs/export_models.py
    extra = {p.name for p in d.iterdir()} - {'meta.json', 'model.json', meta['outputs_file']} - (
        {ff['file']} if ff and 'file' in ff else set())
    if extra:
        errs.append(f'{d.name}: unexpected files {sorted(extra)}')
    if verbose:
        yd = y.astype(np.float64)
        distinct = len(np.unique(yd, axis=0))
        print(f'{d.name:32s} {meta["framework"][:22]:22s} {str(y.shape):14s} {y.dtype.name:7s} '
              f'{out.stat().st_size / 1e6:5.2f} MB  exact={meta["exact"]!s:5s} grid=2^-{g}  '
              f'range [{yd.min():.4g}, {yd.max():.4g}]  distinct rows {distinct}  '
              f'f32-mismatch {ff.get("mismatched_values") if ff else "-"}')
        if distinct < 100:
            print(f'  note: only {distinct} distinct output rows')
    return errs


def main():
    verbose = '-v' in sys.argv
    errs = []
    sets = sorted(p for p in REFS.iterdir() if p.is_dir() and p.name != 'models')
    if not sets:
        errs.append('no reference sets under tests/data/refs')
    for d in sets:
        errs += check_set(d, verbose)
    models = REFS / 'models'
    if models.exists():
        for b in sorted(models.glob('*.build.json')):
            info = json.loads(b.read_text())
            for f in info['files']:
                if not (models / f).exists():
                    errs.append(f'models/{b.name}: {f} missing')
    total = sum(p.stat().st_size for p in REFS.rglob('*') if p.is_file())
    if total > BUDGET_MB * 1e6:
        errs.append(f'tests/data/refs is {total / 1e6:.1f} MB, over the {BUDGET_MB} MB budget')
    for e in errs:
        print('ERROR', e)
    print(f'{len(sets)} reference sets, {total / 1e6:.1f} MB in tests/data/refs; '
          f'{len(sets) - len({e.split(":")[0] for e in errs})} passed, {len({e.split(":")[0] for e in errs})} failed')
    return 1 if errs else 0


if __name__ == '__main__':
    sys.exit(main())
