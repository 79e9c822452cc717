#!/usr/bin/env bash
# Build .peer-venv/lerobot-data: LeRobot 0.6.1 with its dataset extra, in a side venv, so a test can open
# our LeRobot-layout datasets with LeRobot's own `LeRobotDataset` (lerobot cannot be a dependency of
# reasonact: it declares Python>=3.12 and torch<2.12). Uses the patched setup of ../shared/peers/lerobot_pi05.
# Usage: scripts/peer_lerobot_data.sh [VENV_DIR]   (~3 min fresh; idempotent)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${1:-$HERE/.peer-venv/lerobot-data}
PEERS=${PEERS:-$HERE/../shared/peers}
bash "$PEERS/lerobot_pi05/setup.sh" "$VENV"
# lerobot[dataset] without torchcodec: LeRobot then decodes our mp4 cameras with PyAV (av<16); torch stays pinned.
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "torch==2.13.0" "numpy>=2.0,<2.3" \
  "datasets>=4.8,<5" "pandas>=2,<3" "pyarrow>=21,<30" "av>=15,<16" "jsonlines>=4,<5"
"$VENV/bin/python" -c "from lerobot.datasets.lerobot_dataset import LeRobotDataset"
echo "== ready: $VENV"
