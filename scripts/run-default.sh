#!/usr/bin/env bash
# README command 1: install what is missing, build, and run foldplan's main job on a built-in
# default: search the plans for Mixtral-8x22B on 128 H100s (seq 4096, GBS 256) with and without
# MoE Parallel Folding, explain the best, then estimate the paper's own folded plan
# (TP2 PP8 | ETP1 EP8) and print rank 0's process groups.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/build.sh
build/cli/foldplan search --model mixtral-8x22b --cluster dgx-h100 --gpus 128 --seq 4096 \
  --gbs 256 --compare-folding -o build/best-plan.json
echo
build/cli/foldplan explain build/best-plan.json
echo
build/cli/foldplan estimate --model mixtral-8x22b --cluster dgx-h100 --gpus 128 --seq 4096 \
  --gbs 256 --mbs 1 --tp 2 --pp 8 --ep 8 --etp 1 --capacity-factor 1
echo
build/cli/foldplan groups --model mixtral-8x22b --cluster dgx-h100 --gpus 128 \
  --tp 2 --pp 8 --ep 8 --etp 1 --rank 0
