#!/usr/bin/env bash
# The quantization figures of issue 3, side by side in one run: both example models at fp32,
# fp16, int8, int8-static, int4 and auto (edgeinfer), against ONNX Runtime (fp32, and int8 the
# ONNX way: DynamicQuantizeLinear + MatMulInteger + scale) and PyTorch dynamic int8, on the same
# thread count: accuracy on the full test sets, file size, batch-1 latency, batch-16 throughput,
# private memory, and the issue's targets checked (met / NOT met).
#
# usage: scripts/bench_quant.sh [--threads N] [--repeats R] [--warmup W] [--rounds K]
#                               [--data-dir DIR] [--out DIR] [--edgeinfer PATH]
#                               [--max-accuracy-drop P] [--no-torch] [--json]
#   --threads N      threads for every engine: edgeinfer's OpenBLAS threads, ORT's intra-op
#                    threads, torch.set_num_threads (default 1)
#   --repeats R      timed runs per batch size in each round (default 200)
#   --warmup W       untimed runs per batch size first (default 20)
#   --rounds K       runs of each configuration, alternating, median taken (default 3)
#   --data-dir DIR   full test, calibration and validation sets (default build/testsets; written
#                    by scripts/make_test_sets.py and scripts/bench/make_val_sets.py if missing)
#   --out DIR        models and raw JSON (default build/bench_quant)
#   --edgeinfer P    use this edgeinfer binary instead of building build/inference/edgeinfer
#   --max-accuracy-drop P  the budget of --precision auto, in points (default 0.5)
#   --no-torch       leave PyTorch out
#   --json           print the whole table as one JSON object instead of text
#
# int8-static calibrates on DIR/*_calib_x.bin; auto chooses its plan on DIR/*_val_{x,y}.bin
# (train-split images, the simulator's validation seed), never on the test sets. A build whose
# convert cannot make int8-static or auto gets those rows as "n/a (not supported by this build)".
# Every engine is timed on the same inputs, the test set's samples in turn (edgeinfer bench
# --data, ort_bench.js --data, torch on the first samples): the int8 kernels' speed depends on
# the activations' sign, so random inputs would not give the speed a user sees.
# Progress goes to stderr, the table to stdout. Takes 1-3 minutes once edgeinfer is built.
set -euo pipefail
cd "$(dirname "$0")/.."

ORT_VERSION=1.30.0
threads=1 repeats=200 warmup=20 rounds=3 json=0 torch=1 max_drop=0.5
data=build/testsets out=build/bench_quant edgeinfer=
usage() { sed -n '8,23p' "$0" | sed 's/^# \{0,1\}//'; }
while (( $# )); do
  case "$1" in
    --threads) threads=${2:?--threads needs a value}; shift 2 ;;
    --repeats) repeats=${2:?--repeats needs a value}; shift 2 ;;
    --warmup) warmup=${2:?--warmup needs a value}; shift 2 ;;
    --rounds) rounds=${2:?--rounds needs a value}; shift 2 ;;
    --data-dir) data=${2:?--data-dir needs a value}; shift 2 ;;
    --out) out=${2:?--out needs a value}; shift 2 ;;
    --edgeinfer) edgeinfer=${2:?--edgeinfer needs a value}; shift 2 ;;
    --max-accuracy-drop) max_drop=${2:?--max-accuracy-drop needs a value}; shift 2 ;;
    --no-torch) torch=0; shift ;;
    --json) json=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench_quant: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
for v in "$threads" "$repeats" "$rounds"; do
  [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "bench_quant: '$v' is not a positive integer" >&2; exit 2; }
