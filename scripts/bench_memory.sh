#!/usr/bin/env bash
# Memory watchdog and telemetry figures (issue 6), against a real Mosquitto on loopback and the
# real edgeinfer-agent in a memory cgroup of its own (v1 under this process's memory cgroup, or
# v2 where a child with the memory controller can be made; needs root):
#   reaction  the agent squeezed as in tests/agent/memory_squeeze_test.cc (limit = working set at
#             small load + a margin; a burst that would fill batches of 1024). Per poll period:
#             the watchdog's own reaction (reading over the threshold -> arena re-planned, from
#             telemetry's watchdog.reaction_ms), and as an outside observer sampling the cgroup
#             every ~2 ms: usage crossing step_down -> usage back below it (arena unmapped), and
#             -> the telemetry report showing the step down (report sent at once on a change).
#   cost      telemetry's own cost: report_cpu_us per report (from the reports), and the idle
#             agent's CPU with [telemetry] interval_s = 1 against interval_s = 0 (off), same
#             idle period, alternating runs.
#
# usage: scripts/bench_memory.sh [--runs N] [--poll-ms "100 1000"] [--idle-s N] [--rounds N]
#                                [--build-dir DIR] [--json]
#   --runs N         squeeze runs per poll period (default 3)
#   --poll-ms LIST   watchdog poll periods to measure, ms (default "100 1000")
#   --idle-s N       idle seconds measured per cost run (default 20)
#   --rounds N       alternating on/off rounds of the cost comparison; medians (default 2)
#   --build-dir DIR  where edgeinfer-agent is built (default build, via scripts/build.sh)
#   --json           one JSON object instead of the table
#
# Progress goes to stderr, the figures to stdout. A default run takes about 2-3 minutes once
# built. Temporary files and the cgroup are removed. No figure is asserted.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '15,22p' "$0" | sed 's/^# \{0,1\}//'; }
runs=3 poll_ms="100 1000" idle_s=20 rounds=2 build_dir="" json=0
posint() { [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || { echo "bench_memory: $1 needs a positive integer" >&2; exit 2; }; }
while (( $# )); do
  case "$1" in
    --runs) posint "$1" "${2:-}"; runs=$2; shift 2 ;;
    --idle-s) posint "$1" "${2:-}"; idle_s=$2; shift 2 ;;
    --rounds) posint "$1" "${2:-}"; rounds=$2; shift 2 ;;
    --poll-ms)
      [[ "${2:-}" =~ ^[0-9\ ]+$ ]] || { echo "bench_memory: --poll-ms needs numbers" >&2; exit 2; }
      poll_ms=$2; shift 2 ;;
    --build-dir) build_dir=${2:?--build-dir needs a value}; shift 2 ;;
    --json) json=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench_memory: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

log() { echo "bench_memory: $*" >&2; }
[[ -x /usr/sbin/mosquitto ]] || { log "/usr/sbin/mosquitto is needed (scripts/setup.sh)"; exit 1; }
[[ $(id -u) == 0 ]] || { log "needs root (it makes a memory cgroup)"; exit 1; }
if [[ -z "$build_dir" ]]; then
  log "scripts/build.sh edgeinfer-agent"
  scripts/build.sh edgeinfer-agent >&2
  build_dir=build
elif [[ ! -x "$build_dir/agent/edgeinfer-agent" ]]; then
  log "building edgeinfer-agent in $build_dir"
  cmake --build "$build_dir" --target edgeinfer-agent >&2
fi
log "cpu: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

exec /usr/bin/python3 - "$build_dir/agent/edgeinfer-agent" "$PWD/examples/vibration.onnx" \
  "$runs" "$poll_ms" "$idle_s" "$rounds" "$json" <<'PY'
import json, os, signal, socket, statistics, subprocess, sys, tempfile, threading, time

AGENT, MODEL = sys.argv[1], sys.argv[2]
RUNS, POLLS = int(sys.argv[3]), [int(p) for p in sys.argv[4].split()]
IDLE_S, ROUNDS, JSON_OUT = int(sys.argv[5]), int(sys.argv[6]), sys.argv[7] == "1"
MIB = 1 << 20
MAX_BATCH, BURST = 1024, 3072
STEP_DOWN = 0.70  # the agent's default [memory] step_down
DEVICE = "bench-mem"


