#!/usr/bin/env python3
"""make bench: nptools beside the tools people use today, in one run.

Starts the demo Node.js server, a node server holding 4,000 TCP connections
(bench/conns.js), takes a kernel core of a second demo server, and
times each command over repeated runs (median wall time, and peak RSS from
wait4), printing every other tool as a ratio to nptools. Nothing here is
asserted: benchmarks report, tests check.
"""
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

BIN = os.environ.get("NPTOOLS_BIN_DIR") or os.path.join(os.path.dirname(__file__), "..", "target", "release")
HERE = os.path.dirname(os.path.abspath(__file__))
RUNS = int(os.environ.get("BENCH_RUNS", "20"))


def start_server(cwd=None, allow_core=False):
    def pre():
        if allow_core:
            resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    p = subprocess.Popen(
        ["node", os.path.join(HERE, "..", "demo", "server.js")],
        stdout=subprocess.PIPE, cwd=cwd, preexec_fn=pre,
        env={"PATH": "/usr/bin:/bin", "NODE_ENV": "production"},
    )
    line = p.stdout.readline().decode()
    assert line.startswith("ready"), line
    return p


PEAKRSS = None


def build_peakrss(work):
    global PEAKRSS
    PEAKRSS = os.path.join(work, "peakrss")
    subprocess.run(["cc", "-O2", "-static", "-o", PEAKRSS, os.path.join(HERE, "peakrss.c")], check=True)


def measure(argv):
    """Median wall time (ms) and peak RSS (MiB) of argv over RUNS runs (fewer
    for a slow tool: it stops after 10 s, with at least 3 runs)."""
    times, rss = [], []
    started = time.perf_counter()
    for i in range(RUNS):
        if i >= 3 and time.perf_counter() - started > 10:
            break
        t0 = time.perf_counter()
        out = subprocess.run([PEAKRSS] + argv, stdout=subprocess.PIPE, check=True).stdout.split()
        times.append((time.perf_counter() - t0) * 1000)
        status, kib = int(out[0]), int(out[1])
        rss.append(kib / 1024)
        if status != 0:
            raise SystemExit(f"bench: {' '.join(argv)} failed with status {status}")
    return statistics.median(times), max(rss)


def row(label, ours, theirs):
    (ot, om), (tt, tm) = ours, theirs
    print(f"  {label:<44} {tt:9.1f} ms {tm:7.1f} MiB   x{tt / ot:7.1f} time  x{tm / om:6.1f} memory")


def start_busy_server(conns):
    """A node server holding `conns` accepted TCP connections (bench/conns.js)."""
    p = subprocess.Popen(["node", os.path.join(HERE, "conns.js"), str(conns)],
                         stdout=subprocess.PIPE, env={"PATH": "/usr/bin:/bin"})
    line = p.stdout.readline().decode()
    assert line.startswith("ready"), line
    return p


def main():
    if not shutil.which("node"):
        raise SystemExit("bench: node is not installed")
    live = start_server()
    busy = start_busy_server(4000)
    work = tempfile.mkdtemp(prefix="nptools-bench.")
    build_peakrss(work)
    victim = start_server(cwd=work, allow_core=True)
    victim.send_signal(signal.SIGABRT)
    victim.wait()
    core = os.path.join(work, "core")
    if not os.path.exists(core):
        raise SystemExit("bench: no kernel core written (set kernel.core_pattern=core)")
    pid = str(live.pid)
    try:
        print(f"nptools bench: node demo server pid {pid}, kernel core {os.path.getsize(core) >> 20} MiB; "
              f"median of {RUNS} runs; ratios are other tool / nptools (higher is better for nptools)\n")
        cases = [
            ("argv of a live process",
             [f"{BIN}/npargs", pid],
             [("ps -o args= -p PID", ["ps", "-o", "args=", "-p", pid])]),
            ("environment of a live process",
             [f"{BIN}/npenv", pid],
             [("gdb -p PID: print the environ array",
               ["gdb", "-batch", "-nx", "-p", pid, "-ex", "set print elements 0",
                "-ex", "p *__environ@3"])]),
            ("auxiliary vector of a core",
             [f"{BIN}/npargs", "-x", core],
             [("gdb -c CORE: info auxv", ["gdb", "-batch", "-nx", "-c", core, "-ex", "info auxv"]),
              ("eu-readelf --notes CORE", ["eu-readelf", "--notes", core])]),
            ("environment of a core (through environ)",
             [f"{BIN}/npenv", core],
             [("gdb node CORE: print the environ array",
               ["gdb", "-batch", "-nx", "/usr/bin/node", core, "-ex", "p *__environ@3"])]),
            ("open files of a process with 4,000 TCP connections",
             [f"{BIN}/npfiles", str(busy.pid)],
             [("lsof -p PID", ["lsof", "-p", str(busy.pid)]),
              ("ss -tanp, filtered to the PID",
               ["sh", "-c", f"ss -tanp | grep 'pid={busy.pid},'"])]),
            ("its TCP connections, one line each",
             [f"{BIN}/npfiles", "--type", "tcp", str(busy.pid)],
             [("lsof -a -i TCP -p PID", ["lsof", "-a", "-i", "TCP", "-p", str(busy.pid)]),
              ("ss -tanp, filtered to the PID",
               ["sh", "-c", f"ss -tanp | grep 'pid={busy.pid},'"])]),
        ]
        for title, ours_argv, others in cases:
            ours = measure(ours_argv)
            shown = " ".join(os.path.basename(a) for a in ours_argv)
            print(f"{title}\n  {'nptools: ' + shown:<44} {ours[0]:9.1f} ms {ours[1]:7.1f} MiB")
            for label, argv in others:
                if not shutil.which(argv[0]):
                    print(f"  {label:<44} (not installed)")
                    continue
                row(label, ours, measure(argv))
            print()
    finally:
        live.kill()
        busy.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
