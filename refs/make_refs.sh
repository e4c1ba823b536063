#!/usr/bin/env bash
# make_refs.sh: build the pinned framework environments and (re)generate the stored reference vectors
# under tests/data/refs/ (see refs/README.md). Idempotent: an environment whose pins are unchanged is
# reused, a random test model that exists is kept, and a reference set whose meta.json records the same
# recipe (scripts, source files, package versions, input type, seed, N) is not recomputed.
#
#   bash refs/make_refs.sh                                   # everything
#   bash refs/make_refs.sh envs                              # only the environments
#   REFS_ONLY="qkeras_3layer peers_hgq" bash refs/make_refs.sh   # only these reference sets
#   REFS_FORCE=1 bash refs/make_refs.sh                      # recompute every set (models are kept)
#   REFS_REBUILD=1 bash refs/make_refs.sh                    # also rebuild the random test models
#
# Needs: python3.10 or 3.11 with venv (tensorflow-cpu 2.14.1 has no wheels for newer Pythons), PyPI,
# g++ (hls4ml's C simulation; installed with apt-get when missing). Nothing is written outside the repo
# except pip's cache.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
VENVS="$ROOT/.refs-venv"
CONSTRAINTS="$ROOT/refs/constraints"
export PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONHASHSEED=0 TF_CPP_MIN_LOG_LEVEL=2 PYTHONDONTWRITEBYTECODE=1
# moderate CPU use on the shared 2-core machines
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} MKL_NUM_THREADS=${MKL_NUM_THREADS:-2}
export XLA_FLAGS=${XLA_FLAGS:---xla_cpu_multi_thread_eigen=false}

T_START=$SECONDS
log() { printf '[make_refs %s +%ss] %s\n' "$(date +%H:%M:%S)" "$((SECONDS - T_START))" "$*"; }

pick_python() {
  for p in ${PYTHON:-} python3.11 python3.10 python3; do
    if command -v "$p" >/dev/null 2>&1 &&
       "$p" -c 'import sys, venv; sys.exit(0 if sys.version_info[:2] in ((3, 10), (3, 11)) else 1)' 2>/dev/null; then
      echo "$p"; return 0
    fi
  done
  echo "make_refs: need python3.10 or python3.11 with venv (tensorflow-cpu 2.14.1)" >&2
  return 1
}
PY=$(pick_python)

mkdir -p "$VENVS" "$VENVS/work"
[ -f "$VENVS/.gitignore" ] || echo '*' > "$VENVS/.gitignore"   # never committed

# venv NAME "PINS" ["NO_DEPS_PINS"]: .refs-venv/NAME with these pins, transitive versions held to
# refs/constraints/NAME.txt (the freeze that was verified). Reused while pins and constraints are unchanged.
venv() {
  local name=$1 pins=$2 nodeps=${3:-}
  local dir="$VENVS/$name" stamp="$VENVS/$name/.pins"
  local want cons="$CONSTRAINTS/$name.txt"
  want=$(printf '%s\n%s\n%s\n' "$pins" "$nodeps" "$(cat "$cons" 2>/dev/null)" | sha256sum | cut -c1-16)
  if [ -x "$dir/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    log "env $name: up to date"
    return 0
  fi
  log "env $name: creating with $pins${nodeps:+ (+ --no-deps $nodeps)}"
  local t0=$SECONDS
  rm -rf "$dir"
  "$PY" -m venv "$dir"
  # shellcheck disable=SC2086
  "$dir/bin/pip" install -q ${cons:+-c "$cons"} $pins
  # shellcheck disable=SC2086
  [ -z "$nodeps" ] || "$dir/bin/pip" install -q --no-deps ${cons:+-c "$cons"} $nodeps
  "$dir/bin/pip" freeze > "$dir/freeze.txt"
  echo "$want" > "$stamp"
  log "env $name: ready in $((SECONDS - t0)) s ($(wc -l < "$dir/freeze.txt") packages)"
}

envs() {
  # (a) QKeras 0.9 on Keras 2
  venv qkeras 'tensorflow-cpu==2.14.1 qkeras==0.9.0 numpy<2 pyparsing h5py'
  # (b) HGQ2 0.2 on Keras 3 + jax (and hgq2's qkeras compatibility module)
  venv hgq2 'hgq2==0.2.0 keras==3.15.1 jax==0.10.2 jaxlib==0.10.2 h5py'
  # (b') the same + hls4ml 1.3.0, only for the C-simulation cross-check of the HGQ2 sets
  venv hgq2-hls4ml 'hgq2==0.2.0 keras==3.15.1 jax==0.10.2 jaxlib==0.10.2 h5py hls4ml==1.3.0'
  # (c) Keras 2 + hls4ml 1.3.0 + HGQ v1 (HGQ 0.2.6 declares tensorflow>=2.13, which tensorflow-cpu provides:
  #     installed without dependencies so pip does not add the full tensorflow wheel)
  venv keras2 'tensorflow-cpu==2.14.1 qkeras==0.9.0 numpy<2 pyparsing h5py hls4ml==1.3.0' 'HGQ==0.2.6'
  # (d) qkeras-v3 on Keras 3 + jax (its tensorflow / tf-model-optimization dependencies are not needed
  #     with the jax backend: installed without dependencies)
  venv qkeras3 'keras==3.15.1 jax==0.10.2 jaxlib==0.10.2 h5py six networkx pyparsing scipy' 'qkeras-v3==1.2.1'
  if ! command -v g++ >/dev/null; then
    log "installing g++ (hls4ml C simulation)"
    SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq g++ >/dev/null
  fi
}

step() {  # step ENV SCRIPT ARGS...: run a refs/ script in an env, with timing
  local env=$1; shift
  local t0=$SECONDS
  log "run $* (env $env)"
  KERAS_BACKEND=jax "$VENVS/$env/bin/python" "$@" 2> >(grep -vE 'Warning|warnings.warn|^\s*$|cpu_feature_guard|rebuild TensorFlow|XLA service|StreamExecutor|MLIR crash|Compiled cluster|SetPriority|saving_api.save_model' >&2)
  log "done $1 in $((SECONDS - t0)) s"
}

envs
[ "${1:-}" = envs ] && { log "environments ready"; exit 0; }

# test models (kept when present; REFS_REBUILD=1 rebuilds)
step hgq2   refs/build_random_models.py hgq2
step qkeras refs/build_random_models.py qkeras
# reference sets (qkeras before qkeras3: qkeras-v3_3layer is cross-checked against qkeras_3layer)
step qkeras      refs/gen_qkeras.py
step qkeras3     refs/gen_qkeras3.py
step hgq2        refs/gen_hgq2.py
step hgq2-hls4ml refs/crosscheck_hls4ml.py
step keras2      refs/gen_keras2.py
step hgq2        refs/check_refs.py -v
# the exporter's model.json for every set (refs/export_models.py; needs the project venv of `make venv`)
if [ -f refs/export_models.py ]; then
  if [ -x .venv/bin/python ]; then
    t0=$SECONDS; log "run refs/export_models.py (.venv)"
    .venv/bin/python refs/export_models.py
    log "done refs/export_models.py in $((SECONDS - t0)) s"
  else
    log "NOTE: .venv missing: run 'make venv && .venv/bin/python refs/export_models.py' to refresh the model.json files"
  fi
fi
log "all done in $((SECONDS - T_START)) s; reference sets in tests/data/refs/ ($(du -sh tests/data/refs | cut -f1))"
