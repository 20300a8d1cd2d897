"""`xnf attach pifo_sched IFACE --qdisc bpf|htb|auto` on a kernel without the BPF qdisc.

This host's kernel has no CONFIG_NET_SCH_BPF: `--qdisc bpf` must be refused naming that
option and the fix, before anything is made; `--qdisc auto` (the default) must take the
HTB path and say so; schedulers only the BPF qdisc runs are refused with the reason.
The BPF qdisc itself is tested in the VM tier (tests/vm_qdisc/).
"""
import json
import os
import subprocess
import sys

import pytest

from netenv import in_ns
from xnf.core.errors import NotSupportedError
from xnf.plugins.pifo_sched.features import bpf_qdisc_available
from xnf.plugins.pifo_sched.nf import PifoSched, PifoSchedConfig

pytestmark = pytest.mark.root

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ENV = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
XNF = [sys.executable, "-m", "xnf.cli.main"]

needs_no_bpf_qdisc = pytest.mark.skipif(bpf_qdisc_available(),
                                        reason="the kernel has CONFIG_NET_SCH_BPF: these refusals are for kernels "
                                               "without the BPF qdisc")


def xnf(*args):
    return subprocess.run(XNF + list(args), capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=120)


def snapshot(pair):
    return (in_ns(pair.ns_a, "tc", "qdisc", "show", "dev", pair.if_a),
            in_ns(pair.ns_a, "tc", "filter", "show", "dev", pair.if_a, "egress", check=False),
            in_ns(pair.ns_a, "bpftool", "-j", "net", "show", "dev", pair.if_a))  # tcx too; links are global


def one_line_error(r):
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("xnf: error: ") and "Traceback" not in r.stderr, r.stderr
    return lines[0]


@needs_no_bpf_qdisc
def test_qdisc_bpf_is_refused_naming_the_kernel_option_and_the_fix(netns_pair):
    with pytest.raises(NotSupportedError, match="CONFIG_NET_SCH_BPF") as err:
        PifoSchedConfig(qdisc="bpf")
    assert "--qdisc htb" in str(err.value) and "6.16" in str(err.value)
    before = snapshot(netns_pair)
    # the kernel is asked before the scheduler: drr would be refused on HTB for another reason
    for scheduler in ("wfq", "drr"):
        line = one_line_error(xnf("attach", "pifo_sched", netns_pair.if_a, "--netns", netns_pair.ns_a,
                                  "--qdisc", "bpf", "--scheduler", scheduler, "--rate", "20mbit"))
        assert "CONFIG_NET_SCH_BPF" in line and "--qdisc htb or --qdisc auto" in line and "6.16" in line, line
    assert snapshot(netns_pair) == before
    assert PifoSched.attached(netns_pair.if_a, netns=netns_pair.ns_a) is None


@needs_no_bpf_qdisc
def test_qdisc_auto_takes_the_htb_path_says_so_and_records_it(netns_pair):
    before = snapshot(netns_pair)
    r = xnf("attach", "pifo_sched", netns_pair.if_a, "--netns", netns_pair.ns_a, "--rate", "20mbit",
            "--weights", "5201=1,5202=3", "--qdisc", "auto")
    assert r.returncode == 0, r.stderr
    try:
        assert "no BPF qdisc (CONFIG_NET_SCH_BPF), so --qdisc auto uses HTB" in r.stdout, r.stdout
        assert "qdisc htb 1: root" in in_ns(netns_pair.ns_a, "tc", "qdisc", "show", "dev", netns_pair.if_a)
        found = PifoSched.attached(netns_pair.if_a, netns=netns_pair.ns_a)
        assert found.config.qdisc == "htb" and found.qdisc_kind == "htb"
        status = xnf("status", "--json")
        entry = next(e for e in json.loads(status.stdout)
                     if e.get("name") == "pifo_sched" and e.get("netns") == netns_pair.ns_a)
        assert entry["qdisc"] == "htb" and "no BPF qdisc (CONFIG_NET_SCH_BPF)" in entry["data_path"]
        assert netns_pair.ping(3, to="b") == 3
    finally:
        r = xnf("detach", "pifo_sched", netns_pair.if_a, "--netns", netns_pair.ns_a)
    assert r.returncode == 0, r.stderr
    assert snapshot(netns_pair) == before


def test_qdisc_htb_explicitly_runs_the_htb_path(netns_pair):
    """`--qdisc htb` is the same path whatever the kernel has, and detach removes it."""
    before = snapshot(netns_pair)
    nf = PifoSched(netns_pair.if_a, PifoSchedConfig(qdisc="htb", rate="20mbit", scheduler="stfq"),
                   netns=netns_pair.ns_a)
    nf.attach()
    try:
        assert "stfq ranks at tc egress are mapped onto 8 strict-priority HTB bands" in nf.explain()
        assert PifoSched.attached(netns_pair.if_a, netns=netns_pair.ns_a).config.scheduler == "stfq"
    finally:
        nf.detach()
    assert snapshot(netns_pair) == before


def test_schedulers_only_the_bpf_qdisc_runs_are_refused_on_htb_with_the_reason():
    with pytest.raises(ValueError, match=r"--qdisc htb was asked for.*xnf sched simulate drr"):
        PifoSchedConfig(scheduler="drr", qdisc="htb")
    for name in ("wfq", "stfq"):
        assert PifoSchedConfig(scheduler=name, qdisc="htb").scheduler == name


@needs_no_bpf_qdisc
def test_qdisc_auto_refuses_what_htb_cannot_run_naming_the_missing_bpf_qdisc():
    with pytest.raises(ValueError, match=r"no BPF qdisc \(CONFIG_NET_SCH_BPF.*xnf sched simulate hpfq"):
        PifoSchedConfig(scheduler="hpfq")
    r = xnf("attach", "pifo_sched", "lo", "--scheduler", "srpt")
    line = one_line_error(r)
    assert "CONFIG_NET_SCH_BPF" in line and "xnf sched simulate srpt" in line, line
