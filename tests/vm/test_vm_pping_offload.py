"""pping in offload mode: the NIC stage on netdevsim, and `xnf attach pping --mode offload`.

netdevsim accepts and holds offloaded programs but never runs them, so RTTs cannot
come from here; test_vm_netem_rtt.py checks RTT accuracy on veth.
"""
import os
import sys

import xnf
from xnf.core.attach.xdp import attach_xdp, query
from xnf.core.kernel.info import map_info, prog_info
from xnf.testing.topology import VethPair

from vm_offload import load_bound, sh, xdp_oracle

NIC_STAGE = os.path.join(os.path.dirname(os.path.abspath(xnf.__file__)), "plugins", "pping", "pping_nic.bpf.o")


def test_nic_stage_offloads_and_is_configured_from_python(nsim):
    with load_bound(nsim, programs=("pping_nic",), path=NIC_STAGE) as coll:
        prog = coll.programs["pping_nic"]
        assert map_info(coll.maps["pping_nic_events"].fd).ifindex == 0  # stays on the host
        assert map_info(coll.maps["pping_nic_cfg"].fd).ifindex == nsim.ifindex
        coll.maps["pping_nic_cfg"][0] = 5201  # the port filter lives on the NIC
        assert coll.maps["pping_nic_cfg"][0] == 5201
        assert coll.maps["pping_nic_stats"][1] == 0
        att = attach_xdp(prog, nsim.ifname, mode="offload", netns=nsim.netns)
        try:
            assert xdp_oracle(nsim) == {"offload": prog_info(prog.fd).id}
        finally:
            att.detach()


def xnf_cli(*args):
    return sh(sys.executable, "-m", "xnf.cli.main", *args, check=False)


def test_cli_attach_pping_offload_on_netdevsim(nsim):
    """Loads and attaches both stages, pins them, and `xnf detach` removes all of it."""
    from xnf.core.attach.pinroot import PinRoot

    pin_dir = PinRoot(nsim.ifname, "pping", netns=nsim.netns).path
    res = xnf_cli("attach", "pping", nsim.ifname, "--netns", nsim.netns, "--mode", "offload")
    try:
        assert res.returncode == 0, res.stderr
        xdp = xdp_oracle(nsim)
        assert list(xdp) == ["offload"]
        assert xdp["offload"] in nsim.bound_progs()  # the NIC stage is bound to this device
        assert "pping_tc_egress" in sh("tc", "filter", "show", "dev", nsim.ifname, "egress",
                                       netns=nsim.netns).stdout
        assert {"pping_nic_cfg", "pping_nic_events", "pping_nic_stats", "pping_ts"} <= \
            set(os.listdir(os.path.join(pin_dir, "maps")))
        st = xnf_cli("pping", "stats", nsim.ifname, "--netns", nsim.netns, "--json")
        assert st.returncode == 0, st.stderr
        assert '"mode": "offload"' in st.stdout and '"nic_records": 0' in st.stdout
    finally:
        det = xnf_cli("detach", "pping", nsim.ifname, "--netns", nsim.netns)
    assert det.returncode == 0, det.stderr
    assert query(nsim.ifname, nsim.netns) == {}
    assert sh("tc", "filter", "show", "dev", nsim.ifname, "egress", netns=nsim.netns).stdout.strip() == ""
    assert not os.path.exists(pin_dir)


def test_cli_attach_pping_offload_refused_on_veth():
    with VethPair(same_namespace=True, prefix="xnfvm") as pair:
        veth, netns = pair.if_a, pair.ns_a
        res = xnf_cli("attach", "pping", veth, "--netns", netns, "--mode", "offload")
        assert res.returncode != 0
        assert f"{veth} cannot" in res.stderr and "offload" in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert query(veth, netns) == {}
        assert sh("tc", "filter", "show", "dev", veth, "egress", netns=netns).stdout.strip() == ""


def test_cli_attach_pping_offload_rolls_back_when_the_device_refuses_attach(nsim):
    """netdevsim told to refuse hardware XDP: the load and tc egress already done are
    undone, nothing is pinned, no program stays bound to the device."""
    from xnf.core.attach.pinroot import PinRoot

    nsim.knob("bpf_xdpoffload_accept", "N")
    res = xnf_cli("attach", "pping", nsim.ifname, "--netns", nsim.netns, "--mode", "offload")
    assert res.returncode != 0
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert query(nsim.ifname, nsim.netns) == {}
    assert sh("tc", "filter", "show", "dev", nsim.ifname, "egress", netns=nsim.netns).stdout.strip() == ""
    assert not os.path.exists(PinRoot(nsim.ifname, "pping", netns=nsim.netns).path)
    assert nsim.bound_progs() == []


def test_cli_attach_pping_offload_twice_is_refused_and_keeps_the_first(nsim):
    first = xnf_cli("attach", "pping", nsim.ifname, "--netns", nsim.netns, "--mode", "offload")
    try:
        assert first.returncode == 0, first.stderr
        prog = xdp_oracle(nsim)["offload"]
        again = xnf_cli("attach", "pping", nsim.ifname, "--netns", nsim.netns, "--mode", "offload")
        assert again.returncode != 0 and "already attached" in again.stderr
        assert xdp_oracle(nsim) == {"offload": prog}
    finally:
        xnf_cli("detach", "pping", nsim.ifname, "--netns", nsim.netns)
    assert query(nsim.ifname, nsim.netns) == {}
