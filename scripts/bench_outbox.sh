#!/usr/bin/env bash
# Store-and-forward figures (issue 5), side by side in one run against a real Mosquitto on
# loopback: results/s appended to the SQLite outbox and replayed to the broker; live end-to-end
# results/s through the outbox against publishing directly over the same MQTT link (the
# outbox's overhead); the time from the uplink coming back to an outage's backlog drained while
# live results flow, and how late those live results were.
#
# usage: scripts/bench_outbox.sh [--rows N] [--live-rows N] [--outage-rows N] [--live-rate N]
#                                [--window N] [--rounds N] [--build-dir DIR] [--json]
#   --rows N         results appended, then replayed (default 100000)
#   --live-rows N    results per side of the live comparison (default 50000)
#   --outage-rows N  the outage backlog (default 360000: one hour at 100 results/s)
#   --live-rate N    live results per second during the drain (default 100)
#   --window N       results in flight awaiting PUBACK (default 256, as the agent)
#   --rounds N       alternating runs of each side of the live comparison; medians (default 5)
#   --build-dir DIR  where outbox_bench is built (default build, via scripts/build.sh)
#   --json           one JSON object instead of the table
#
# Needs /usr/sbin/mosquitto (scripts/setup.sh installs it). Progress goes to stderr, the
# figures to stdout. A default run takes about 1-2 minutes once built; the database files live
# in a temporary directory and are removed. No figure is asserted: see docs/outbox.md.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '8,17p' "$0" | sed 's/^# \{0,1\}//'; }
args=(--rounds 5) build_dir=""
while (( $# )); do
  case "$1" in
    --rows|--live-rows|--outage-rows|--live-rate|--window|--rounds)
      [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || { echo "bench_outbox: $1 needs a positive integer" >&2; exit 2; }
      args+=("$1" "$2"); shift 2 ;;
    --build-dir) build_dir=${2:?--build-dir needs a value}; shift 2 ;;
    --json) args+=(--json); shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench_outbox: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

log() { echo "bench_outbox: $*" >&2; }
[[ -x /usr/sbin/mosquitto ]] || { log "/usr/sbin/mosquitto is needed (scripts/setup.sh)"; exit 1; }
if [[ -z "$build_dir" ]]; then
  log "scripts/build.sh outbox_bench"
  scripts/build.sh outbox_bench >&2
  build_dir=build
elif [[ ! -x "$build_dir/tests/outbox_bench" ]]; then
  log "building outbox_bench in $build_dir"
  cmake --build "$build_dir" --target outbox_bench >&2
fi
log "cpu: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
exec "$build_dir/tests/outbox_bench" "${args[@]}"
