#!/usr/bin/env bash
# The prepared device check of issue 15: the VLA bench at pi05_300m and paper dims on one accelerator,
# summarised in one JSON (device, dtype, per dims sample_actions_ms, graph_captured_ms and graph_captured_fast_ms
# (the expert step and the FAST decode step under torch.compile mode="reduce-overhead": CUDA graphs; null with
# the error if one does not compile), flow_vs_fast_ar_speedup (both arms graph-captured on a GPU, eager
# elsewhere; flow_vs_fast_ar_arms says which), vs_peer_latency_ratio), and the training bench (`vla bench --train`,
# issue 18) at pi05_300m dims under "train" (train_vs_peer_throughput_ratio, train_mfu, samples_per_s, the AdamW
# kernel of each side: ours fused, LeRobot's torch's default, i.e. foreach on CUDA; `error` when it did not
# finish). Meant to finish within 7 minutes on one GPU: the training bench runs last, limited to TRAIN_TIMEOUT
# and to what is left of BUDGET_S, and its failure or timeout leaves the inference summary standing.
#
#   benchmarks/device.sh                 # cuda, bfloat16 → benchmarks/results/vla_device.json
#   DEVICE=cuda:1 DTYPE=float16 benchmarks/device.sh
#   benchmarks/device.sh --tiny          # CPU, tiny dims, seconds → runs/device/vla_device_tiny.json
#
# Environment: PYTHON (default: python), DEVICE, DTYPE, OUT (the summary), BENCH_TIMEOUT (s per inference bench),
# TRAIN_TIMEOUT (s, the training bench), BUDGET_S (s the whole script may take; 420 on a GPU), TRAIN_BATCH, PEER_SITE.
# The LeRobot pi05 peer runs on $DEVICE too (bench_pi05_device.py builds its policy there). On the CPU it runs
# from its venv .peer-venv/lerobot; on a GPU machine with PEER_SITE=<dir> (lerobot 0.6.1 + transformers 5.5.4
# installed with pip --target, see ../shared/peers/lerobot_pi05/README.md) it runs with $PYTHON and that
# directory first on its PYTHONPATH; without PEER_SITE the summary's peer_note says it was not run.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"

tiny=0
if [[ "${1:-}" == "--tiny" ]]; then tiny=1; shift; fi
if [[ $# -gt 0 ]]; then echo "device.sh: unknown argument '$1' (expected --tiny or nothing)" >&2; exit 2; fi

if [[ $tiny == 1 ]]; then
  DEVICE=${DEVICE:-cpu} DTYPE=${DTYPE:-float32} OUT=${OUT:-runs/device/vla_device_tiny.json}
  declare -A PRESET=([pi05_300m]=tiny [paper]=tiny)
  timing=(--iters 1 --warmup 1 --baseline-iters 1 --graph-capture)
  train=(train_tiny --rounds 1) budget=${BUDGET_S:-1800} train_limit=${TRAIN_TIMEOUT:-300}
else
  DEVICE=${DEVICE:-cuda} DTYPE=${DTYPE:-bfloat16} OUT=${OUT:-benchmarks/results/vla_device.json}
  declare -A PRESET=([pi05_300m]=default [paper]=paper)
  timing=(--iters 5 --warmup 2 --baseline-iters 2 --roof-size 8192 --graph-capture)
  # pi05_300m dims, bf16 (ours: autocast over fp32 weights, as `vla train --bf16`); one round: the peer
  # subprocess imports and builds ~1.4 B random weights each round
  train=(default --train --batch "${TRAIN_BATCH:-8}" --warmup 3 --iters 5 --rounds 1 --roof-size 8192)
  budget=${BUDGET_S:-420} train_limit=${TRAIN_TIMEOUT:-240}
fi

peer=(--peer.no-enabled)
peer_note="LeRobot pi05 peer not run: set PEER_SITE to its packages' directory (see the header)"
if [[ $DEVICE == cpu && $tiny == 0 ]]; then
  if [[ -x .peer-venv/lerobot/bin/python ]]; then peer=() peer_note=null
  else peer_note="peer venv .peer-venv/lerobot missing"; fi
elif [[ -n "${PEER_SITE:-}" && $tiny == 0 ]]; then
  peer=(--peer.python "$(command -v "$PYTHON")" --peer.site "$PEER_SITE") peer_note=null
fi
[[ $tiny == 1 ]] && peer_note="tiny dims: no peer"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for name in pi05_300m paper; do
  echo "== vla bench ${PRESET[$name]} ($name) on $DEVICE $DTYPE"
  timeout "${BENCH_TIMEOUT:-400}" "$PYTHON" -m reasonact.cli vla bench "${PRESET[$name]}" --device "$DEVICE" \
    --dtype "$DTYPE" "${timing[@]}" "${peer[@]}" --out "$work/$name.json"
done

# the training bench: last, within what is left of the budget (15 s kept for the summary); not fatal
left=$((budget - SECONDS - 15))
limit=$((train_limit < left ? train_limit : left))
train_error=null
if ((limit < 45)); then
  train_error="not run: ${SECONDS} s of the ${budget} s budget (BUDGET_S) were spent before it"
else
  echo "== vla bench ${train[*]} on $DEVICE $DTYPE (limit ${limit} s)"
  rc=0
  timeout "$limit" "$PYTHON" -m reasonact.cli vla bench "${train[@]}" --device "$DEVICE" --dtype "$DTYPE" \
    "${peer[@]}" --out "$work/train.json" 2>"$work/train.err" || rc=$?
  cat "$work/train.err" >&2
  if ((rc == 124)); then train_error="timed out after ${limit} s (TRAIN_TIMEOUT / BUDGET_S)"
  elif ((rc != 0)); then train_error="exited $rc: $(tail -c 600 "$work/train.err")"; fi
fi

"$PYTHON" - "$work" "$OUT" "$tiny" "$peer_note" "$train_error" <<'PY'
import json, sys
from pathlib import Path

from benchmarks.vla_inference import device_summary
from benchmarks.vla_train import train_summary

work, out, tiny, note, train_error = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "1", *sys.argv[4:]
reports = {name: work / f"{name}.json" for name in ("pi05_300m", "paper")}
train = train_summary(work / "train.json", None if train_error == "null" else train_error)
print(json.dumps(device_summary(reports, out, tiny, None if note == "null" else note, train), indent=1))
print(f"→ {out}")
PY
