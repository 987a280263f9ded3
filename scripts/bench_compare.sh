#!/usr/bin/env bash
# Decode latency of our backends against the same model in PyTorch, interleaved (A B A B …) in
# one window, because this host's memory bandwidth drifts by up to 40 % within an hour.
#
#   scripts/bench_compare.sh [ROUNDS] [BACKENDS] [PRESET] [GRID]
#   (defaults: 3 rounds, host,flex, gpt-b, 16; PYTHON defaults to /tmp/torchvenv/bin/python)
#
# Needs the release bench binary (cargo build --release -p experiments --bin bench_latency) and
# PyTorch in a scratch venv (see scripts/bench_pytorch_decode.py). Writes
# runs/bench_compare/<round>/{<backend>/latency.json,pytorch.json} and prints, per backend and
# parallel degree, the median seconds per image of each side and their ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
backends=${2:-host,flex}
preset=${3:-gpt-b}
grid=${4:-16}
python=${PYTHON:-/tmp/torchvenv/bin/python}
out=runs/bench_compare
bench=target/release/bench_latency
[ -x "$bench" ] || { echo "build it first: cargo build --release -p experiments --bin bench_latency" >&2; exit 2; }
"$python" -c 'import torch' 2>/dev/null || { echo "no torch for $python (see scripts/bench_pytorch_decode.py)" >&2; exit 2; }
rm -rf "$out"
for r in $(seq 1 "$rounds"); do
  for b in ${backends//,/ }; do
    "$bench" --backends "$b" --preset "$preset" --grid "$grid" --batch 1 --repeats 1 \
      --out "$out/$r/$b" >/dev/null 2>&1
  done
  "$python" scripts/bench_pytorch_decode.py --preset "$preset" --grid "$grid" --batch 1 \
    --repeats 1 --out "$out/$r/pytorch.json" >/dev/null
  echo "round $r done" >&2
done
python3 - "$out" "$rounds" "$backends" <<'EOF'
import json, statistics, sys
out, rounds, backends = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")
def rows(path):
    return {r["parallel"]: r["seconds_per_image"] for r in json.load(open(path))}
torch = [rows(f"{out}/{r}/pytorch.json") for r in range(1, rounds + 1)]
print("| backend | n | ours s/image (median, min–max) | PyTorch s/image (median, min–max) | ratio of medians |")
print("|---|---|---|---|---|")
for b in backends:
    ours = [rows(f"{out}/{r}/{b}/latency.json") for r in range(1, rounds + 1)]
    for n in sorted(ours[0]):
        a = [o[n] for o in ours]; p = [t[n] for t in torch]
        print(f"| {b} | {n} | {statistics.median(a):.2f} ({min(a):.2f}–{max(a):.2f}) | "
              f"{statistics.median(p):.2f} ({min(p):.2f}–{max(p):.2f}) | {statistics.median(a)/statistics.median(p):.2f}× |")
EOF
