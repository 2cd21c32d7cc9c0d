#!/usr/bin/env bash
# README command 2: install what is missing, build, and run every test; then the same suite under
# AddressSanitizer + UndefinedBehaviorSanitizer (CMake preset `sanitize`, clang) and a short
# corpus-seeded run of every libFuzzer target. Any test failure or sanitizer report fails it.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/build.sh
ctest --test-dir build --output-on-failure --parallel "$(nproc)"

# Sanitized build and suite. FOLDPLAN_SKIP_SANITIZE=1 stops after the normal suite (a quick local
# check); CI always runs everything.
[ "${FOLDPLAN_SKIP_SANITIZE:-0}" = "1" ] && exit 0
cmake --preset sanitize >/dev/null
cmake --build --preset sanitize --parallel "$(nproc)"
ctest --preset sanitize --parallel "$(nproc)"

# Each fuzz target mutates its seeds for a few seconds: a crash, leak, sanitizer report or any
# exception other than InputError makes libFuzzer exit non-zero. New inputs go to a scratch
# directory so the committed corpus stays as it is.
fuzz_seconds="${FOLDPLAN_FUZZ_SECONDS:-10}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for corpus in fuzz/corpus/*/; do
  target="$(basename "$corpus")"
  mkdir -p "$scratch/$target"
  log="$scratch/$target.log"
  if ! "build-sanitize/fuzz/${target}_fuzzer" -max_total_time="$fuzz_seconds" \
      -print_final_stats=1 -artifact_prefix="build-sanitize/fuzz/${target}-" \
      "$scratch/$target" "$corpus" >"$log" 2>&1; then
    cat "$log" >&2
    echo "fuzz target $target failed; its input is build-sanitize/fuzz/${target}-*" >&2
    exit 1
  fi
  echo "fuzz $target: $(grep -E '^#[0-9]+.*DONE' "$log" | tail -n 1)"
done
