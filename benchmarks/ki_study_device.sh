#!/usr/bin/env bash
# The prepared device check of the KI study (issue 17): does the study's accelerator path work end to end, and
# what does the `small` study cost on that machine? Meant to finish within ~8 minutes on one GPU machine.
#
#  1. The tiny study on $DEVICE, in the two pieces a GPU session runs: `--stage train` (pre-stage + pi0 and ki,
#     seed 0, trained on $DEVICE) then `--stage measure` (closed loop, held-out instructions, following, VQA,
#     latency on $DEVICE) and the report → $OUT/tiny/report/ki_study.{json,md}.
#  2. `vla study small --estimate` on $DEVICE: the cost model of docs/vla.md measured there
#     → $OUT/small/estimate.json. Needs the small study's data at runs/datasets/mt10_64 and runs/vlm/mt15
#     (8.8 + 20 MB: copy them along); skipped, with a note, when they are absent.
#
#   benchmarks/ki_study_device.sh                 # DEVICE=cuda → runs/ki_study_device/
#   DEVICE=cpu benchmarks/ki_study_device.sh --tiny   # step 1 only, on the CPU (the script's own check)
#
# Environment: PYTHON (default: python), DEVICE (default: cuda), OUT (default: runs/ki_study_device),
# TINY_TIMEOUT (s, step 1 with its data; default 420), ESTIMATE_TIMEOUT (s, step 2; default 420).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-runs/ki_study_device}
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" MUJOCO_GL=${MUJOCO_GL:-egl} PYTHONHASHSEED=0

tiny_only=0
if [[ "${1:-}" == "--tiny" ]]; then tiny_only=1; shift; fi
if [[ $# -gt 0 ]]; then echo "ki_study_device.sh: unknown argument '$1' (expected --tiny or nothing)" >&2; exit 2; fi
mkdir -p "$OUT"
study=("$PYTHON" -m reasonact.cli vla study)

echo "== tiny study on $DEVICE: data, --stage train, --stage measure"
tiny=(--device "$DEVICE" --variants pi0 ki --seeds 0 --out "$OUT/tiny" --report "$OUT/tiny/report")
timeout "${TINY_TIMEOUT:-420}" bash -c '
  set -euo pipefail
  [[ -d runs/datasets/tiny ]] || "$1" -m reasonact.cli data collect tiny
  [[ -f runs/vlm/tiny/vlm.parquet ]] || "$1" -m reasonact.cli data vlm tiny
  shift
  "$@" --stage train && "$@" --stage measure' _ "$PYTHON" "${study[@]}" tiny "${tiny[@]}"
"$PYTHON" - "$OUT/tiny/report/ki_study.json" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
measured = {name: v["seeds"] for name, v in report["variants"].items() if v["seeds"]}
assert measured == {"pi0": [0], "ki": [0]}, f"expected pi0 and ki seed 0 measured, got {measured}"
print(f"tiny study: measured {measured}; latency ms", {n: report["variants"][n]["latency_ms"] for n in measured})
EOF

[[ $tiny_only == 1 ]] && exit 0
if [[ ! -d runs/datasets/mt10_64 || ! -f runs/vlm/mt15/vlm.parquet ]]; then
  echo "small estimate skipped: runs/datasets/mt10_64 or runs/vlm/mt15/vlm.parquet missing" | tee "$OUT/small_skipped.txt"
  exit 0
fi
echo "== small study --estimate on $DEVICE"
timeout "${ESTIMATE_TIMEOUT:-420}" "${study[@]}" small --estimate --device "$DEVICE" --out "$OUT/small"
