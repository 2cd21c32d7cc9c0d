#!/usr/bin/env bash
# Installs the Debian 12 packages foldplan builds with, skipping those already present.
set -euo pipefail

packages=(cmake ninja-build g++ nlohmann-json3-dev libboost-graph-dev libfmt-dev libcli11-dev
          libgtest-dev libgmock-dev libbenchmark-dev
          chromium                  # the report's browser test (tests/report/browser_test.sh)
          clang libclang-rt-14-dev)  # clang + compiler-rt: the sanitize preset and libFuzzer
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "Installing: ${missing[*]}" >&2
as_root=()
[ "$(id -u)" -ne 0 ] && as_root=(sudo)
"${as_root[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
