#!/usr/bin/env bash
# Prepares, here (where the project's environment is complete and pip reaches the registry), what
# scripts/gpu/run.sh installs offline on a GPU machine that has torch, transformers, peft and
# accelerate but may lack trl (and pytest):
#
#   scripts/gpu/wheels/requirements.txt   what the GPU tier needs beyond those four and their
#                                         dependencies (scripts/gpu/missing.py: trl's and pytest's
#                                         dependency closure minus theirs, from this environment)
#   scripts/gpu/wheels/*.whl              one wheel each (pip download --no-deps)
#   scripts/gpu/cache/toy/arith-*         the toy:arith reference build, if it is cached here (3.4 MB),
#                                         so the benchmark can run the default toy model without its
#                                         5-minute CPU build; the GPU tests build toy:arith-tiny (seconds)
#
# Usage:
#   scripts/gpu/fetch_wheels.sh                   # wheels for this Python
#   GPU_PYTHON=3.12 scripts/gpu/fetch_wheels.sh   # binary wheels for the GPU machine's Python
#   PYTHON=/path/to/python scripts/gpu/fetch_wheels.sh
#   SKIP="pyarrow pandas" scripts/gpu/fetch_wheels.sh   # list them, download the rest (~3 MB instead
#                                                       # of ~68: for a machine that has them, or a
#                                                       # limit on what travels with the tree)
#
# Both folders are git-ignored. Hand them to the GPU machine with the working tree.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for cand in "$ROOT/.venv/bin/python" "$(git -C "$ROOT" rev-parse --path-format=absolute --git-common-dir 2>/dev/null)/../.venv/bin/python" python3; do
    if [ -x "$cand" ] || command -v "$cand" >/dev/null 2>&1; then PY=$cand; break; fi
  done
fi
WHEELS=$HERE/wheels
mkdir -p "$WHEELS"
"$PY" "$HERE/missing.py" ${GPU_PYTHON:+"$GPU_PYTHON"} > "$WHEELS/requirements.txt"
echo "needed beyond torch/transformers/peft/accelerate: $(tr '\n' ' ' < "$WHEELS/requirements.txt")"
if [ -n "${GPU_PYTHON:-}" ]; then
  platform_args=(--python-version "$GPU_PYTHON" --implementation cp --platform manylinux_2_28_x86_64
                 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any)
else
  platform_args=()
fi
skip_re="^($(echo "${SKIP:-}" | xargs | tr ' ' '|'))(==|\$)"
[ -n "${SKIP:-}" ] || skip_re='^$'
grep -v -E "$skip_re" "$WHEELS/requirements.txt" > "$WHEELS/.download.txt" || true
"$PY" -m pip download --no-deps --only-binary=:all: "${platform_args[@]}" -d "$WHEELS" -r "$WHEELS/.download.txt"
rm -f "$WHEELS/.download.txt"
du -sh "$WHEELS"
CACHE=${SCLAB_CACHE_DIR:-$HOME/.cache/sclab}
mkdir -p "$HERE/cache/toy"
for build in "$CACHE"/toy/arith-*; do
  case "$build" in *.lock|*arith-tiny-*) continue ;; esac
  [ -f "$build/sclab_toy.json" ] && cp -r "$build" "$HERE/cache/toy/" && echo "carried toy build: $(basename "$build")"
done
exit 0
