#!/usr/bin/env python3
"""pping end to end: CPU per RTT report of the real ``xnf run pping`` process (issue 14).

Client, middlebox and server namespaces (xnf.testing.topology.ClientMiddleboxServer); iperf3
bulk TCP (``--streams`` flows) from client to server; pping on the middlebox's
server-side interface. Each round runs, one after the other under the same traffic:

* ``xnf run pping mid1 --netns MID --rate-limit 0 --format F --write FILE`` for F in
  jsonl and standard: the command a user runs, as a process of its own;
* the baseline: an *empty consumer* (a process that attaches the same object with the
  same options and reads the same ring buffer with ``RingBuffer.poll``, discarding the
  records), i.e. what reading the ring costs before any decoding or output.

CPU is the process's ``utime + stime`` (``/proc/PID/stat``) from just before the traffic
starts to just after it ends, so start-up and attach are left out and everything the
process does while reports flow (wake-ups, reading, decoding, formatting, writing,
stats, the clean-up) is in. Reports are the RTT lines in the output file (for the empty
consumer: the RTT records it read). "µs per report" is CPU / reports; the ratio is
against the empty consumer of the same round. Dropped events are the data path's count
(stats line on exit / the counters map): any drop fails the benchmark.

Idle: ``xnf run pping mid1`` with default options and no traffic for ``--idle-seconds``;
CPU % of one core, utime+stime and the exact ``/proc/PID/schedstat`` run time (ticks
under-count short wake-ups): the larger of the two is held to the target.

Targets: ≤ 10 µs CPU per report for each format, idle ≤ 0.2 % of a core, no drops;
exit status 1 if one is missed.

Usage: python3 bench/pping_e2e.py [--rounds N] [--seconds S] [--streams P] [--idle-seconds S]  (root)
"""
import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from xnf.core.attach import query  # noqa: E402
from xnf.testing import traffic  # noqa: E402
from xnf.testing.topology import ClientMiddleboxServer  # noqa: E402

TARGET_US_PER_REPORT = 10.0
TARGET_IDLE_PERCENT = 0.2
TICK = os.sysconf("SC_CLK_TCK")
FORMATS = ("jsonl", "standard")

# The baseline: the same data path and ring, read and thrown away.
EMPTY_CONSUMER = r"""
import signal, sys, threading
from xnf.plugins.pping.config import PpingConfig
from xnf.plugins.pping.datapath import Datapath
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
n = 0
def drop(_raw):
    global n
    n += 1
with Datapath("mid1", PpingConfig(rate_limit=0), netns=sys.argv[1]).attach() as dp:
    rb = dp.ring_buffer(drop)
    print("ready", flush=True)
    while not stop.is_set():
        rb.poll(100)
    rb.consume()
    rb.close()
    print(n, dp.stats().dropped_events, flush=True)
"""


def cpu_seconds(pid):
    """utime + stime of a process, in seconds (clock ticks)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def run_ns(pid):
    """Time on CPU of a process's main thread, exact (schedstat), in seconds."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0]) / 1e9


def xnf_cmd(*args):
    return [sys.executable, "-m", "xnf.cli.main", *args]


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise RuntimeError(f"timed out waiting for {what}")


def iperf(topo, seconds, streams):
    return traffic.iperf3_rate(topo.cli, topo.srv, topo.srv_ip, seconds, streams)


def measure(proc, topo, seconds, streams):
    """CPU (stat, schedstat) of ``proc`` while traffic runs, and the traffic's rate."""
    time.sleep(0.3)  # past the first poll
    c0, r0 = cpu_seconds(proc.pid), run_ns(proc.pid)
    bps = iperf(topo, seconds, streams)
    time.sleep(0.3)  # the last records read
    return cpu_seconds(proc.pid) - c0, run_ns(proc.pid) - r0, bps


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    if proc.returncode not in (0, -signal.SIGTERM):
        raise RuntimeError(f"{proc.args[:6]} exited {proc.returncode}: {err.strip()[-500:]}")
    return out, err


