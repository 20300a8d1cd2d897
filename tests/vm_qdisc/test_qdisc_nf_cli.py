"""`xnf attach pifo_sched` on a kernel with the BPF qdisc, through the `xnf` command.

`--qdisc auto` takes the BPF qdisc and says so; `tc -s qdisc show` shows its byte and
packet counters; `xnf status` shows backlog, drops and per-flow figures from the pins;
`xnf detach` (from another process) puts the interface back as iproute2 and bpftool saw
it; an attach killed at each step of the BPF path leaves what `xnf detach` removes;
`--qdisc htb` still builds the HTB path there. Runs in the VM tier (bpf-qdisc kernel).
"""
import json
import os
import select
import signal
import subprocess
import sys

import pytest

from xnf.testing.topology import VethPair

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
ENV.pop("XNF_TEST_PAUSE_AT", None)
XNF = [sys.executable, "-m", "xnf.cli.main"]


def xnf(*args, env=None):
    return subprocess.run(XNF + list(args), capture_output=True, text=True, env=env or ENV, cwd=ROOT, timeout=300)


def in_ns(ns, *argv):
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def pair():
    with VethPair(prefix="xq") as p:
        yield p


def snapshot(p):
    """The sender's root qdisc, egress programs, and every registered struct_ops."""
    return (in_ns(p.ns_a, "tc", "qdisc", "show", "dev", p.if_a),
            in_ns(p.ns_a, "bpftool", "-j", "net", "show", "dev", p.if_a),
            _struct_ops())


def _struct_ops():
    out = subprocess.run(["bpftool", "-j", "struct_ops", "show"], capture_output=True, text=True)
    return sorted(m.get("name", "") for m in json.loads(out.stdout or "[]")) if out.returncode == 0 else out.stderr


def entry(p):
    r = xnf("status", "--json")
    assert r.returncode == 0, r.stderr
    return next((e for e in json.loads(r.stdout) if e.get("name") == "pifo_sched" and e.get("netns") == p.ns_a), None)


@pytest.mark.parametrize("scheduler", ["wfq", "fifo"])  # the default, and the rank mode
def test_auto_takes_the_bpf_qdisc_status_shows_its_figures_and_detach_restores(pair, scheduler):
    before = snapshot(pair)
    r = xnf("attach", "pifo_sched", pair.if_a, "--netns", pair.ns_a, "--weights", "5201=1,5202=2",
            "--scheduler", scheduler)
    assert r.returncode == 0, r.stderr
    try:
        assert f"the kernel has the BPF qdisc (--qdisc auto): {scheduler} ranks an exact PIFO" in r.stdout, r.stdout
        assert pair.ping(5, to="b") == 5
        shown = in_ns(pair.ns_a, "tc", "-s", "qdisc", "show", "dev", pair.if_a)
        first = shown.splitlines()[0]
        assert first.startswith("qdisc xnfq") and " root " in first, shown
        sent = shown.split("Sent ", 1)[1].split()
        assert int(sent[0]) > 0 and int(sent[2]) >= 5, shown  # "Sent B bytes P pkt": the qdisc's bstats
        status = entry(pair)
        assert status["qdisc"] == "bpf" and status["scheduler"] == scheduler
        assert status["backlog_packets"] == 0 and status["drops"] == 0
        assert status["flows"]["other"]["packets"] >= 5  # ICMP and ARP: no port weight, flow 0
        assert status["sent_packets"] >= 5
    finally:
        r = xnf("detach", "pifo_sched", pair.if_a, "--netns", pair.ns_a)
    assert r.returncode == 0, r.stderr
    assert snapshot(pair) == before
    assert entry(pair) is None


def test_a_second_attach_and_a_foreign_root_are_refused_untouched(pair):
    r = xnf("attach", "pifo_sched", pair.if_a, "--netns", pair.ns_a, "--qdisc", "bpf", "--scheduler", "fifo")
    assert r.returncode == 0, r.stderr
    try:
        held = snapshot(pair)
        r = xnf("attach", "pifo_sched", pair.if_a, "--netns", pair.ns_a, "--qdisc", "bpf")
        assert r.returncode == 1 and "already attached" in r.stderr, r.stderr
        assert snapshot(pair) == held
    finally:
        assert xnf("detach", "pifo_sched", pair.if_a, "--netns", pair.ns_a).returncode == 0
    in_ns(pair.ns_a, "tc", "qdisc", "add", "dev", pair.if_a, "root", "tbf", "rate", "10mbit", "burst", "15k",
          "latency", "50ms")
    before = snapshot(pair)
    r = xnf("attach", "pifo_sched", pair.if_a, "--netns", pair.ns_a, "--qdisc", "bpf")
    assert r.returncode == 1 and "already has a tbf root qdisc" in r.stderr, r.stderr
    assert snapshot(pair) == before


def test_bad_scheduler_options_are_refused_before_anything_is_made(pair):
    before = snapshot(pair)
    r = xnf("attach", "pifo_sched", pair.if_a, "--netns", pair.ns_a, "--qdisc", "bpf", "--scheduler", "fq_codel",
            "--params", '{"ecn": true}')
    assert r.returncode == 1 and "cannot mark ECN" in r.stderr, r.stderr  # the qdisc cannot write the packet
    assert "xnf sched simulate fq_codel" in r.stderr
    r = xnf("attach", "pifo_sched", pair.if_a, "--netns", pair.ns_a, "--weights", "5201=0.1")
    assert r.returncode == 1 and "weight 0.1" in r.stderr, r.stderr  # integer tags differ from the simulator's
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert snapshot(pair) == before


@pytest.mark.parametrize("step", ["record-qdisc_choice", "loaded", "record-bpf_qdisc", "qdisc-created",
                                  "pinned-qdisc_ops", "pinned-maps", "committed"])
def test_an_attach_killed_at_each_step_is_cleared_by_detach(pair, step):
    before = snapshot(pair)
    env = dict(ENV, XNF_TEST_PAUSE_AT=step)
    attach = ["attach", "pifo_sched", pair.if_a, "--netns", pair.ns_a, "--weights", "5201=1", "--scheduler", "fifo"]
    proc = subprocess.Popen(XNF + attach,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        ready, _, _ = select.select([proc.stderr], [], [], 240)
        line = proc.stderr.readline() if ready else ""
        assert line.startswith(f"xnf: test pause at {step} "), line
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()
    r = xnf("detach", "pifo_sched", pair.if_a, "--netns", pair.ns_a)
    assert r.returncode in (0, 1), r.stderr  # 1: "nothing attached" when the kill left nothing
    assert snapshot(pair) == before
    r = xnf(*attach)
    assert r.returncode == 0, r.stderr
    assert xnf("detach", "pifo_sched", pair.if_a, "--netns", pair.ns_a).returncode == 0
    assert snapshot(pair) == before


def test_qdisc_htb_still_builds_the_htb_path_on_this_kernel(pair):
    before = snapshot(pair)
    r = xnf("attach", "pifo_sched", pair.if_a, "--netns", pair.ns_a, "--qdisc", "htb", "--rate", "20mbit")
    assert r.returncode == 0, r.stderr
    try:
        assert "--qdisc htb: wfq ranks at tc egress" in r.stdout, r.stdout
        assert "qdisc htb 1: root" in in_ns(pair.ns_a, "tc", "qdisc", "show", "dev", pair.if_a)
        assert entry(pair)["qdisc"] == "htb"
    finally:
        assert xnf("detach", "pifo_sched", pair.if_a, "--netns", pair.ns_a).returncode == 0
    assert snapshot(pair) == before
