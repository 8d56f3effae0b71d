#!/usr/bin/env python3
"""make bench: nptools beside the tools people use today, in one run.

Starts the demo Node.js server, a node server holding 4,000 TCP connections
(bench/conns.js), takes a kernel core of a second demo server, and
times each command over repeated runs (median wall time, and peak RSS from
wait4), printing every other tool as a ratio to nptools. The naming of
JavaScript frames is measured on the system node and on each release line
`make nodes` fetches (target/node/MAJOR). Nothing here is asserted:
benchmarks report, tests check.
"""
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sample import sample_bench  # noqa: E402

BIN = os.environ.get("NPTOOLS_BIN_DIR") or os.path.join(os.path.dirname(__file__), "..", "target", "release")
HERE = os.path.dirname(os.path.abspath(__file__))
RUNS = int(os.environ.get("BENCH_RUNS", "20"))


def start(argv, env, started, cwd=None, allow_core=False):
    """Start argv with exactly `env`, add it to `started` (the processes to
    kill at the end) and wait for its first line, which must say ready."""
    def pre():
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, cwd=cwd, env=env,
                         preexec_fn=pre if allow_core else None)
    started.append(p)
    line = p.stdout.readline().decode()
    assert line.startswith("ready"), line
    return p


def start_server(started, cwd=None, allow_core=False):
    return start(["node", os.path.join(HERE, "..", "demo", "server.js")],
                 {"PATH": "/usr/bin:/bin", "NODE_ENV": "production"}, started,
                 cwd=cwd, allow_core=allow_core)


PEAKRSS = None


def build_peakrss(work):
    global PEAKRSS
    PEAKRSS = os.path.join(work, "peakrss")
    subprocess.run(["cc", "-O2", "-static", "-o", PEAKRSS,
                    os.path.join(HERE, "..", "tests", "fixtures", "peakrss.c")], check=True)


def peak_kib(stderr):
    """The peak RSS that peakrss wrote as its last line on stderr."""
    last = stderr.decode(errors="replace").rstrip().rsplit("\n", 1)[-1]
    if not (last.startswith("peakrss: ") and last.endswith(" KiB")):
        raise SystemExit(f"bench: no peak from peakrss: {last!r}")
    return int(last[len("peakrss: "):-len(" KiB")])


def start_many_mappings(work, started, count=20000):
    """The npmap test fixture with COUNT extra one-page mappings."""
    exe = os.path.join(work, "npmap-fixture")
    if not os.path.exists(exe):
        subprocess.run(["cc", "-O2", "-pthread", "-o", exe,
                        os.path.join(HERE, "..", "tests", "fixtures", "npmap.c")], check=True)
    return start([exe], {"NPT_MAPS": str(count)}, started)


MAX_MAP_COUNT = "/proc/sys/vm/max_map_count"


def raise_max_map_count(n):
    """Raise vm.max_map_count (65530 by default) to at least n; returns the
    value to put back, or None when it was high enough."""
    with open(MAX_MAP_COUNT) as f:
        old = f.read().strip()
    if int(old) >= n:
        return None
    try:
        with open(MAX_MAP_COUNT, "w") as f:
            f.write(str(n))
    except OSError as e:
        raise SystemExit(f"bench: vm.max_map_count is {old}, below {n}, and cannot be raised ({e}): run as root")
    return old


MEASURED = {}


def measure(argv):
    """Median wall time (ms) and peak RSS (MiB) of argv over RUNS runs (fewer
    for a slow tool: it stops after 10 s, with at least 3 runs). A command
    measured before is not run again."""
    key = tuple(argv)
    if key not in MEASURED:
        MEASURED[key] = measure_runs(argv)
    return MEASURED[key]