def log(*a):
    print("bench_memory:", *a, file=sys.stderr, flush=True)


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def keyed(text, key):
    for line in text.splitlines():
        k, _, v = line.partition(" ")
        if k == key:
            return int(v)
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cgroup:
    """A child of this process's memory cgroup (v1, else v2); remove() kills and removes it."""

    def __init__(self):
        v1 = v2 = None
        for line in read("/proc/self/cgroup").splitlines():
            _, ctrl, path = line.split(":", 2)
            if "memory" in ctrl.split(","):
                v1 = path
            if line.startswith("0::"):
                v2 = path
        name = "edgeinfer-bench-%d" % os.getpid()
        if v1 is not None:
            self.v2, self.dir = False, "/sys/fs/cgroup/memory%s/%s" % (v1.rstrip("/"), name)
        elif v2 is not None and os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
            parent = "/sys/fs/cgroup" + v2.rstrip("/")
            try:
                with open(parent + "/cgroup.subtree_control", "w") as f:
                    f.write("+memory")
            except OSError:
                pass
            self.v2, self.dir = True, parent + "/" + name
        else:
            raise SystemExit("bench_memory: no memory cgroup in /proc/self/cgroup")
        os.makedirs(self.dir, exist_ok=True)
        self.f_limit = "memory.max" if self.v2 else "memory.limit_in_bytes"
        self.f_usage = "memory.current" if self.v2 else "memory.usage_in_bytes"
        if not os.path.exists(self.path(self.f_limit)):
            self.remove()
            raise SystemExit("bench_memory: the memory controller is not enabled in " + self.dir)

    def path(self, f):
        return self.dir + "/" + f

    def set_limit(self, n):
        with open(self.path(self.f_limit), "w") as f:
            f.write(str(n) if n else ("max" if self.v2 else "-1"))

    def working_set(self):
        usage = int(read(self.path(self.f_usage)) or 0)
        inactive = keyed(read(self.path("memory.stat")),
                         "inactive_file" if self.v2 else "total_inactive_file") or 0
        return usage - inactive

    def wrap(self, cmd):
        return ["/bin/sh", "-c", "echo $$ > '%s' && exec \"$@\"" % self.path("cgroup.procs"),
                "sh"] + cmd

    def remove(self):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            pids = read(self.path("cgroup.procs")).split()
            if not pids:
                break
            for p in pids:
                try:
                    os.kill(int(p), signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.02)
        while time.monotonic() < deadline + 5:
            try:
                os.rmdir(self.dir)
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.05)


