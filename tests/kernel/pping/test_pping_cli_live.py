"""pping through the `xnf` command and the Python API, on the three-namespace topology.

`xnf attach` leaves pping pinned; `xnf pping events|stats` read it from other
processes; `xnf detach` removes everything; `xnf run` streams until SIGTERM and
cleans up; `xnf.pping(...)` yields event objects.
"""
import json
import signal
import subprocess
import sys
import time

import pytest

from pping_topology import Topology, pping_ids, sh, still_loaded
from xnf.plugins.pping.events import RttEvent

pytestmark = [pytest.mark.root, pytest.mark.slow]

XNF = [sys.executable, "-m", "xnf.cli.main"]


@pytest.fixture
def topo():
    t = Topology(net=72)
    try:
        yield t.create()
    finally:
        sh(*XNF, "detach", "pping", "mid1", "--netns", t.mid, check=False)
        t.destroy()


def xnf(*args, check=True):
    r = subprocess.run(XNF + list(args), capture_output=True, text=True, timeout=60)
    if check and r.returncode:
        raise AssertionError(f"xnf {' '.join(args)}: {r.returncode} {r.stderr}")
    return r


def test_attach_events_stats_detach(topo):
    xnf("attach", "pping", "mid1", "--netns", topo.mid, "-C", "-r", "0")
    ids = pping_ids(topo.mid, "mid1")
    assert ids
    try:
        events = subprocess.Popen(XNF + ["pping", "events", "mid1", "--netns", topo.mid, "-F", "jsonl",
                                         "--duration", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        time.sleep(1.0)
        topo.ns(topo.cli, "ping", "-c", "4", "-i", "0.2", topo.srv_ip)
        out, err = events.communicate(timeout=20)
        lines = [json.loads(line) for line in out.splitlines()]
        rtt = [d for d in lines if "rtt" in d]
        assert len(rtt) == 4 and all(isinstance(d["rtt"], int) and d["src_ip"] == topo.srv_ip for d in rtt)
        assert "4 RTT events" in err
        st = json.loads(xnf("pping", "stats", "mid1", "--netns", topo.mid, "--json").stdout)
        assert st["rtt_events"] == 4 and st["dropped_events"] == 0 and st["flows"] == 1
        assert "pping" in xnf("status").stdout
    finally:
        xnf("detach", "pping", "mid1", "--netns", topo.mid)
    assert still_loaded(ids) == set()
    r = xnf("pping", "stats", "mid1", "--netns", topo.mid, check=False)
    assert r.returncode == 1 and "pping is not attached to mid1" in r.stderr and len(r.stderr.splitlines()) == 1


def attached_ids(topo, run, timeout=30.0):
    """The pping programs ``xnf run`` attached, once both hooks are there: waited for,
    not slept for (a fixed 2.5 s failed under load, when the command's start-up, load
    and attach took longer and the pings went by before pping was there)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and run.poll() is None:
        ids = pping_ids(topo.mid, "mid1")
        if len([i for i in ids if i[0] == "prog"]) == 2:
            return ids
        time.sleep(0.1)
    raise AssertionError(f"xnf run did not attach within {timeout} s (exit status {run.poll()})")


def test_run_streams_until_sigterm_and_cleans_up(topo):
    run = subprocess.Popen(XNF + ["run", "pping", "mid1", "--netns", topo.mid, "--icmp", "-F", "standard"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ids = attached_ids(topo, run)
        time.sleep(0.5)  # attached is not yet reading: the ring buffer keeps what comes meanwhile
        topo.ns(topo.cli, "ping", "-c", "3", "-i", "0.2", topo.srv_ip)
        time.sleep(0.5)
    finally:
        run.send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=20)
    assert run.returncode == 0, err
    rtt_lines = [line for line in out.splitlines() if " ms " in line]
    assert len(rtt_lines) == 3 and all(f"ICMP {topo.srv_ip}:" in line for line in rtt_lines)
    assert ids and still_loaded(ids) == set()


def test_bad_options_are_one_line_errors(topo):
    r = xnf("run", "pping", "nope0", "--netns", topo.mid, check=False)
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1 and "nope0" in r.stderr
    # -x native alone is the deprecated spelling of --mode native, which puts the hook at XDP;
    # naming tc beside it contradicts it
    r = xnf("attach", "pping", "mid1", "--netns", topo.mid, "-I", "tc", "-x", "native", check=False)
    assert r.returncode != 0 and "--ingress-hook tc" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert pping_ids(topo.mid, "mid1") == set()


def test_python_api_yields_events(topo):
    import threading

    import xnf

    events = xnf.pping("mid1", netns=topo.mid, icmp=True, timeout=2.5)  # attached on return
    ids = pping_ids(topo.mid, "mid1")
    pinger = threading.Timer(0.3, topo.ns, (topo.cli, "ping", "-c", "3", "-i", "0.2", topo.srv_ip))
    pinger.start()
    got = [ev for ev in events if isinstance(ev, RttEvent)]
    pinger.join()
    assert len(got) == 3 and got[0].flow.src_ip == topo.srv_ip
    assert ids and still_loaded(ids) == set()


def test_run_with_prometheus_endpoint(topo):
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = subprocess.Popen(XNF + ["run", "pping", "mid1", "--netns", topo.mid, "--icmp",
                                  "--prometheus", f"127.0.0.1:{port}", "-w", "/dev/null"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ids = attached_ids(topo, run)
        time.sleep(0.5)
        topo.ns(topo.cli, "ping", "-c", "3", "-i", "0.2", topo.srv_ip)
        time.sleep(1.5)
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    finally:
        run.send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=20)
    assert run.returncode == 0, err
    assert "pping" in body and "ICMP" in body
    assert ids and still_loaded(ids) == set()
