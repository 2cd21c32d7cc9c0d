#!/usr/bin/env bash
# Runs a validation matrix on this machine's GPUs: for every plan of the matrix file, `foldplan
# estimate` writes it, `foldplan validate` runs it and compares measured with predicted (the
# comparison, the raw measurements and a side-by-side Chrome trace land in --out); then
# tools/validate/summarize.py prints the table.
# Needs a build with the GPU runtime. The matrices: tools/validate/matrix.txt (one GPU) and
# tools/validate/matrix-2gpu.txt (two GPUs, --gpus 2).
#
#   scripts/validate-matrix.sh [--cluster dgx-h100] [--matrix FILE] [--gpus N] [--out DIR]
#                              [--foldplan BIN] [--calibration FILE] [--only NAME]
#   scripts/validate-matrix.sh --replay DIR [--calibration FILE] [--out DIR]
# --replay predicts the measurements a matrix run left in DIR (NAME.plan.json and
# NAME.measured.json, e.g. tools/validate/results/h100) again, with no GPU (`validate --from`).
set -euo pipefail
cd "$(dirname "$0")/.."

cluster=dgx-h100
matrix=tools/validate/matrix.txt
gpus=1
out=build/validation
foldplan=build/cli/foldplan
calibration=""
only=""
replay=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --cluster) cluster="$2"; shift 2 ;;
    --matrix) matrix="$2"; shift 2 ;;
    --gpus) gpus="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --foldplan) foldplan="$2"; shift 2 ;;
    --calibration) calibration="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --replay) replay="$2"; shift 2 ;;
    *) echo "validate-matrix.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
rm -f "$out"/*.validation.json # the summary reads every comparison in --out: this run's only
extra=(--local-gpus "$gpus")
[[ -n "$calibration" ]] && extra+=(--calibration "$calibration")

if [[ -n "$replay" ]]; then
  for measured in "$replay"/*.measured.json; do
    name="$(basename "$measured" .measured.json)"
    [[ -n "$only" && "$name" != "$only" ]] && continue
    "$foldplan" validate "$replay/$name.plan.json" --from "$measured" "${extra[@]:2}" \
      -o "$out/$name.validation.json" >/dev/null
  done
  python3 tools/validate/summarize.py "$out"/*.validation.json
  exit 0
fi

failed=0
while IFS='|' read -r name estimate_flags validate_flags; do
  name="$(echo "$name" | xargs)"
  [[ -z "$name" || "$name" == \#* ]] && continue
  [[ -n "$only" && "$name" != "$only" ]] && continue
  echo "== $name" >&2
  # shellcheck disable=SC2086
  "$foldplan" estimate $estimate_flags --cluster "$cluster" --gpus "$gpus" \
    -o "$out/$name.plan.json" >/dev/null
  # shellcheck disable=SC2086
  if ! "$foldplan" validate "$out/$name.plan.json" $validate_flags "${extra[@]}" \
      -o "$out/$name.validation.json" --measured "$out/$name.measured.json" \
      --trace "$out/$name.trace.json" >"$out/$name.log" 2>&1; then
    echo "   failed: $(tail -n 1 "$out/$name.log")" >&2
    failed=1
  fi
done < "$matrix"
python3 tools/validate/summarize.py "$out"/*.validation.json
exit "$failed"
