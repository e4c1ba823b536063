#!/usr/bin/env bash
# fastml-compile vs da4ml 0.6 on the seed tutorial's model families (part of `make bench`): the HGQ2
# QDenseT lookup-table network (seed_lutnet, at 5 ns and 1 ns) and DeepSets (5 ns). Each `.keras`
# (tests/data/peers, copied from shared/peers/models) is exported with fastml-export, compiled, timed,
# co-simulated on 1,000,000 random vectors and on the peers' 1000 inputs, checked against the peers'
# expected logits, and synthesised with the peers' Yosys command (`synth_xilinx -family xcup -flatten`).
# da4ml's figures are the peers' own measurements: shared/peers/models/<m>.{yosys,da4ml}_lc<clock>.json.
# Writes only under build/bench/families/.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/fastml-compile
EXPORT=.venv/bin/fastml-export
DATA=tests/data/peers
PEERS=../shared/peers/models
OUT=build/bench/families
VECTORS=${FAMILY_VECTORS:-1000000}
# model clock extra-flags (a run per line)
RUNS=${FAMILY_RUNS:-"seed_lutnet 5 -
seed_lutnet 1 -
seed_lutnet 1 --ternary-slack=1
deepsets 5 -"}
mkdir -p "$OUT"
printf '%-12s %5s %-18s %-10s %8s %8s %8s %7s %10s\n' model clock flags tool LUT FF CARRY stages compile_ms | tee "$OUT/table.txt"
while read -r m clock flags; do
  [ -n "$m" ] || continue
  extra=(); [ "$flags" = "-" ] || extra=("$flags")
  tag="${m}_${clock}ns${flags//[^a-z0-9]/_}"
  d="$OUT/$tag"; mkdir -p "$d"
  "$EXPORT" "$DATA/$m.keras" -o "$d/model.json"
  times=()
  for i in $(seq 11); do
    s=$(date +%s%N); "$BIN" "$d/model.json" -o "$d/out" -q --clock-ns "$clock" "${extra[@]}"; e=$(date +%s%N)
    times+=($(( (e - s) / 1000 )))
  done
  us=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 6p)
  "$BIN" "$d/model.json" -o "$d/cosim" -q --clock-ns "$clock" "${extra[@]}" --cosim "$VECTORS" --cache-dir target/fastml-sim-cache
  "$BIN" "$d/model.json" -o "$d/cosim_real" -q --clock-ns "$clock" "${extra[@]}" --cosim-input "$DATA/x_test.txt" --cache-dir target/fastml-sim-cache
  "$BIN" predict "$d/model.json" --input "$DATA/x_test.txt" --output "$d/pred.txt"
  top=$(python3 -c "import json;print(json.load(open('$d/out/report.json'))['top'])")
  yosys -q -l "$d/yosys.log" -p "read_verilog $(ls $d/out/rtl/*.v | tr '\n' ' '); synth_xilinx -family xcup -flatten -top $top; tee -o $d/stat.txt stat" >/dev/null
  python3 - "$m" "$clock" "$flags" "$d" "$PEERS" "$DATA" "$us" <<'PY' | tee -a "$OUT/table.txt"
import json, re, sys
from fractions import Fraction
m, clock, flags, d, peers, data, us = sys.argv[1:8]
us = int(us)
stat = open(f"{d}/stat.txt").read()
cells = {k: int(v) for k, v in re.findall(r"^\s+(\S+)\s+(\d+)\s*$", stat, re.M)}
# LUT6_2 (ternary adders, paired ROM columns) is one physical LUT each: counted with LUT1..LUT6.
lut = sum(v for k, v in cells.items() if re.fullmatch(r"LUT[1-6]|LUT6_2", k))
ff = sum(v for k, v in cells.items() if re.fullmatch(r"FD[A-Z]*", k))
carry = sum(v for k, v in cells.items() if k.startswith("CARRY"))
stages = json.load(open(f"{d}/out/report.json"))["latency_cycles"]
cos = json.load(open(f"{d}/cosim/cosim/results.json"))
real = json.load(open(f"{d}/cosim_real/cosim/results.json"))
ours = [[Fraction(x) for x in l.split()] for l in open(f"{d}/pred.txt")]
want = [[Fraction(float(x)) for x in l.split()] for l in open(f"{data}/{m}.expected_logits.txt")]
bad = sum(a != b for r, s in zip(ours, want) for a, b in zip(r, s))
print(f"{m:<12} {clock:>5} {flags:<18} {'fastml':<10} {lut:>8} {ff:>8} {carry:>8} {stages:>7} {us/1000:>10.1f}"
      f"   logits vs Keras: {bad}/{sum(map(len, want))} differ; cosim {cos['vectors']} random + {real['vectors']} real: "
      f"{cos['mismatches'] + real['mismatches']} mismatches")
try:
    y = json.load(open(f"{peers}/{m}.yosys_lc{clock}.json"))
    da = json.load(open(f"{peers}/{m}.da4ml_lc{clock}.json"))
    st = da["pipeline_latency_stages"]
    t = (da.get("trace_s") or 0) + (da.get("codegen_s") or 0)
    print(f"{m:<12} {clock:>5} {'':<18} {'da4ml 0.6':<10} {y['LUT']:>8} {y['FF']:>8} {y['CARRY8']:>8} {st:>7} {t*1000:>10.1f}")
    print(f"{m:<12} {clock:>5} {'':<18} {'ratio':<10} {lut/y['LUT']:>8.2f} {ff/y['FF']:>8.2f} {carry/y['CARRY8']:>8.2f} {stages - st:>+7} {t*1000/(us/1000):>9.0f}x")
except (FileNotFoundError, KeyError) as e:
    print(f"{m:<12} {clock:>5} (no da4ml figures: {e})")
PY
done <<< "$RUNS"
