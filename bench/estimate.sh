#!/usr/bin/env bash
# The resource estimate against Yosys on a corpus of designs (part of `make bench`): every shipped model
# and the peers' hgq and qkeras6 (exported by bench/peers.sh, which runs first), at 5 ns, and the jet
# tagger and hgq at 1 ns. For each: the estimate printed before synthesis vs
# Yosys 0.23 `synth_xilinx -family xcup -flatten` (LUT = LUT1..LUT6 + LUT6_2, FF = FD*, CARRY = CARRY4 +
# CARRY8 cells; the estimate counts CARRY8 only), and the error. Writes only under build/bench/estimate/.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/fastml-compile
OUT=build/bench/estimate
mkdir -p "$OUT"
designs=()
for m in models/handwritten/*.json models/qkeras_3layer/model.json; do designs+=("$m:5"); done
designs+=("models/qkeras_3layer/model.json:1")
for m in hgq qkeras6; do
  [ -f "build/bench/peers/$m/model.json" ] && designs+=("build/bench/peers/$m/model.json:5")
done
[ -f build/bench/peers/hgq/model.json ] && designs+=("build/bench/peers/hgq/model.json:1")
printf '%-34s %5s %8s %8s %6s %7s %7s %6s %7s\n' design clock LUT est err FF est err CARRY | tee "$OUT/table.txt"
for d in "${designs[@]}"; do
  m=${d%:*}; clock=${d##*:}
  name=$(basename "$(dirname "$m")")_$(basename "$m" .json)_${clock}ns
  o="$OUT/$name"
  "$BIN" "$m" -o "$o" -q --clock-ns "$clock"
  top=$(python3 -c "import json;print(json.load(open('$o/report.json'))['top'])")
  yosys -q -p "read_verilog $(ls "$o"/rtl/*.v | tr '\n' ' '); synth_xilinx -family xcup -flatten -top $top; tee -o $o/stat.txt stat" >/dev/null
  python3 - "$name" "$clock" "$o" <<'PY' | tee -a "$OUT/table.txt"
import json, re, sys
name, clock, o = sys.argv[1], sys.argv[2], sys.argv[3]
cells = {k: int(v) for k, v in re.findall(r"^\s+(\S+)\s+(\d+)\s*$", open(f"{o}/stat.txt").read(), re.M)}
lut = sum(v for k, v in cells.items() if re.fullmatch(r"LUT[1-6]|LUT6_2", k))
ff = sum(v for k, v in cells.items() if re.fullmatch(r"FD[A-Z]*", k))
carry = sum(v for k, v in cells.items() if k.startswith("CARRY"))
e = json.load(open(f"{o}/report.json"))["estimate"]
err = lambda est, real: f"{100 * (est - real) / max(real, 1):+.0f}%"
print(f"{name:<34} {clock:>5} {lut:>8} {e['lut']:>8} {err(e['lut'], lut):>6} {ff:>7} {e['ff']:>7} {err(e['ff'], ff):>6} {carry:>7}")
PY
done
