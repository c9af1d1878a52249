#!/usr/bin/env bash
# The main job, end to end on one machine: a private Mosquitto, the edgeinfer agent running the
# example vibration model, simulated machines publishing accelerometer data, and the agent's
# results printed as they arrive.
#
#   scripts/demo.sh [--duration S] [--machines N] [--bad-rate P] [--fault-rate P]
#                   [--build-dir DIR]
#
# Installs the Debian packages (scripts/setup.sh, as root) and builds (scripts/build.sh) when
# needed, converts examples/vibration.onnx, starts Mosquitto on a free loopback port (temporary
# config, no persistence), the agent, and edgeinfer-simulate; prints one line per result
# (machine, predicted class, score, latency) and every rejected message; stops everything after
# --duration seconds (default 30) or on Ctrl-C, and removes its temporary files.
# --build-dir DIR uses binaries already built there instead (no setup, no build).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

duration=30 machines=4 bad_rate=0.01 fault_rate=0.08 build_dir=
while (($#)); do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --machines) machines=$2; shift 2 ;;
    --bad-rate) bad_rate=$2; shift 2 ;;
    --fault-rate) fault_rate=$2; shift 2 ;;
    --build-dir) build_dir=$(cd "$2" && pwd); shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done

say() { printf '\n== %s\n' "$*"; }

if [[ -z $build_dir ]]; then
  say "packages and build"
  scripts/setup.sh
  scripts/build.sh edgeinfer edgeinfer-agent edgeinfer-simulate
  build_dir=$repo/build
fi
bin=$build_dir

work=$(mktemp -d /tmp/edgeinfer-demo.XXXXXX)
pids=()
cleanup() {
  trap - EXIT INT TERM
  # Newest first, one at a time: the results reader, the agent (SIGTERM: it drains and says
  # offline while the broker is still up), then the broker.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
# Ctrl-C while the simulator runs ends it (and the agent drains): the script carries on to the
# orderly stop below. At any other moment it lands here.
trap 'echo; echo "demo: interrupted"; exit 130' INT TERM

say "converting the example model"
"$bin/inference/edgeinfer" convert examples/vibration.onnx -o "$work/vibration.eim"

# A free loopback port: the first in a random range that nothing answers on.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=$((20000 + RANDOM % 20000))
until port_free "$port"; do port=$((port + 1)); done

wait_port() {  # until something listens on $1, at most 10 s
  for _ in $(seq 100); do port_free "$1" || return 0; sleep 0.1; done
  echo "demo: nothing listens on port $1" >&2
  return 1
}

say "Mosquitto on 127.0.0.1:$port"
cat >"$work/mosquitto.conf" <<EOF
listener $port 127.0.0.1
allow_anonymous true
persistence false
log_dest stderr
EOF
# Its log goes through the shell: run as root, mosquitto drops to user "mosquitto", which may
# not write into $work. Its own session (setsid): Ctrl-C goes to the simulator and the agent,
# which stop gracefully, while the broker stays up to carry their last messages.
setsid mosquitto -c "$work/mosquitto.conf" 2>"$work/mosquitto.log" &
pids+=($!)
wait_port "$port"

say "the agent"
cat >"$work/agent.toml" <<EOF
[device]
id = "demo-gw"
state_dir = "$work/state"
[source]
uri = "tcp://127.0.0.1:$port"
[telemetry]
interval_s = 5
[[pipeline]]
name = "vibration"
model = "$work/vibration.eim"
topics = ["sensors/+/vibration"]
[pipeline.input]
timestamp = "/ts"
window = 256
hop = 256
[pipeline.batch]
max_size = 16
timeout_ms = 10
[pipeline.postprocess]
softmax = true
top_k = 2
EOF
"$bin/agent/edgeinfer-agent" --config "$work/agent.toml" 2>"$work/agent.log" &
agent=$!
pids+=($agent)
status=$(mosquitto_sub -p "$port" -t edgeinfer/demo-gw/status -C 1 -W 15) || {
  echo "demo: the agent did not come online; its log:" >&2
  cat "$work/agent.log" >&2
  exit 1
}
echo "status: $status"

say "results (machine, predicted class, score, latency) and rejected messages"
# One line per message; the JSON fields are pulled out with awk so that no JSON tool is needed.
# A FIFO between the two, so that each has its own PID to stop.
mkfifo "$work/results"
setsid mosquitto_sub -p "$port" -v -t 'edgeinfer/demo-gw/results/#' \
  -t 'edgeinfer/demo-gw/errors' >"$work/results" &
pids+=($!)
awk '
    function field(name,   re, v) {
      re = "\"" name "\":(\"[^\"]*\"|[-0-9.eE+]+)"
      if (!match($0, re)) return "?"
      v = substr($0, RSTART + length(name) + 3, RLENGTH - length(name) - 3)
      gsub(/"/, "", v)
      return v
    }
    $1 ~ /\/errors$/ { printf "  rejected  %-14s %s\n", field("reason"), field("detail"); fflush(); next }
    {
      stream = field("stream"); n = split(stream, part, "/"); machine = (n >= 2) ? part[2] : stream
      printf "  %-10s %-14s %5.3f  %6.2f ms\n", machine, field("label"), field("score"), field("latency_ms")
      fflush()
    }' <"$work/results" &
pids+=($!)

say "simulated machines for ${duration}s (Ctrl-C stops earlier)"
"$bin/agent/edgeinfer-simulate" --uri "tcp://127.0.0.1:$port" --machines "$machines" \
  --duration "$duration" --fault-rate "$fault_rate" --bad-rate "$bad_rate" \
  --samples-per-message 64 | sed -u 's/^/  /'

say "stopping the agent (SIGTERM: drain, deliver, offline)"
kill -TERM "$agent" 2>/dev/null || true  # after a Ctrl-C it is stopping already
wait "$agent" || true
sleep 0.5
echo "status: $(mosquitto_sub -p "$port" -t edgeinfer/demo-gw/status -C 1 -W 5)"
echo "agent log (last lines):"
tail -n 5 "$work/agent.log" | sed 's/^/  /'
