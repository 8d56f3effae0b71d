"""make bench: npstack --sample beside perf and node's --cpu-prof.

A real npm package running hot (acorn parsing its own source:
tests/fixtures/sample/profile.js, which writes `units N ms M` every 250 ms)
is profiled at 99 Hz three ways, each against the same workload unprofiled
in the same run (phases alternate, so that the machine's drift falls on
both): npstack --sample on an unprepared process; `perf record -F 99 -g` on
node started with --perf-basic-prof; node --cpu-prof (a process started
with it, beside one without). For each: the target's throughput against
unprofiled, whether JavaScript frames are named, and for npstack the hold
per sample (its own measure, --json held_us).
"""

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PROFILE_JS = os.path.join(ROOT, "tests/fixtures/sample/profile.js")
PHASE_S = 4
PHASES = 3


def node_modules():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    for d in (os.path.join(target, "npm/node_modules"), os.path.join(ROOT, "target/npm/node_modules")):
        if os.path.isdir(os.path.join(d, "acorn")):
            return d
    raise SystemExit("bench: acorn is not installed: run tests/fetch-packages.sh")


class Workload:
    """profile.js with no profiler of its own, its throughput read as it goes."""

    def __init__(self, started, flags=(), cwd=None, run_for=None):
        extra = ["-", str(run_for)] if run_for else []
        self.proc = subprocess.Popen(["node", *flags, PROFILE_JS, node_modules(), "0", *extra],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, cwd=cwd)
        started.append(self.proc)
        self.units = []  # (time, units, ms)
        ready = threading.Event()

        def read():
            for line in self.proc.stdout:
                if line.startswith("ready"):
                    ready.set()
                elif line.startswith("units"):
                    w = line.split()
                    self.units.append((time.monotonic(), int(w[1]), float(w[3])))
        threading.Thread(target=read, daemon=True).start()
        ready.wait(30)
        time.sleep(2)  # warm up: the hot functions optimized

    def rate(self, start, end):
        """Units a second over the windows that ended between start and end."""
        got = [(u, ms) for t, u, ms in self.units if start < t <= end]
        ms = sum(m for _, m in got)
        return 1000.0 * sum(u for u, _ in got) / ms if ms else float("nan")

    def phase(self, action=None):
        """Throughput while `action` runs (or PHASE_S seconds idle), and its result."""
        start = time.monotonic()
        result = action() if action else time.sleep(PHASE_S)
        time.sleep(0.3)
        return self.rate(start + 0.3, time.monotonic()), result


def alternate(work, action):
    """PHASES pairs of (unprofiled, with action): throughputs and results."""
    plain, profiled, results = [], [], []
    for _ in range(PHASES):
        plain.append(work.phase()[0])
        r, res = work.phase(action)
        profiled.append(r)
        results.append(res)
    return sum(plain) / len(plain), sum(profiled) / len(profiled), results


def npstack_run(bin_dir, pid):
    out = subprocess.run([f"{bin_dir}/npstack", "--sample", f"{PHASE_S}s", "--json", str(pid)],
                         capture_output=True, text=True)
    doc = json.loads(out.stdout)
    named = any(f["kind"] == "js" and "parse" in f["name"]
                for s in doc["stacks"] for f in s["frames"])
    return doc["sample"], named


def sample_bench(started, bin_dir):
    print("npstack --sample at 99 Hz on acorn parsing its own source (tests/fixtures/sample/profile.js), "
          f"{PHASES} phases of {PHASE_S} s profiled\nalternating with {PHASES} unprofiled: the target's "
          "throughput (units of work a second) against unprofiled, and whether JavaScript is named")
    work = Workload(started)
    plain, ours, results = alternate(work, lambda: npstack_run(bin_dir, work.proc.pid))
    holds = [r[0]["main_thread_held_us"] for r in results if r[0]["main_thread_held_us"]]
    named = all(r[1] for r in results)
    print(f"  {'npstack --sample 99 Hz (unprepared node)':<46} {ours:7.2f}/s vs {plain:7.2f}/s "
          f"= {100 * (ours / plain - 1):+5.1f}%  JS named: {'yes' if named else 'no'}")
    if holds:
        med = sorted(h["median"] for h in holds)[len(holds) // 2]
        worst = max(h["max"] for h in holds)
        print(f"  {'  hold per main-thread sample':<46} median {med} us, worst {worst} us")
    work.proc.kill()

    if shutil.which("perf"):
        tmp = tempfile.mkdtemp(prefix="nptools-perf.")
        perfed = Workload(started, flags=["--perf-basic-prof"])
        data = os.path.join(tmp, "perf.data")

        def perf_run():
            subprocess.run(["perf", "record", "-q", "-F", "99", "-g", "-o", data, "-p", str(perfed.proc.pid),
                            "--", "sleep", str(PHASE_S)], capture_output=True)
            script = subprocess.run(["perf", "script", "-i", data], capture_output=True, text=True).stdout
            return "parse" in script and "acorn" in script
        plain, perf_rate, named = alternate(perfed, perf_run)
        print(f"  {'perf record -F 99 -g (node --perf-basic-prof)':<46} {perf_rate:7.2f}/s vs {plain:7.2f}/s "
              f"= {100 * (perf_rate / plain - 1):+5.1f}%  JS named: {'yes' if all(named) else 'no'}")
        perfed.proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print("  perf record: (not installed)")

    # The hold per sample of a main thread 120 JavaScript frames deep
    # (bench/jsbusy.js), with its frames named from the heap (after it
    # resumes) and without (--no-heap-names).
    busy = subprocess.Popen(["node", os.path.join(HERE, "jsbusy.js")], stdout=subprocess.PIPE, text=True)
    started.append(busy)
    while not busy.stdout.readline().startswith("ready"):
        pass
    threading.Thread(target=lambda: [None for _ in busy.stdout], daemon=True).start()
    held = {}
    for flags in ([], ["--no-heap-names"]):
        out = subprocess.run([f"{bin_dir}/npstack", "--sample", "3s", *flags, "--json", f"{busy.pid}/1"],
                             capture_output=True, text=True)
        held[bool(flags)] = json.loads(out.stdout)["sample"]["main_thread_held_us"]
    busy.kill()
    named, bare = held[False], held[True]
    print(f"  {'hold, main thread 120 JS frames deep':<46} median {named['median']} us named from the heap, "
          f"{bare['median']} us with --no-heap-names: x{named['median'] / max(bare['median'], 1):.2f}")

    # --cpu-prof is for the whole life of a process: one with it beside one
    # without, run at the same time (each phase the same for both).
    tmp = tempfile.mkdtemp(prefix="nptools-cpuprof.")
    prof = Workload(started, flags=["--cpu-prof", "--cpu-prof-dir", tmp], cwd=tmp,
                    run_for=PHASES * PHASE_S + 4)
    bare = Workload(started)
    start = time.monotonic()
    time.sleep(PHASES * PHASE_S)
    end = time.monotonic()
    with_prof, without = prof.rate(start, end), bare.rate(start, end)
    prof.proc.wait(30)
    bare.proc.kill()
    named = any("parse" in open(os.path.join(tmp, f)).read() for f in os.listdir(tmp))
    print(f"  {'node --cpu-prof (process started with it)':<46} {with_prof:7.2f}/s vs {without:7.2f}/s "
          f"= {100 * (with_prof / without - 1):+5.1f}%  JS named: {'yes' if named else 'no'} "
          "(two processes side by side)")
    shutil.rmtree(tmp, ignore_errors=True)
    print()
