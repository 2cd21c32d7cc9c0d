#!/usr/bin/env bash
# Configures and builds foldplan into build/ (Release with debug info). Extra args go to cmake.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
werror=OFF
[ "${CI:-}" = "true" ] && werror=ON
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFOLDPLAN_WERROR="$werror" "$@" >/dev/null
cmake --build build --parallel "$(nproc)"
