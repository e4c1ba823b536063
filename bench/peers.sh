#!/usr/bin/env bash
# fastml-compile vs da4ml 0.6 on the peers' models (part of `make bench`): export each `.keras` with
# fastml-export, compile at 5 ns, time the compile, co-simulate, synthesise with the same Yosys script
# the peers used (`synth_xilinx -family xcup -flatten`), and print ours vs da4ml with ratios.
# da4ml's figures come from ../shared/peers/results/{da4ml,yosys}_<m>_lc5.json (measured on this kind of
# machine). Synthesis reads rtl/*.v, never the simulation models in rtl/sim/. Writes only under build/bench/peers/. Yosys on homog16 takes ~10+ minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/fastml-compile
EXPORT=.venv/bin/fastml-export
PEERS=../shared/peers
OUT=build/bench/peers
MODELS=${PEER_MODELS:-hgq qkeras6 homog16}
mkdir -p "$OUT"
printf '%-9s %-12s %8s %8s %8s %5s %7s %10s\n' model tool LUT FF CARRY DSP stages compile_ms | tee "$OUT/table.txt"
for m in $MODELS; do
  d="$OUT/$m"; mkdir -p "$d"
  "$EXPORT" "$PEERS/models/$m.keras" -o "$d/model.json"
  times=()
  for i in $(seq 11); do
    s=$(date +%s%N); "$BIN" "$d/model.json" -o "$d/out" -q; e=$(date +%s%N)
    times+=($(( (e - s) / 1000 )))
  done
  ms=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 6p)
  "$BIN" "$d/model.json" -o "$d/out" -q --cosim-input "$PEERS/results/x_test.txt" --cache-dir target/fastml-sim-cache
  "$BIN" predict "$d/model.json" --input "$PEERS/results/x_test.txt" --output "$d/pred.txt"
  top=$(python3 -c "import json;print(json.load(open('$d/out/report.json'))['top'])")
  yosys -q -l "$d/yosys.log" -p "read_verilog $(ls $d/out/rtl/*.v | tr '\n' ' '); synth_xilinx -family xcup -flatten -top $top; tee -o $d/stat.txt stat" >/dev/null
  python3 - "$m" "$d" "$PEERS" "$ms" <<'PY' | tee -a "$OUT/table.txt"
import json, re, sys
from fractions import Fraction
m, d, peers, us = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
stat = open(f"{d}/stat.txt").read()
cells = {k: int(v) for k, v in re.findall(r"^\s+(\S+)\s+(\d+)\s*$", stat, re.M)}
# LUT6_2 (our ternary adders' dual-output LUTs) is one physical LUT each: counted with LUT1..LUT6.
lut = sum(v for k, v in cells.items() if re.fullmatch(r"LUT[1-6]|LUT6_2", k))
ff = sum(v for k, v in cells.items() if re.fullmatch(r"FD[A-Z]*", k))
carry = sum(v for k, v in cells.items() if k.startswith("CARRY"))
dsp = sum(v for k, v in cells.items() if k.startswith("DSP"))
rep = json.load(open(f"{d}/out/report.json"))
stages = rep["latency_cycles"]
# Bit-exact against the peers' expected logits?
ours = [[Fraction(x) for x in l.split()] for l in open(f"{d}/pred.txt")]
# The expected logits are printed floats (up to 17 digits): compare with the float64 they denote.
want = [[Fraction(float(x)) for x in l.split()] for l in open(f"{peers}/results/{m}.expected_logits.txt")]
bad = sum(a != b for r, s in zip(ours, want) for a, b in zip(r, s))
print(f"{m:<9} {'fastml':<12} {lut:>8} {ff:>8} {carry:>8} {dsp:>5} {stages:>7} {us/1000:>10.1f}   logits vs expected: {bad} mismatches of {sum(map(len, want))}")
try:
    y = json.load(open(f"{peers}/results/yosys_{m}_lc5.json"))
    da = json.load(open(f"{peers}/results/da4ml_{m}_lc5.json"))
    t = (da.get("trace_s") or 0) + (da.get("codegen_s") or 0)
    print(f"{m:<9} {'da4ml 0.6':<12} {y['LUT']:>8} {y['FF']:>8} {y['CARRY8']:>8} {y['DSP']:>5} {da['pipeline_latency_cycles']:>7} {t*1000:>10.1f}")
    print(f"{m:<9} {'ratio':<12} {lut/y['LUT']:>8.2f} {ff/y['FF']:>8.2f} {carry/y['CARRY8']:>8.2f} {'':>5} {stages - da['pipeline_latency_cycles']:>+7} {t*1000/(us/1000):>9.0f}x")
except (FileNotFoundError, KeyError):
    print(f"{m:<9} {'da4ml 0.6':<12} (no da4ml result: it cannot convert this model)")
PY
done
