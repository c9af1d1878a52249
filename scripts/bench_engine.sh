#!/usr/bin/env bash
# Side-by-side engine benchmark: edgeinfer FP32 against ONNX Runtime's CPU execution provider,
# on the same ONNX files, the same thread count, batch 1 (latency) and batch 16 (throughput).
#
# usage: scripts/bench_engine.sh [--threads N] [--repeats R] [--warmup W] [--rounds K]
#                                [--model FILE.onnx]... [--json]
#   --threads N   edgeinfer's OpenBLAS threads = ORT's intra-op threads (default 1)
#   --repeats R   timed runs per batch size in each round (default 200)
#   --warmup W    untimed runs per batch size first (default 20)
#   --rounds K    runs of each engine per model, alternating, median taken (default 3)
#   --model F     an ONNX model to compare (repeatable; default: the two example models)
#   --json        print the whole table as one JSON object instead of text
#
# What it does, in order: scripts/setup.sh and scripts/build.sh edgeinfer; installs
# onnxruntime-node@1.30.0 into ${EDGEINFER_CACHE:-$HOME/.cache/edgeinfer}/ort unless it is
# there already; converts each model into build/bench/; runs `edgeinfer bench` and
# scripts/bench/ort_bench.js alternately; hands the JSON files to scripts/bench/compare.py,
# which prints the table. Progress goes to stderr, the table to stdout. A default run takes
# 10-30 s once edgeinfer is built and ORT is cached (a first build adds a few minutes).
set -euo pipefail
cd "$(dirname "$0")/.."

ORT_VERSION=1.30.0
threads=1 repeats=200 warmup=20 rounds=3 json=0
models=()
usage() { sed -n '5,12p' "$0" | sed 's/^# \{0,1\}//'; }
while (( $# )); do
  case "$1" in
    --threads) threads=${2:?--threads needs a value}; shift 2 ;;
    --repeats) repeats=${2:?--repeats needs a value}; shift 2 ;;
    --warmup) warmup=${2:?--warmup needs a value}; shift 2 ;;
    --rounds) rounds=${2:?--rounds needs a value}; shift 2 ;;
    --model) models+=("${2:?--model needs a value}"); shift 2 ;;
    --json) json=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench_engine: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
for v in "$threads" "$repeats" "$rounds"; do
  [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "bench_engine: '$v' is not a positive integer" >&2; exit 2; }
done
[[ "$warmup" =~ ^[0-9]+$ ]] || { echo "bench_engine: bad --warmup '$warmup'" >&2; exit 2; }
(( ${#models[@]} )) || models=(examples/vibration.onnx examples/fashion_mlp.onnx)

log() { echo "bench_engine: $*" >&2; }
for m in "${models[@]}"; do
  [[ -f "$m" ]] || { log "$m not found (the examples come from scripts/train_examples.py)"; exit 1; }
done
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  log "node and npm are needed for the ONNX Runtime side (apt-get install nodejs npm)"; exit 1
fi

# --- build ---------------------------------------------------------------------------------
log "scripts/setup.sh"
scripts/setup.sh >&2
log "scripts/build.sh edgeinfer"
scripts/build.sh edgeinfer >&2
EDGEINFER=build/inference/edgeinfer

# --- ONNX Runtime ------------------------------------------------------------------------------
. scripts/bench/ort_install.sh

# --- OpenBLAS environment ---------------------------------------------------------------------
# Development machines and CI may pin OpenBLAS with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (they
# hold it to its AVX2 kernels). A user's device sets neither, so the benchmark runs both engines
# without them, to time what a user would get. Tests and CI keep their own environment.
unset_note="none set"
if [[ -n "${OPENBLAS_CORETYPE+x}${OPENBLAS_L2_SIZE+x}" ]]; then
  unset_note="unset for these runs (were OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-<unset>}"
  unset_note+=" OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE-<unset>})"
fi
log "OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE: $unset_note"
clean_env=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)
# Bound each run, so a hung engine cannot hold the benchmark forever.
run_bounded=(timeout 600)

# --- convert, then run both engines alternately -----------------------------------------------
out=build/bench
mkdir -p "$out"
rm -f "$out"/*.json
batches=1,16
stems=()
for m in "${models[@]}"; do
  stem=$(basename "$m" .onnx)
  stems+=("$stem")
  log "$stem: convert"
  "$EDGEINFER" convert "$m" -o "$out/$stem.eim" >&2
  "$EDGEINFER" inspect "$out/$stem.eim" --json --batch "$batches" > "$out/$stem.inspect.json"
  cp "$m" "$out/$stem.onnx"  # what ORT loads: the very file that was converted
  # Alternating edgeinfer, ORT, edgeinfer, ORT... spreads the noise of a shared 2-core VM
  # (other processes, frequency changes) over both sides instead of over one.
  for ((r = 1; r <= rounds; ++r)); do
    log "$stem: round $r/$rounds: edgeinfer"
    "${run_bounded[@]}" "${clean_env[@]}" "$EDGEINFER" bench "$out/$stem.eim" --batch "$batches" \
      --threads "$threads" --repeats "$repeats" --warmup "$warmup" --json \
      > "$out/$stem.edgeinfer.$r.json"
    log "$stem: round $r/$rounds: onnxruntime"
    "${run_bounded[@]}" "${clean_env[@]}" node scripts/bench/ort_bench.js "$out/$stem.onnx" \
      --batch "$batches" --threads "$threads" --repeats "$repeats" --warmup "$warmup" \
      > "$out/$stem.ort.$r.json"
  done
done

compare_args=(--dir "$out" --rounds "$rounds" --threads "$threads" --repeats "$repeats"
              --openblas-env "$unset_note")
(( json )) && compare_args+=(--json)
/usr/bin/python3 scripts/bench/compare.py "${compare_args[@]}" "${stems[@]}"