def measure_runs(argv):
    times, rss = [], []
    started = time.perf_counter()
    for i in range(RUNS):
        if i >= 3 and time.perf_counter() - started > 10:
            break
        t0 = time.perf_counter()
        done = subprocess.run([PEAKRSS] + argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        times.append((time.perf_counter() - t0) * 1000)
        status, kib = done.returncode, peak_kib(done.stderr)
        rss.append(kib / 1024)
        if status != 0:
            raise SystemExit(f"bench: {' '.join(argv)} failed with status {status}")
    return statistics.median(times), max(rss)


def row(label, ours, theirs):
    (ot, om), (tt, tm) = ours, theirs
    print(f"  {label:<44} {tt:9.1f} ms {tm:7.1f} MiB   x{tt / ot:7.1f} time  x{tm / om:6.1f} memory")


def start_busy_server(conns, started):
    """A node server holding `conns` accepted TCP connections (bench/conns.js)."""
    return start(["node", os.path.join(HERE, "conns.js"), str(conns)], {"PATH": "/usr/bin:/bin"}, started)


def stacks_fixture(work):
    """The npstack test fixture (tests/fixtures/stacks.c), built once."""
    fixture = os.path.join(work, "stacks")
    if not os.path.exists(fixture):
        subprocess.run(["cc", "-O2", "-pthread", "-o", fixture,
                        os.path.join(HERE, "..", "tests", "fixtures", "stacks.c")], check=True)
    return fixture


def npstack_cases(pid, work, started):
    """npstack beside eu-stack and gdb, live and on a gcore core, and on a
    process with 1,000 threads (appended to `started` to be stopped)."""
    pid = str(pid)
    gcore = os.path.join(work, "gcore")
    subprocess.run(["gcore", "-o", gcore, pid], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    gcore = f"{gcore}.{pid}"
    crowd = start([stacks_fixture(work)], {"NPT_THREADS": "1000"}, started)
    cpid = str(crowd.pid)
    # The same core as systemd-coredump keeps it: zstd-compressed.
    packed = f"{gcore}.zst"
    subprocess.run(["zstd", "-q", "-T2", gcore, "-o", packed], check=True)
    unpacked = os.path.join(work, "unpacked.core")
    return [
        ("stacks of a process with 1,000 threads",
         [f"{BIN}/npstack", cpid],
         [("eu-stack -p PID", ["eu-stack", "-p", cpid])]),
        ("stacks of a live node server (all threads)",
         [f"{BIN}/npstack", pid],
         [("eu-stack -p PID", ["eu-stack", "-p", pid]),
          ("gdb -p PID: thread apply all bt",
           ["gdb", "-batch", "-nx", "-p", pid, "-ex", "thread apply all bt"])]),
        ("stacks of a gcore core of it",
         [f"{BIN}/npstack", gcore],
         [("eu-stack --core CORE", ["eu-stack", "-e", "/usr/bin/node", "--core", gcore])]),
        ("stacks of that core zstd-compressed (core.zst)",
         [f"{BIN}/npstack", packed],
         [("zstd -d core.zst, then npstack core",
           ["sh", "-c", f"zstd -q -d -f {packed} -o {unpacked} && {BIN}/npstack {unpacked}"])]),
    ]


def start_js_busy(started, node="node"):
    """`node` busy in JavaScript 120 frames deep (bench/jsbusy.js)."""
    return start([node, os.path.join(HERE, "jsbusy.js")], {"PATH": "/usr/bin:/bin"}, started)


def fetched_nodes():
    """(major, path) of each release line the V8 frame tests run on
    (NODE_MAJORS in tests/src/lib.rs), where `make nodes` puts it."""
    with open(os.path.join(HERE, "..", "tests", "src", "lib.rs")) as f:
        majors = re.search(r"NODE_MAJORS: &\[u32\] = &\[([0-9, ]+)\]", f.read()).group(1)
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(HERE, "..", "target")
    return [(int(m), os.path.join(target, "node", m.strip(), "bin", "node")) for m in majors.split(",")]


def held_us(argv):
    """How long npstack (argv, without --json) held the main thread, and
    its JavaScript frames: (held_us, JavaScript frames, of them named from
    the heap), inlined ones counted."""
    out = subprocess.run(argv[:1] + ["--json"] + argv[1:], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, check=True).stdout
    thread = json.loads(out)["threads"][0]
    named = [f["js"] for f in thread["frames"] if f["kind"] == "js"]
    named = len(named) + sum(len(j["inlined"]) for j in named)
    unnamed = sum(1 for f in thread["frames"] if f.get("v8_frame") == "unknown JS frame")
    return thread["held_us"], named + unnamed, named


def js_naming_by_release(started):
    """npstack naming JavaScript frames beside npstack --no-heap-names on
    a node main thread 120 JS frames deep, on the system node and each
    fetched release line: the time of a run (median) and the ratio (the
    goal: within x1.2), and the main thread's hold (--json held_us, median
    of 20) with what naming adds to it per JavaScript frame."""
    print("naming JavaScript frames by node release line: a main thread 120 JS frames deep (bench/jsbusy.js); "
          "npstack PID/1\nbeside npstack --no-heap-names PID/1 (goal: within x1.2), and how long it holds the thread "
          "(--json held_us, median of 20)")
    print(f"  {'node':<18} {'V8':<13} {'JS named':>9} {'npstack':>10} {'no names':>10} {'ratio':>6}"
          f" {'held':>9} {'held bare':>10} {'per JS frame':>13}")
    nodes = [("system", shutil.which("node"))] + [(str(m), path) for m, path in fetched_nodes()]
    for which, node in nodes:
        if not node or not os.access(node, os.X_OK):
            print(f"  node {which:<13} (not there: make nodes fetches it)")
            continue
        version, v8 = subprocess.run([node, "-p", "process.version + ' ' + process.versions.v8"],
                                     stdout=subprocess.PIPE, check=True).stdout.decode().split()
        p = start_js_busy(started, node)
        main = f"{p.pid}/1"
        named_argv = [f"{BIN}/npstack", main]
        bare_argv = [f"{BIN}/npstack", "--no-heap-names", main]
        named_ms = measure_runs(named_argv)[0]
        bare_ms = measure_runs(bare_argv)[0]
        named = [held_us(named_argv) for _ in range(20)]
        bare = [held_us(bare_argv)[0] for _ in range(20)]
        p.kill()
        held, held_bare = statistics.median(h for h, _, _ in named), statistics.median(bare)
        _, frames, names = named[-1]
        label = f"{version} ({which})" if which == "system" else version
        print(f"  {label:<18} {v8.split('-')[0]:<13} {names:>4}/{frames:<4} {named_ms:7.1f} ms {bare_ms:7.1f} ms "
              f"x{named_ms / bare_ms:5.2f} {held:6.0f} us {held_bare:7.0f} us {(held - held_bare) / max(frames, 1):10.1f} us")
    print()


def js_naming_case(pid):
    """npstack naming JavaScript frames from the V8 heap, beside itself
    without (--no-heap-names) and eu-stack, on the busy main thread."""
    main = f"{pid}/1"
    return ("JavaScript frames named from the V8 heap: node main thread 120 JS frames deep",
            [f"{BIN}/npstack", main],
            [("npstack --no-heap-names PID/1 (no JS names)", [f"{BIN}/npstack", "--no-heap-names", main]),
             ("eu-stack -p PID (JS frames as addresses)", ["eu-stack", "-p", str(pid)])])


def js_stall_bench(started):
    """How long npstack holds a node main thread that runs JavaScript 120
    frames deep, with and without naming its frames from the heap: the hold
    npstack measures itself (--json held_us, from PTRACE_SEIZE to
    PTRACE_DETACH), and the gap the thread sees (the longest between two
    clock reads in the 100 ms windows around the run, which adds the wait
    for a CPU after it is let go: scheduling noise on a small machine)."""
    p = start_js_busy(started)
    pid = str(p.pid)

    def windows(n):
        return [int(p.stdout.readline().split()[1]) / 1000.0 for _ in range(n)]

    tools = [
        ("no tool (the loop's own noise)", None),
        ("npstack --no-heap-names PID/1", [f"{BIN}/npstack", "--no-heap-names", f"{pid}/1"]),
        ("npstack PID/1 (JS frames named)", [f"{BIN}/npstack", f"{pid}/1"]),
        ("eu-stack -p PID", ["eu-stack", "-p", pid]),
    ]
    print("stall of a node main thread running JavaScript 120 frames deep, 20 runs: how long npstack holds it "
          "(its own\nmeasure, --json held_us) and the longest gap the thread sees in the 100 ms around the run")
    holds_of = {}
    frames = 0
    for label, argv in tools:
        if argv and not shutil.which(argv[0]):
            print(f"  {label:<44} (not installed)")
            continue
        gaps, holds = [], []
        for _ in range(20):
            windows(1)  # start at a window's edge
            if argv and argv[0].endswith("npstack"):
                held, js_frames, _ = held_us(argv)
                holds.append(held)
                frames = max(frames, js_frames)
            elif argv:
                subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            gaps.append(max(windows(2)))
        holds_of[label] = holds
        hold = (f"held median {statistics.median(holds):7.0f} us worst {max(holds):7.0f} us"
                if holds else f"{'':39}")
        print(f"  {label:<44} {hold}   gap median {statistics.median(gaps):7.0f} us worst {max(gaps):7.0f} us")
    named, bare = holds_of.get("npstack PID/1 (JS frames named)"), holds_of.get("npstack --no-heap-names PID/1")
    if named and bare:
        extra = statistics.median(named) - statistics.median(bare)
        print(f"  naming the JS frames adds {extra:.0f} us to the hold: {extra / max(frames, 1):.1f} us per frame "
              f"({frames} JavaScript frames)")
    print()


def v8heap_bench(work, started):
    """npmap on node 24 holding a 1 GB JavaScript heap (tests/fixtures/
    v8heap.js), live and on its kernel core, with V8's pages looked for and
    without (--no-v8): what the V8 step costs."""
    node = dict(fetched_nodes()).get(24)
    if not node or not os.path.exists(node):
        print("npmap and V8's heap: node 24 not fetched (make nodes)\n")
        return
    d = tempfile.mkdtemp(dir=work)
    p = start([node, "--expose-gc", "--max-old-space-size=4096",
               os.path.join(HERE, "..", "tests", "fixtures", "v8heap.js"), "1000", "0", "0"],
              {"PATH": "/usr/bin:/bin"}, started, cwd=d, allow_core=True)
    pid = str(p.pid)
    print("npmap on node 24 with a 1 GB JavaScript heap")
    rows = [("live", pid)]
    live = [measure([f"{BIN}/npmap", *flags, pid]) for flags in ([], ["--no-v8"], ["-x"], ["-x", "--no-v8"])]
    p.send_signal(signal.SIGABRT)
    p.wait()
    core = os.path.join(d, "core")
    if os.path.exists(core):
        rows.append(("kernel core", core))
    for (what, operand), i in zip(rows, range(len(rows))):
        for flags in ([], ["-x"]):
            with_v8 = live[2 * bool(flags)] if i == 0 else measure([f"{BIN}/npmap", *flags, operand])
            without = live[2 * bool(flags) + 1] if i == 0 else measure([f"{BIN}/npmap", *flags, "--no-v8", operand])
            shown = " ".join(["npmap", *flags, what])
            print(f"  {shown:<30} {with_v8[0]:9.1f} ms, --no-v8 {without[0]:9.1f} ms: "
                  f"the V8 step x{with_v8[0] / without[0]:5.2f} time")
    if os.path.exists(core):
        os.unlink(core)
    print()


def stall_bench(work):
    """How long each tool stops a thread that spins reading CLOCK_MONOTONIC:
    the fixture records its longest gap between two reads while the tool
    runs (reset and reported on SIGUSR1)."""
    started = []
    try:
        p = start([stacks_fixture(work)], {"NPT_SPIN": "1", "NPT_THREADS": "8"}, started)
        pid = str(p.pid)

        def gap():
            p.send_signal(signal.SIGUSR1)
            line = p.stdout.readline().split()
            return int(line[1]) / 1000.0

        tools = [
            ("no tool (the spinning thread's own noise)", None),
            ("npstack PID", [f"{BIN}/npstack", pid]),
            ("npstack --snapshot PID", [f"{BIN}/npstack", "--snapshot", pid]),
            ("eu-stack -p PID", ["eu-stack", "-p", pid]),
            ("gdb -p PID: thread apply all bt", ["gdb", "-batch", "-nx", "-p", pid, "-ex", "thread apply all bt"]),
        ]
        argv_of = dict(tools)
        print("stall of a spinning thread while the tool runs (longest gap between two clock reads, 40 runs; gdb 5)")
        results = {}
        for label, argv in tools:
            if argv and not shutil.which(argv[0]):
                print(f"  {label:<44} (not installed)")
                continue
            gaps = []
            runs = 40 if argv is None or "gdb" not in argv[0] else 5
            for _ in range(runs):
                gap()
                if argv:
                    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                else:
                    time.sleep(0.02)
                gaps.append(gap())
            results[label] = (statistics.median(gaps), max(gaps))
        ours = results.get("npstack PID")
        for label, (med, worst) in results.items():
            compared = ours and argv_of.get(label) and label != "npstack PID"
            ratio = f"   x{med / ours[0]:7.1f} median" if compared else ""
            print(f"  {label:<44} median {med:9.1f} us  worst {worst:9.1f} us{ratio}")
    finally:
        for q in started:
            q.kill()
    print()


def libuv_bench(work, started, busy):
    """npfiles on a kernel core of the 4,000-connection server (the
    descriptors libuv held) beside npfiles live, and what reading libuv's
    handles costs live (npfiles beside npfiles --no-libuv)."""
    cwd = os.path.join(work, "conns-core")
    os.mkdir(cwd)
    victim = start(["node", os.path.join(HERE, "conns.js"), "4000"], {"PATH": "/usr/bin:/bin"},
                   started, cwd=cwd, allow_core=True)
    victim.send_signal(signal.SIGABRT)
    victim.wait()
    core = os.path.join(cwd, "core")
    if not os.path.exists(core):
        raise SystemExit("bench: no kernel core of the conns server (set kernel.core_pattern=core)")
    live = measure([f"{BIN}/npfiles", str(busy.pid)])
    without = measure([f"{BIN}/npfiles", "--no-libuv", str(busy.pid)])
    on_core = measure([f"{BIN}/npfiles", core])
    print("libuv's handles in npfiles, 4,000 TCP connections")
    print(f"  {'nptools: npfiles PID':<44} {live[0]:9.1f} ms {live[1]:7.1f} MiB")
    print(f"  {'npfiles --no-libuv PID':<44} {without[0]:9.1f} ms {without[1]:7.1f} MiB"
          f"   libuv step x{live[0] / without[0]:5.2f} time of npfiles without it")
    print(f"  {'npfiles CORE (kernel core, libuv only)':<44} {on_core[0]:9.1f} ms {on_core[1]:7.1f} MiB"
          f"   x{on_core[0] / live[0]:5.2f} time of npfiles live")
    os.remove(core)
    print()


def npgcore_bench(work, started):
    """npgcore beside gdb's gcore, in one run, on the demo server and on a
    node with a large JavaScript heap (BENCH_HEAP_MB, default 2048): wall
    time, the longest gap a spinning worker_thread of the target sees
    (bench/spinworker.js: the time the process was held), core size and
    allocated blocks, and peak RSS; the kernel's core of the same process
    for size. Ratios are npgcore / gcore (the issue's goal: at most 0.1)."""
    spin = os.path.join(HERE, "spinworker.js")
    heap_mb = int(os.environ.get("BENCH_HEAP_MB", "2048"))
    fill = ("const keep = []; const target = %d * 1048576;"
            "while (process.memoryUsage().heapUsed < target)"
            " for (let i = 0; i < 10000; i++) keep.push({ i, a: new Array(120).fill(i) });"
            "console.log('ready ' + process.pid); setInterval(() => {}, 1 << 30);" % heap_mb)
    targets = [
        ("demo server (idle node 20)",
         ["node", "-r", spin, os.path.join(HERE, "..", "demo", "server.js")], 5, 3),
        (f"node with a {heap_mb} MiB JavaScript heap",
         ["node", f"--max-old-space-size={heap_mb * 2}", "-r", spin, "-e", fill], 3, 1),
    ]
    print("npgcore beside gdb's gcore: wall time, longest stall of a spinning worker_thread, core size "
          "(allocated), peak RSS; ratios npgcore / gcore")
    for n, (title, argv, our_runs, their_runs) in enumerate(targets):
        t0 = time.perf_counter()
        # A directory of its own, where the kernel writes its core.
        cwd = os.path.join(work, f"npgcore-target-{n}")
        os.makedirs(cwd, exist_ok=True)
        p = start(argv, {"PATH": "/usr/bin:/bin", "NODE_ENV": "production"}, started, cwd=cwd,
                  allow_core=True)
        pid = str(p.pid)
        print(f"  {title}: pid {pid}, RSS {rss_mib(p.pid):.0f} MiB (ready in {time.perf_counter() - t0:.0f} s)")

        def gap_ms():
            p.send_signal(signal.SIGUSR2)
            while True:
                line = p.stdout.readline().decode()
                if line.startswith("gap "):
                    return int(line.split()[1]) / 1000.0

        def one(cmd, core):
            gap_ms()
            t = time.perf_counter()
            done = subprocess.run([PEAKRSS] + cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=work)
            wall = (time.perf_counter() - t) * 1000
            stall = gap_ms()
            if done.returncode != 0:
                raise SystemExit(f"bench: {' '.join(cmd)} failed: {done.stderr.decode(errors='replace')}")
            st = os.stat(core)
            held = None
            if cmd[0].endswith("npgcore"):
                held = json.loads(done.stdout.decode().splitlines()[0])["held_ms"]
            os.unlink(core)
            return wall, stall, st.st_size, st.st_blocks * 512, peak_kib(done.stderr) / 1024, held

        rows = {}
        for label, cmd, core, runs in [
            ("npgcore --json PID", [f"{BIN}/npgcore", "--json", "-o", os.path.join(work, "np"), pid],
             os.path.join(work, f"np.{pid}"), our_runs),
            ("gcore -o PREFIX PID", ["gcore", "-o", os.path.join(work, "gc"), pid],
             os.path.join(work, f"gc.{pid}"), their_runs),
        ]:
            if not shutil.which(cmd[0]):
                print(f"    {label:<24} (not installed)")
                continue
            results = [one(cmd, core) for _ in range(runs)]
            med = lambda i: statistics.median(r[i] for r in results)
            rows[label] = (med(0), med(1), max(r[1] for r in results), med(2), med(3),
                           max(r[4] for r in results), results[0][5] is not None and med(5))
        for label, (wall, stall, worst, size, alloc, rss, held) in rows.items():
            held_s = f" held {held:7.1f} ms" if held else " " * 16
            print(f"    {label:<24} wall {wall:9.1f} ms  stall {stall:9.1f} ms (worst {worst:9.1f}){held_s}  "
                  f"core {size / 2**20:8.0f} MiB ({alloc / 2**20:6.0f} MiB allocated)  peak RSS {rss:7.1f} MiB")
        ours, theirs = rows.get("npgcore --json PID"), rows.get("gcore -o PREFIX PID")
        if ours and theirs:
            print(f"    {'npgcore / gcore':<24} wall x{ours[0] / theirs[0]:.4f}  stall x{ours[1] / theirs[1]:.4f}  "
                  f"core size x{ours[3] / theirs[3]:.3f}  allocated x{ours[4] / theirs[4]:.3f}  "
                  f"peak RSS x{ours[5] / theirs[5]:.3f}")
        # The kernel's core of the same process, beside an npgcore core
        # taken just before it (both after gcore read all of its memory).
        last = one([f"{BIN}/npgcore", "--json", "-o", os.path.join(work, "np"), pid],
                   os.path.join(work, f"np.{pid}")) if ours else None
        p.send_signal(signal.SIGABRT)
        p.wait()
        kernel = [f for f in os.listdir(cwd) if f.startswith("core")]
        if not kernel:
            print(f"    kernel core (SIGABRT): none was written in {cwd} (see kernel.core_pattern)")
        if kernel and last:
            st = os.stat(os.path.join(cwd, kernel[0]))
            print(f"    {'kernel core (SIGABRT)':<24} core {st.st_size / 2**20:8.0f} MiB "
                  f"({st.st_blocks * 512 / 2**20:6.0f} MiB allocated); npgcore's just before: "
                  f"{last[2] / 2**20:.0f} MiB ({last[3] / 2**20:.0f} MiB allocated), x{last[2] / st.st_size:.3f} "
                  f"its size")
            os.unlink(os.path.join(cwd, kernel[0]))
    print()


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main():
    if not shutil.which("node"):
        raise SystemExit("bench: node is not installed")
    started = []
    restore_map_count = None
    work = tempfile.mkdtemp(prefix="nptools-bench.")
    try:
        live = start_server(started)
        busy = start_busy_server(4000, started)
        build_peakrss(work)
        victim = start_server(started, cwd=work, allow_core=True)
        victim.send_signal(signal.SIGABRT)
        victim.wait()
        cores = [f for f in os.listdir(work) if f.startswith("core")]
        if not cores:
            raise SystemExit("bench: no kernel core written (set kernel.core_pattern=core)")
        core = os.path.join(work, cores[0])
        pid = str(live.pid)
        many = start_many_mappings(work, started)
        mpid = str(many.pid)
        restore_map_count = raise_max_map_count(110000)
        huge = start_many_mappings(work, started, 100000)
        hpid = str(huge.pid)
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
            ("address map, 20,000 mappings",
             [f"{BIN}/npmap", mpid],
             [("pmap PID", ["pmap", mpid])]),
            ("address map with RSS (-x), 20,000 mappings",
             [f"{BIN}/npmap", "-x", mpid],
             [("pmap -x PID", ["pmap", "-x", mpid])]),
            ("address map as JSON (--json), 100,000 mappings",
             [f"{BIN}/npmap", "--json", hpid],
             [("pmap PID", ["pmap", hpid])]),
        ]
        cases += npstack_cases(live.pid, work, started)
        js_busy = start_js_busy(started)
        cases.append(js_naming_case(js_busy.pid))
        for title, ours_argv, others in cases:
            ours = measure(ours_argv)
            shown = " ".join(os.path.basename(a) if a.startswith("/") else a for a in ours_argv)
            print(f"{title}\n  {'nptools: ' + shown:<44} {ours[0]:9.1f} ms {ours[1]:7.1f} MiB")
            for label, argv in others:
                if not shutil.which(argv[0]):
                    print(f"  {label:<44} (not installed)")
                    continue
                row(label, ours, measure(argv))
                if "--no-heap-names" in argv:
                    print(f"  {'naming JavaScript frames costs':<44} x{ours[0] / measure(argv)[0]:7.2f} time "
                          f"of npstack without it")
            print()
        js_busy.kill()
        libuv_bench(work, started, busy)
        stall_bench(work)
        v8heap_bench(work, started)
        js_stall_bench(started)
        js_naming_by_release(started)
        sample_bench(started, BIN)
        npgcore_bench(work, started)
    finally:
        for p in started:
            p.kill()
        shutil.rmtree(work, ignore_errors=True)
        if restore_map_count is not None:
            with open(MAX_MAP_COUNT, "w") as f:
                f.write(restore_map_count)


if __name__ == "__main__":
    sys.exit(main())