done
[[ "$warmup" =~ ^[0-9]+$ ]] || { echo "bench_quant: bad --warmup '$warmup'" >&2; exit 2; }
[[ "$max_drop" =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "bench_quant: bad --max-accuracy-drop" >&2; exit 2; }

log() { echo "bench_quant: $*" >&2; }
PY=/usr/bin/python3  # Debian's: numpy, python3-onnx, python3-torch
models=(vibration fashion_mlp)
declare -A prefix=([vibration]=vibration [fashion_mlp]=fashion)
for m in "${models[@]}"; do
  [[ -f examples/$m.onnx ]] || { log "examples/$m.onnx not found (scripts/train_examples.py)"; exit 1; }
done
command -v node >/dev/null && command -v npm >/dev/null ||
  { log "node and npm are needed for the ONNX Runtime side (apt-get install nodejs npm)"; exit 1; }

# --- edgeinfer ---------------------------------------------------------------------------------
if [[ -z "$edgeinfer" ]]; then
  log "scripts/setup.sh"; scripts/setup.sh >&2
  log "scripts/build.sh edgeinfer"; scripts/build.sh edgeinfer >&2
  edgeinfer=build/inference/edgeinfer
fi
[[ -x "$edgeinfer" ]] || { log "$edgeinfer is not an executable"; exit 1; }

# --- ONNX Runtime ------------------------------------------------------------------------------
. scripts/bench/ort_install.sh

# --- data ---------------------------------------------------------------------------------------
if [[ ! -f $data/fashion_x.bin || ! -f $data/vibration_x.bin ]]; then
  log "writing the full test sets into $data"; $PY scripts/make_test_sets.py "$data" >&2
fi
if [[ ! -f $data/fashion_val_y.bin || ! -f $data/vibration_val_y.bin ]]; then
  log "writing the validation sets into $data"; $PY scripts/bench/make_val_sets.py "$data" >&2
fi

# Both sides without the OpenBLAS pins a development machine may set (see bench_engine.sh), and
# every run bounded in time.
run=(timeout 900 env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)
mkdir -p "$out"
rm -f "$out"/*.json "$out"/*.na "$out"/*.file

# --- models and accuracy ------------------------------------------------------------------------
# convert STEM PRECISION: writes $out/STEM.PRECISION.eim, or STEM.PRECISION.na with the reason.
convert() {
  local stem=$1 prec=$2 p=${prefix[$1]} extra=()
  case "$prec" in
    int8-static) extra=(--calibration "$data/${p}_calib_x.bin") ;;
    auto) extra=(--max-accuracy-drop "$max_drop" --eval-data "$data/${p}_val_x.bin"
                 --eval-labels "$data/${p}_val_y.bin") ;;
  esac
  if [[ $prec == int8-static && ! -f $data/${p}_calib_x.bin ]]; then
    echo "not supported by this build: no $data/${p}_calib_x.bin" > "$out/$stem.$prec.na"
    return
  fi
  local err
  if err=$("${run[@]}" "$edgeinfer" convert "examples/$stem.onnx" -o "$out/$stem.$prec.eim" \
             --precision "$prec" "${extra[@]}" 2>&1 >/dev/null); then
    grep -E '^(auto:|total)' <<<"$err" | sed "s/^/bench_quant: $stem $prec: /" >&2 || true
    stat -c %s "$out/$stem.$prec.eim" > "$out/$stem.$prec.file"
  elif [[ $prec == int8-static || $prec == auto ]]; then
    log "$stem $prec: convert failed: $(head -n 1 <<<"$err")"
    echo "not supported by this build: $(head -n 1 <<<"$err" | cut -c1-80)" > "$out/$stem.$prec.na"
  else
    log "$stem $prec: convert failed:"; echo "$err" >&2; exit 1
  fi
}

precisions=(fp32 fp16 int8 int8-static int4 auto)
for stem in "${models[@]}"; do
  p=${prefix[$stem]}
  for prec in "${precisions[@]}"; do
    log "$stem: convert $prec"
    convert "$stem" "$prec"
    [[ -f $out/$stem.$prec.eim ]] || continue
    "${run[@]}" "$edgeinfer" eval "$out/$stem.$prec.eim" --data "$data/${p}_x.bin" \
      --labels "$data/${p}_y.bin" --json --threads "$threads" > "$out/$stem.$prec.eval.json"
  done
  cp "examples/$stem.onnx" "$out/$stem.ort-fp32.onnx"
  $PY scripts/bench/ort_quantize.py "examples/$stem.onnx" "$out/$stem.ort-int8.onnx"
  for cfg in ort-fp32 ort-int8; do
    stat -c %s "$out/$stem.$cfg.onnx" > "$out/$stem.$cfg.file"
    log "$stem: accuracy under $cfg"
    "${run[@]}" node scripts/bench/ort_eval.js "$out/$stem.$cfg.onnx" --data "$data/${p}_x.bin" \
      --labels "$data/${p}_y.bin" --threads "$threads" > "$out/$stem.$cfg.eval.json"
  done
  (( torch )) || echo "left out (--no-torch)" > "$out/$stem.torch-int8.na"
done

# --- timing: every configuration once per round, alternating, so that the noise of a shared VM
# spreads over all of them instead of over one ---------------------------------------------------
for ((r = 1; r <= rounds; ++r)); do
  for stem in "${models[@]}"; do
    p=${prefix[$stem]}
    for prec in "${precisions[@]}"; do
      [[ -f $out/$stem.$prec.eim ]] || continue
      log "$stem: round $r/$rounds: edgeinfer $prec"
      "${run[@]}" "$edgeinfer" bench "$out/$stem.$prec.eim" --batch 1,16 --threads "$threads" \
        --repeats "$repeats" --warmup "$warmup" --data "$data/${p}_x.bin" --json \
        > "$out/$stem.$prec.$r.json"
    done
    for cfg in ort-fp32 ort-int8; do
      log "$stem: round $r/$rounds: $cfg"
      "${run[@]}" node scripts/bench/ort_bench.js "$out/$stem.$cfg.onnx" --batch 1,16 \
        --threads "$threads" --repeats "$repeats" --warmup "$warmup" --data "$data/${p}_x.bin" \
        > "$out/$stem.$cfg.$r.json"
    done
    if (( torch )); then
      log "$stem: round $r/$rounds: torch-int8"
      "${run[@]}" $PY scripts/bench/torch_dynamic.py "examples/$stem.onnx" \
        --data "$data/${p}_x.bin" --labels "$data/${p}_y.bin" --threads "$threads" \
        --repeats "$repeats" --warmup "$warmup" > "$out/$stem.torch-int8.$r.json"
    fi
  done
done

table_args=(--dir "$out" --rounds "$rounds" --threads "$threads" --repeats "$repeats")
(( json )) && table_args+=(--json)
$PY scripts/bench/quant_table.py "${table_args[@]}" "${models[@]}"
