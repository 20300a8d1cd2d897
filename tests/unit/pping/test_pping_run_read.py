"""`xnf run pping IFACE --read FILE` runs offline through the reference and attaches
nothing; `xnf attach` refuses options that only make sense offline."""

import json
import subprocess
import sys

from xnf.plugins.pping.pcap import write_pcap
from pping_packets import Endpoints

T0 = 1_700_000_000_000_000_000
MS = 1_000_000
E = Endpoints()


def capture(path, n=5):
    frames = []
    for i in range(n):
        t = T0 + i * 200 * MS
        frames.append((t, E.c2s(ts=(100 + i, 1), payload=b"a" * 10)))
        frames.append((t + 5 * MS, E.s2c(ts=(7, 100 + i))))
    write_pcap(path, frames)
    return str(path)


def xnf(*argv):
    return subprocess.run([sys.executable, "-m", "xnf.cli.main", *argv], capture_output=True, text=True)


def test_run_with_read_streams_the_capture_and_needs_no_interface_or_root(tmp_path):
    path = capture(tmp_path / "c.pcap")
    res = xnf("run", "pping", "no-such-if0", "--read", path, "--format", "jsonl", "--rate-limit", "0")
    assert res.returncode == 0, res.stderr
    events = [json.loads(line) for line in res.stdout.splitlines()]
    rtts = [e["rtt"] for e in events if "rtt" in e]
    # the flow is seen mid-stream: its first TSval is not timestamped (ePPing's rule)
    assert len(rtts) == 4 and all(r == 5 * MS for r in rtts)


def test_attach_with_read_is_refused_in_one_line(tmp_path):
    path = capture(tmp_path / "c.pcap")
    res = xnf("attach", "pping", "lo", "--read", path)
    assert res.returncode == 1 and res.stdout == ""
    assert res.stderr.count("\n") == 1 and "xnf run pping" in res.stderr, res.stderr
