#!/usr/bin/env bash
# make_refs.sh: build the pinned framework environments and (re)generate the stored reference vectors
# under tests/data/refs/. See refs/README.md. Idempotent: an env whose pin list is unchanged is reused,
# a reference set whose meta.json records the same recipe (script hash, versions, seed, N) is skipped.
#
#   bash refs/make_refs.sh            # everything
#   bash refs/make_refs.sh envs       # only the environments
#   REFS_ONLY="qkeras_3layer hgq" bash refs/make_refs.sh   # only these reference sets
#   REFS_FORCE=1 bash refs/make_refs.sh                    # recompute even if up to date
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
VENVS="$ROOT/.refs-venv"
PYTHON=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONHASHSEED=0 TF_CPP_MIN_LOG_LEVEL=2
# keep CPU use moderate on the shared 2-core machines
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} TF_NUM_INTEROP_THREADS=1 TF_NUM_INTRAOP_THREADS=2
export XLA_FLAGS="${XLA_FLAGS:---xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=2}"

log() { printf '[make_refs %(%H:%M:%S)T] %s\n' -1 "$*"; }

mkdir -p "$VENVS"
[ -f "$VENVS/.gitignore" ] || echo '*' > "$VENVS/.gitignore"   # never committed

# venv NAME PIN... : create .refs-venv/NAME with exactly these pins (reused while the pins are unchanged)
venv() {
  local name=$1; shift
  local dir="$VENVS/$name" stamp="$VENVS/$name/.pins"
  local want; want=$(printf '%s\n' "$@")
  if [ -x "$dir/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    log "env $name: up to date ($dir)"
    return 0
  fi
  log "env $name: creating $dir with: $*"
  rm -rf "$dir"
  "$PYTHON" -m venv "$dir"
  local t0=$SECONDS
  # shellcheck disable=SC2068
  "$dir/bin/pip" install -q $@
  "$dir/bin/pip" freeze > "$dir/freeze.txt"
  printf '%s\n' "$want" > "$stamp"
  log "env $name: ready in $((SECONDS - t0)) s ($(wc -l < "$dir/freeze.txt") packages)"
}
