#!/usr/bin/env bash
# Hardware and co-simulation benchmarks of the shipped jet tagger (part of `make bench`):
#  - compile time of the release binary (model.json -> Verilog on disk), median of 20 runs;
#  - co-simulation of 1,000,000 vectors against the golden model (vectors/s, mismatches, latency), and
#    of 100,000 through the ternary adders' primitive netlist (--cosim-netlist);
#  - Yosys 0.23 `synth_xilinx -family xcup -flatten` resources (LUT, FF, CARRY8, DSP), the peers'
#    yardstick (../shared/peers/synth.sh uses the same command).
# Writes only under build/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/fastml-compile
MODEL=models/qkeras_3layer/model.json
OUT=build/bench
mkdir -p "$OUT"

echo "== compile time (release, median of 20 runs, including file output)"
times=()
for i in $(seq 20); do
  s=$(date +%s%N); "$BIN" "$MODEL" -o "$OUT/jet" -q; e=$(date +%s%N)
  times+=($(( (e - s) / 1000 )))
done
median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 10p)
echo "compile: ${median} us"

echo "== co-simulation, 1,000,000 vectors"
"$BIN" "$MODEL" -o "$OUT/jet" --cosim 1000000 --cache-dir target/fastml-sim-cache
python3 - "$OUT/jet/cosim/results.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"cosim: {r['vectors']} vectors, {r['mismatches']} mismatches, latency {r['measured_latency_min']}..{r['measured_latency_max']} (scheduled {r['scheduled_latency']}), {r['vectors_per_second']:.0f} vectors/s, golden {r['vectors']/max(r['golden_seconds'],1e-9):.0f} inferences/s")
PY

echo "== co-simulation of the primitive netlist (LUT6_2/CARRY8 models instead of the ternary adders' fast model), 100,000 vectors"
"$BIN" "$MODEL" -o "$OUT/jet_netlist" --cosim 100000 --cosim-netlist --cache-dir target/fastml-sim-cache -q
python3 - "$OUT/jet_netlist/cosim/results.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"cosim (netlist): {r['vectors']} vectors, {r['mismatches']} mismatches, latency {r['measured_latency_min']}..{r['measured_latency_max']} (scheduled {r['scheduled_latency']})")
PY

for clock in 5 1; do
  echo "== Yosys synth_xilinx -family xcup -flatten at ${clock} ns"
  "$BIN" "$MODEL" -o "$OUT/jet_${clock}ns" -q --clock-ns "$clock"
  top=qkeras_3layer
  yosys -q -l "$OUT/yosys_${clock}ns.log" -p "read_verilog $(ls $OUT/jet_${clock}ns/rtl/*.v | tr '\n' ' '); synth_xilinx -family xcup -flatten -top $top; tee -o $OUT/stat_${clock}ns.txt stat" >/dev/null
  python3 - "$OUT/stat_${clock}ns.txt" "$OUT/jet_${clock}ns/report.json" <<'PY'
import json, re, sys
stat = open(sys.argv[1]).read()
rep = json.load(open(sys.argv[2]))
# Yosys 0.23 prints "     LUT2      24611" (name, then count); the peers' synth.sh counts the same way.
cells = {m.group(1): int(m.group(2)) for m in re.finditer(r"^\s+(\S+)\s+(\d+)\s*$", stat, re.M)}
# LUT6_2 (the ternary adders' dual-output LUT) is one physical LUT: counted too.
lut = sum(v for k, v in cells.items() if re.fullmatch(r"LUT[1-6]|LUT6_2", k))
ff = sum(v for k, v in cells.items() if re.fullmatch(r"FD[A-Z]*", k))
carry = sum(v for k, v in cells.items() if k.startswith("CARRY"))
dsp = sum(v for k, v in cells.items() if k.startswith("DSP"))
e = rep["estimate"]
print(f"yosys: LUT {lut} FF {ff} CARRY {carry} DSP {dsp}; stages {rep['latency_cycles']}; "
      f"estimate LUT {e['lut']} FF {e['ff']} CARRY8 {e['carry8']} (LUT error {100*(e['lut']-lut)/max(lut,1):+.0f}%)")
PY
done