def run_xnf(topo, fmt, seconds, streams, tmp, tree=None):
    path = os.path.join(tmp, f"out.{fmt}")
    env = dict(os.environ, PYTHONPATH=tree) if tree else None
    if os.path.exists(path):
        os.unlink(path)
    proc = subprocess.Popen(xnf_cmd("run", "pping", "mid1", "--netns", topo.mid, "--rate-limit", "0",
                                    "--format", fmt, "--write", path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=tree or ROOT)  # python -m puts the working directory first on sys.path
    try:
        wait_for(lambda: os.path.exists(path) or proc.poll() is not None, 20, "xnf run pping")
        cpu, exact, bps = measure(proc, topo, seconds, streams)
    finally:
        _, err = stop(proc)
    m = re.search(r"(\d+) events dropped", err)
    if m is None:
        raise RuntimeError(f"no stats line from xnf run pping: {err.strip()[-500:]}")
    with open(path) as f:
        if fmt == "jsonl":
            reports = sum(1 for line in f if '"rtt":' in line)
        else:
            reports = sum(1 for line in f if " ms " in line)
    return {"cpu": cpu, "exact": exact, "reports": reports, "dropped": int(m.group(1)), "bps": bps}


def run_empty(topo, seconds, streams):
    proc = subprocess.Popen([sys.executable, "-c", EMPTY_CONSUMER, topo.mid], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"empty consumer failed: {proc.stderr.read()[-500:]}")
        cpu, exact, bps = measure(proc, topo, seconds, streams)
    finally:
        out, _ = stop(proc)
    reports, dropped = map(int, out.split())
    return {"cpu": cpu, "exact": exact, "reports": reports, "dropped": dropped, "bps": bps}


def attached(topo):
    return any(hp.prog_name.startswith("pping_") for hp in query("mid1", topo.mid))


def idle(topo, seconds):
    proc = subprocess.Popen(xnf_cmd("run", "pping", "mid1", "--netns", topo.mid),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # attached (its programs on mid1), then a second for the loop to settle: start-up
        # (imports, load, attach) takes seconds on a loaded machine and is not idle cost
        wait_for(lambda: attached(topo) or proc.poll() is not None, 30, "xnf run pping to attach")
        time.sleep(1)
        if proc.poll() is not None:
            raise RuntimeError(f"xnf run pping exited: {proc.stderr.read()[-500:]}")
        c0, r0, t0 = cpu_seconds(proc.pid), run_ns(proc.pid), time.monotonic()
        time.sleep(seconds)
        c1, r1, t1 = cpu_seconds(proc.pid), run_ns(proc.pid), time.monotonic()
    finally:
        stop(proc)
    return 100 * (c1 - c0) / (t1 - t0), 100 * (r1 - r0) / (t1 - t0)


def report_rounds(results, names, args):
    """RESULT lines of the traffic rounds; whether the per-report target was met."""
    ok = True
    base = statistics.median(r["us"] for r in results["empty"])
    rate = statistics.median(r["reports"] for r in results["empty"]) / args.seconds
    print(f"RESULT pping e2e empty consumer (baseline): {base:.2f} µs CPU per report (median of "
          f"{args.rounds} rounds, {rate:,.0f} reports/s)")
    for name in names[len(FORMATS) + 1:]:
        us = statistics.median(r["us"] for r in results[name])
        rate = statistics.median(r["reports"] for r in results[name]) / args.seconds
        print(f"RESULT pping e2e {name} ({args.before_tree}): {us:.2f} µs CPU per report at {rate:,.0f} reports/s "
              f"({us / base:.2f}x the empty consumer)")
    for fmt in FORMATS:
        us = statistics.median(r["us"] for r in results[fmt])
        rate = statistics.median(r["reports"] for r in results[fmt]) / args.seconds
        cpu = statistics.median(100 * r["cpu"] / args.seconds for r in results[fmt])
        met = us <= TARGET_US_PER_REPORT
        ok &= met
        print(f"RESULT pping e2e {fmt}: {us:.2f} µs CPU per report at {rate:,.0f} reports/s, CPU {cpu:.2f} % "
              f"({us / base:.2f}x the empty consumer); target {TARGET_US_PER_REPORT:g} µs: "
              f"{'met' if met else 'MISSED'}")
    return ok


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--streams", type=int, default=4)
    ap.add_argument("--idle-seconds", type=float, default=20)
    ap.add_argument("--before-tree", metavar="DIR",
                    help="also run xnf from this checkout (e.g. a `git worktree` of an older commit) "
                         "as the contenders before-jsonl and before-standard")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("pping_e2e needs root (network namespaces, BPF)", file=sys.stderr)
        return 2
    names = ["empty", *FORMATS] + ([f"before-{f}" for f in FORMATS] if args.before_tree else [])
    results = {name: [] for name in names}
    with ClientMiddleboxServer(net=77) as topo:
        iperf(topo, 1, args.streams)  # warm-up
        with tempfile.TemporaryDirectory() as tmp:
            for rnd in range(args.rounds):
                order = list(names)
                if rnd % 2:
                    order.reverse()
                for name in order:
                    if name == "empty":
                        r = run_empty(topo, args.seconds, args.streams)
                    elif name.startswith("before-"):
                        r = run_xnf(topo, name[7:], args.seconds, args.streams, tmp, args.before_tree)
                    else:
                        r = run_xnf(topo, name, args.seconds, args.streams, tmp)
                    r["us"] = 1e6 * r["cpu"] / max(r["reports"], 1)
                    r["us_exact"] = 1e6 * r["exact"] / max(r["reports"], 1)
                    results[name].append(r)
                    print(f"round {rnd + 1} {name:15s}: {r['reports'] / args.seconds:8,.0f} reports/s, "
                          f"CPU {100 * r['cpu'] / args.seconds:5.2f} %, {r['us']:6.2f} µs/report "
                          f"(schedstat {r['us_exact']:6.2f}), dropped {r['dropped']}, "
                          f"traffic {r['bps'] / 1e9:.2f} Gbit/s", flush=True)
        idle_pct, idle_exact = idle(topo, args.idle_seconds)

    ok = True
    dropped = sum(r["dropped"] for rs in results.values() for r in rs)
    if args.rounds:
        ok &= report_rounds(results, names, args)
    met = max(idle_pct, idle_exact) <= TARGET_IDLE_PERCENT  # ticks under-count short wake-ups
    ok &= met
    print(f"RESULT pping e2e idle (default options, no traffic, {args.idle_seconds:g} s): {idle_pct:.3f} % of a "
          f"core (schedstat {idle_exact:.3f} %); target {TARGET_IDLE_PERCENT:g} %: {'met' if met else 'MISSED'}")
    print(f"RESULT pping e2e dropped events: {dropped} (target 0: {'met' if not dropped else 'MISSED'})")
    ok &= not dropped
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
