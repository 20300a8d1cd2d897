"""`xnf demo pping`: output while the queue fills, and nothing left behind, also on SIGTERM."""
import re
import signal
import subprocess
import sys
import time

import pytest

pytestmark = [pytest.mark.root, pytest.mark.slow]

XNF = [sys.executable, "-m", "xnf.cli.main"]


def demo_namespaces():
    """The demo namespaces that exist now (pping's programs go with their namespace's
    devices and the demo's process)."""
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in ns.splitlines() if line.startswith("xnfdemo-")}


def leftovers(before):
    """Demo namespaces made since ``before`` and still there. Only new ones count: a demo
    run by another test process at the same time has its own (random) names, and one
    that started after ``before`` and is still running is given a moment to finish."""
    left = demo_namespaces() - before
    deadline = time.monotonic() + 10
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = demo_namespaces() - before
    return sorted(left)


ROW = re.compile(r"^\s*([\d.]+)s\s+(-|[\d.]+ ms)\s+(-|[\d.]+ ms)\s+(-|[\d.]+ ms)\s+(\d+)")


def run_demo(*options):
    """The demo's rows as (time s, ping ms, pping TCP ms, pping ICMP ms, samples); None for "-"."""
    before = demo_namespaces()
    r = subprocess.run(XNF + ["demo", "pping", "--duration", "5", "--interval", "0.5", *options],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert leftovers(before) == []

    def ms(text):
        return None if text == "-" else float(text.split()[0])

    return [(float(m[1]), ms(m[2]), ms(m[3]), ms(m[4]), int(m[5]))
            for m in map(ROW.match, r.stdout.splitlines()) if m]


def test_demo_runs_and_cleans_up():
    # a row per 0.5 s interval of the 5 s: the demo's own loop, not the traffic, decides
    assert len(run_demo()) >= 6


def test_demo_shows_the_queue_filling_at_a_rate_the_flow_must_exceed():
    """At 2 Mbit/s the bulk flow cannot help filling the TBF: its window doubles each
    round trip until the 75 KB buffer (300 ms) overflows, so by its second round
    (20 segments, 29 KB) at least 13 KB wait beyond the 16 KB burst: >= 52 ms. The flow
    is never short of data (the sender writes 64 KB chunks in a loop), and a slow machine
    only sends later, not less. Structural; 13 runs showed 102-120 ms in the first
    half second and a maximum of 297-358 ms. (At the default 20 Mbit/s how fast the queue fills
    depends on the load: test_demo_shows_the_queue_filling.)"""
    tcp = [row[2] for row in run_demo("--rate", "2mbit") if row[2] is not None]
    assert max(tcp) > 20, tcp


@pytest.mark.measurement
def test_demo_shows_the_queue_filling():
    """The queue builds up at the default 20 Mbit/s: pping's TCP RTT grows past 20 ms while
    the bulk flow runs. How fast a cubic flow fills the TBF depends on the machine's load:
    not measured below 1 in 1,000 false failures, so not in the default suite."""
    tcp = [row[2] for row in run_demo() if row[2] is not None]
    assert max(tcp) > 20, tcp


def test_demo_sigterm_removes_everything():
    before = demo_namespaces()
    p = subprocess.Popen(XNF + ["demo", "pping", "--duration", "30"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    time.sleep(5)
    p.send_signal(signal.SIGTERM)
    p.communicate(timeout=30)
    assert p.returncode == 0
    assert leftovers(before) == []
