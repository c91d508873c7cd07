#!/usr/bin/env bash
# The GPU tier in one go, on one GPU machine, in about 8 minutes or less:
#   1. installs what the tier needs and the machine lacks (trl, pytest, ... as listed by
#      scripts/gpu/fetch_wheels.sh in wheels/requirements.txt) from the wheels beside this script,
#      offline (pip --no-index --no-deps --target scripts/gpu/.site): only distributions that are
#      not installed, so the machine's torch, transformers, peft and accelerate stay as they are;
#   2. runs `pytest -m gpu tests/gpu` (hf backend in bf16, SFT, LoRA, GRPO; the trl tests skip
#      where trl could not be installed, the vLLM test where vLLM is absent);
#   3. runs benchmarks/generation.py (on CUDA where available: tokens/s at batch 64 vs batch 1, and scoring):
#      toy:arith if its reference build was carried in scripts/gpu/cache, else toy:arith-tiny,
#      which is built in seconds (as are all the tests' models).
# Results go to $OUT (env.txt, install.txt, gpu-tests.txt/.xml, generation.txt/.json, summary.txt),
# or to a temporary folder when OUT is unset. Exit status: pytest's (0 = the tier passed).
#
#   bash scripts/gpu/run.sh                       # PYTHON=... to choose the interpreter
#
# Prepare beforehand, on a machine with the project's full environment and pip access:
#   scripts/gpu/fetch_wheels.sh                   # GPU_PYTHON=3.x for another Python
# The wheels are ~68 MB (pyarrow 55, pandas 12); where the machine already has pandas and pyarrow,
# or where what travels with the tree is limited, fetch with SKIP="pyarrow pandas" (~3 MB).
# CI never runs this.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$ROOT"
PY=${PYTHON:-$(command -v python3 || command -v python)}
RES=${OUT:-$(mktemp -d -t sclab-gpu-XXXX)}
mkdir -p "$RES"
SITE=$HERE/.site
WHEELS=$HERE/wheels
export SCLAB_CACHE_DIR=${SCLAB_CACHE_DIR:-$HERE/cache}
export PYTHONPATH="$SITE:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export VLLM_WORKER_MULTIPROC_METHOD=spawn   # CUDA is initialised before vLLM starts its engine
export TOKENIZERS_PARALLELISM=false PIP_DISABLE_PIP_VERSION_CHECK=1
t_start=$(date +%s)
log() { echo "[$(( $(date +%s) - t_start ))s] $*" | tee -a "$RES/summary.txt"; }

{ nvidia-smi 2>&1 | head -15; "$PY" -V
  "$PY" - <<'PYEOF'
import importlib.metadata as md
for d in ("torch", "transformers", "peft", "accelerate", "trl", "vllm", "datasets", "pandas", "pyarrow", "pytest"):
    try:
        print(f"{d}=={md.version(d)}")
    except md.PackageNotFoundError:
        print(f"{d}: not installed")
import torch
print("cuda available:", torch.cuda.is_available(), torch.version.cuda,
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
PYEOF
} > "$RES/env.txt" 2>&1
log "python $("$PY" -V 2>&1), results in $RES"

# 1. offline install of what is missing
missing=()
if [ -f "$WHEELS/requirements.txt" ]; then
  while read -r req; do
    case "$req" in ''|'#'*) continue ;; esac
    name=${req%%==*}
    if ! "$PY" -c 'import importlib.metadata as m, sys; m.version(sys.argv[1])' "$name" 2>/dev/null; then
      stem=$(echo "$name" | tr 'A-Z-' 'a-z_')
      if ls "$WHEELS" | tr 'A-Z' 'a-z' | grep -q "^${stem}-"; then missing+=("$req"); else log "not installed, no wheel: $name"; fi
    fi
  done < "$WHEELS/requirements.txt"
else
  log "no $WHEELS/requirements.txt (run scripts/gpu/fetch_wheels.sh to prepare one): installing nothing"
fi
if [ ${#missing[@]} -gt 0 ]; then
  log "installing from wheels: ${missing[*]}"
  PIP_BREAK_SYSTEM_PACKAGES=1 "$PY" -m pip install --no-index --no-deps --find-links "$WHEELS" --target "$SITE" \
    "${missing[@]}" > "$RES/install.txt" 2>&1 || log "pip install failed (see install.txt)"
fi
"$PY" -m pip check >> "$RES/install.txt" 2>&1 || log "pip check reports conflicts (see install.txt)"
"$PY" -c 'import trl' 2>/dev/null || log "trl not importable: its tests will skip"

# 2. the tier
status=1
if "$PY" -c 'import pytest' 2>/dev/null; then
  log "pytest -m gpu tests/gpu"
  timeout 420 "$PY" -m pytest -m gpu tests/gpu -q -rs -p no:cacheprovider --junitxml="$RES/gpu-tests.xml" \
    > "$RES/gpu-tests.txt" 2>&1
  status=$?
  log "pytest exit $status: $(tail -1 "$RES/gpu-tests.txt")"
else
  log "pytest is not importable: tests not run"
fi

# 3. the benchmark
model=toy:arith-tiny
for build in "$SCLAB_CACHE_DIR"/toy/arith-*/sclab_toy.json; do
  case "$build" in *arith-tiny-*) ;; *) [ -f "$build" ] && model=toy:arith ;; esac
done
log "benchmark on $model"
# shellcheck disable=SC2086  # BENCH_ARGS: extra arguments, e.g. "--prompts 64" for a quick look
timeout 180 "$PY" benchmarks/generation.py --model "$model" --threads "${BENCH_THREADS:-8}" ${BENCH_ARGS:-} \
  --json "$RES/generation.json" \
  > "$RES/generation.txt" 2>&1 || log "benchmark failed or timed out (see generation.txt)"
grep -E "tokens/s|ratio" "$RES/generation.txt" | tee -a "$RES/summary.txt"
log "done"
exit $status
