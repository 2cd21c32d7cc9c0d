#!/usr/bin/env bash
# README command 1: install what is missing, build, and run foldplan's main job on a built-in
# default — the paper's folded plan for Mixtral-8x22B on 128 H100s, its rank groups for rank 0.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/build.sh
build/cli/foldplan models
echo
build/cli/foldplan groups --model mixtral-8x22b --cluster dgx-h100 --gpus 128 \
  --tp 2 --pp 8 --ep 8 --etp 1 --rank 0