class Broker:
    def __init__(self, tmp):
        self.port = free_port()
        conf = os.path.join(tmp, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\npersistence false\nallow_anonymous true\n" % self.port)
            if os.geteuid() == 0:
                f.write("user root\n")
        self.proc = subprocess.Popen(["/usr/sbin/mosquitto", "-c", conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise SystemExit("bench_memory: mosquitto did not start")

    def pub_lines(self, topic, lines, qos=1):
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.port), "-t", topic,
                        "-l", "-q", str(qos)], input=("\n".join(lines) + "\n").encode(),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


class Subscriber:
    """mosquitto_sub -v on everything of the device; (arrival time, topic, payload) per line."""

    def __init__(self, broker):
        self.msgs, self.lock = [], threading.Lock()
        self.proc = subprocess.Popen(
            ["stdbuf", "-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-v",
             "-t", "edgeinfer/%s/#" % DEVICE, "-q", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        threading.Thread(target=self.read, daemon=True).start()
        time.sleep(0.3)

    def read(self):
        for raw in self.proc.stdout:
            t = time.monotonic()
            topic, _, payload = raw.decode(errors="replace").rstrip("\n").partition(" ")
            with self.lock:
                self.msgs.append((t, topic, payload))

    def results(self):
        with self.lock:
            return sum(1 for m in self.msgs if "/results/" in m[1])

    def telemetry(self):
        with self.lock:
            out = []
            for t, topic, payload in self.msgs:
                if topic.endswith("/telemetry"):
                    try:
                        out.append((t, json.loads(payload)))
                    except ValueError:
                        pass
            return out

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def message(i):
    return '{"values":[%s]}' % ",".join("%.3f" % (0.01 * ((i * 7 + k) % 200) - 1.0)
                                        for k in range(768))


def wait(pred, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


def config(tmp, broker, interval_s, poll_ms, big):
    path = os.path.join(tmp, "agent.toml")
    batch = ("[pipeline.batch]\nmax_size = %d\ntimeout_ms = 500\nqueue_capacity = %d\n"
             % (MAX_BATCH, 2 * BURST)) if big else ""
    with open(path, "w") as f:
        f.write('[device]\nid = "%s"\nstate_dir = "%s/state"\n[source]\nuri = "tcp://127.0.0.1:%d"\n'
                "[telemetry]\ninterval_s = %d\n[memory]\npoll_ms = %d\n"
                '[[pipeline]]\nname = "vib"\nmodel = "%s"\ntopics = ["sensors/+/vibration"]\n'
                "[pipeline.input]\nwindow = 0\n%s"
                % (DEVICE, tmp, broker.port, interval_s, poll_ms, MODEL, batch))
    return path


def start_agent(tmp, cfg, cgroup=None):
    cmd = [AGENT, "--config", cfg]
    err = open(os.path.join(tmp, "agent.log"), "ab")
    return subprocess.Popen(cgroup.wrap(cmd) if cgroup else cmd, stdout=subprocess.DEVNULL,
                            stderr=err)


def stop_agent(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def warm_up(broker, sub, n=32):
    # Until the agent is subscribed inputs are lost: one at a time until a result comes.
    if not wait(lambda: (broker.pub_lines("sensors/probe/vibration", [message(0)], 0) or
                         wait(lambda: sub.results() > 0, 0.3)), 30):
        raise SystemExit("bench_memory: the agent produced no result")
    before = sub.results()
    broker.pub_lines("sensors/m1/vibration", [message(i) for i in range(n)])
    if not wait(lambda: sub.results() >= before + n, 20):
        raise SystemExit("bench_memory: warm-up results missing")


def squeeze_run(tmp, poll_ms):
    broker = Broker(tmp)
    sub = Subscriber(broker)
    cg = Cgroup()
    proc = None
    try:
        proc = start_agent(tmp, config(tmp, broker, 1, poll_ms, True), cg)
        warm_up(broker, sub)
        baseline = 0
        for _ in range(5):
            baseline = max(baseline, cg.working_set())
            time.sleep(0.1)
        limit = baseline + max(24 * MIB, baseline * 3 // 4)
        cg.set_limit(limit)
        threshold = STEP_DOWN * limit
        samples, stop = [], threading.Event()

        def observe():
            while not stop.is_set():
                samples.append((time.monotonic(), cg.working_set()))
                time.sleep(0.002)

        obs = threading.Thread(target=observe)
        obs.start()
        want = sub.results() + BURST
        burst = [message(i) for i in range(BURST)]
        broker.pub_lines("sensors/m2/vibration", burst)
        ok = wait(lambda: sub.results() >= want or proc.poll() is not None, 60)
        time.sleep(max(0.5, 2 * poll_ms / 1000))
        stop.set()
        obs.join()
        survived = proc.poll() is None
        cross = next((t for t, ws in samples if ws >= threshold), None)
        drop = next((t for t, ws in samples if cross and t > cross and ws < threshold), None)
        tel = sub.telemetry()
        stepped = next((t for t, j in tel if cross and t >= cross and
                        j.get("watchdog", {}).get("transitions", 0) >= 1), None)
        last = tel[-1][1] if tel else {}
        wd = last.get("watchdog", {})
        r = {
            "poll_ms": poll_ms, "survived": survived, "all_results": ok and survived,
            "limit_mib": limit / MIB, "baseline_mib": baseline / MIB,
            "peak_mib": max(ws for _, ws in samples) / MIB if samples else None,
            "observer_samples": len(samples),
            "cross_to_below_ms": (drop - cross) * 1e3 if cross and drop else None,
            "cross_to_report_ms": (stepped - cross) * 1e3 if cross and stepped else None,
            "watchdog_reaction_ms": wd.get("reaction_ms", {}).get("max"),
            "watchdog_reaction_p50_ms": wd.get("reaction_ms", {}).get("p50"),
            "reactions": wd.get("reaction_ms", {}).get("count", 0),
            "to_step_down": wd.get("to_step_down", 0), "to_critical": wd.get("to_critical", 0),
            "capped_batches": last.get("memory_capped_batches", 0),
            "mean_batch": last.get("pipelines", {}).get("vib", {}).get("mean_batch_size"),
        }
        return r
    finally:
        if proc and proc.poll() is None:
            stop_agent(proc)
        cg.remove()
        sub.stop()
        broker.stop()


def cpu_ns(pid):
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        s = read("/proc/%d/task/%s/schedstat" % (pid, tid)).split()
        if s:
            total += int(s[0])
    return total


def cost_run(tmp, interval_s):
    broker = Broker(tmp)
    sub = Subscriber(broker)
    proc = None
    try:
        proc = start_agent(tmp, config(tmp, broker, interval_s, 1000, False))
        warm_up(broker, sub)
        time.sleep(2)
        n0, t0, c0 = len(sub.telemetry()), time.monotonic(), cpu_ns(proc.pid)
        time.sleep(IDLE_S)
        c1, t1 = cpu_ns(proc.pid), time.monotonic()
        tel = sub.telemetry()[n0:]
        report_us = [j["report_cpu_us"] for _, j in tel if "report_cpu_us" in j]
        return {"interval_s": interval_s, "cpu_ms_per_s": (c1 - c0) / 1e6 / (t1 - t0),
                "reports": len(tel), "report_cpu_us": report_us,
                "report_bytes": statistics.mean(len(json.dumps(j)) for _, j in tel) if tel else 0}
    finally:
        if proc and proc.poll() is None:
            stop_agent(proc)
        sub.stop()
        broker.stop()


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, spec="%.1f"):
    return "-" if x is None else spec % x


def main():
    out = {"reaction": [], "cost": {}}
    with tempfile.TemporaryDirectory(prefix="edgeinfer-benchmem-") as tmp:
        for poll in POLLS:
            for i in range(RUNS):
                log("squeeze: poll_ms %d, run %d of %d" % (poll, i + 1, RUNS))
                run_dir = tempfile.mkdtemp(dir=tmp)
                out["reaction"].append(squeeze_run(run_dir, poll))
        on, off = [], []
        for i in range(ROUNDS):
            for interval, into in ((1, on), (0, off)):
                log("cost: telemetry interval_s %d, round %d of %d, %d s idle"
                    % (interval, i + 1, ROUNDS, IDLE_S))
                into.append(cost_run(tempfile.mkdtemp(dir=tmp), interval))
    reports = [u for r in on for u in r["report_cpu_us"]]
    cpu_on, cpu_off = med(r["cpu_ms_per_s"] for r in on), med(r["cpu_ms_per_s"] for r in off)
    out["cost"] = {
        "idle_s": IDLE_S, "rounds": ROUNDS, "on": on, "off": off,
        "report_cpu_us_p50": med(reports), "report_cpu_us_max": max(reports) if reports else None,
        "report_bytes": med(r["report_bytes"] for r in on),
        "cpu_ms_per_s_interval_1": cpu_on, "cpu_ms_per_s_off": cpu_off,
        "cpu_us_per_report_by_difference":
            (cpu_on - cpu_off) * 1e3 if cpu_on is not None and cpu_off is not None else None,
    }
    if JSON_OUT:
        print(json.dumps(out, indent=1))
        return
    print("Memory watchdog reaction (agent squeezed in a cgroup; burst of %d, batch.max_size %d)"
          % (BURST, MAX_BATCH))
    row = "%-8s %-9s %-10s %-9s %-8s %-14s %-14s %-9s %-9s %s"
    print(row % ("poll_ms", "survived", "limit MiB", "peak MiB", "capped", "cross->below",
                 "cross->report", "reaction", "reaction", "steps"))
    print(row % ("", "", "", "", "batches", "ms (outside)", "ms (outside)", "max ms", "p50 ms",
                 "down"))
    for r in out["reaction"]:
        print("%-8d %-9s %-10.1f %-9s %-8d %-14s %-14s %-9s %-9s %d" % (
            r["poll_ms"], "yes" if r["survived"] else "KILLED", r["limit_mib"],
            fmt(r["peak_mib"]), r["capped_batches"], fmt(r["cross_to_below_ms"]),
            fmt(r["cross_to_report_ms"]), fmt(r["watchdog_reaction_ms"], "%.2f"),
            fmt(r["watchdog_reaction_p50_ms"], "%.2f"), r["to_step_down"] + r["to_critical"]))
    c = out["cost"]
    print()
    print("Telemetry cost (idle agent, %d s per run, %d rounds, medians)" % (IDLE_S, ROUNDS))
    print("  report_cpu_us per report (in the reports): p50 %s, max %s; report %s bytes"
          % (fmt(c["report_cpu_us_p50"]), fmt(c["report_cpu_us_max"]), fmt(c["report_bytes"], "%.0f")))
    print("  agent CPU, interval_s = 1: %s ms/s   interval_s = 0 (off): %s ms/s   difference: %s us "
          "per report" % (fmt(cpu_on, "%.3f"), fmt(cpu_off, "%.3f"),
                          fmt(c["cpu_us_per_report_by_difference"], "%.0f")))


main()
PY
