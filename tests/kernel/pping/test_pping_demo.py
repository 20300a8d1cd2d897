"""`xnf demo pping`: output while the queue fills, and nothing left behind, also on SIGTERM."""
import re
import signal
import subprocess
import sys
import time

import pytest

pytestmark = [pytest.mark.root, pytest.mark.slow]

XNF = [sys.executable, "-m", "xnf.cli.main"]


def leftovers():
    """Demo namespaces still there (pping's programs go with their namespace's devices
    and the demo's process; other tests may load pping meanwhile, so no global check)."""
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line for line in ns.splitlines() if "xnfdemo" in line]


def test_demo_runs_and_cleans_up():
    r = subprocess.run(XNF + ["demo", "pping", "--duration", "5", "--interval", "0.5"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    rows = [line for line in r.stdout.splitlines() if re.match(r"\s*\d+\.\ds ", line)]
    assert len(rows) >= 6
    # the queue builds up: pping's TCP RTT grows past 20 ms while the bulk flow runs
    tcp = [float(line.split()[3]) for line in rows if line.split()[3] != "-"]
    assert max(tcp) > 20
    time.sleep(0.5)
    assert leftovers() == []


def test_demo_sigterm_removes_everything():
    p = subprocess.Popen(XNF + ["demo", "pping", "--duration", "30"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    time.sleep(5)
    p.send_signal(signal.SIGTERM)
    p.communicate(timeout=30)
    assert p.returncode == 0
    time.sleep(0.5)
    assert leftovers() == []
