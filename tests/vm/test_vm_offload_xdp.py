"""XDP offload on netdevsim: load bound, attach in hardware mode, query, replace, remove."""
import pytest

from xnf.core.attach.xdp import attach_xdp, query
from xnf.core.kernel.info import prog_info
from xnf.drivers.capabilities import Capabilities, choose_mode
from xnf.drivers.probe import offload_load_probe
from xnf.drivers.report import features_report

from vm_offload import load_bound, load_host, xdp_oracle


def test_netdevsim_capabilities(nsim):
    caps = Capabilities.for_interface(nsim.ifname, nsim.netns)
    assert caps.driver.driver == "netdevsim"
    assert caps.profile.driver == "netdevsim"
    assert caps.supports("offload") and caps.offload_target == "netdevsim"
    assert choose_mode(caps, ("skb", "native", "offload")) == "offload"
    report = features_report(nsim.ifname, nsim.netns)
    assert report["offload"] == {"possible": True, "target": "netdevsim"}


def test_offload_load_probe_says_yes_and_leaves_nothing(nsim):
    result = offload_load_probe(nsim.ifindex, nsim.netns)
    assert result.supported is True


def test_bound_load_and_hw_attach(nsim):
    with load_bound(nsim) as coll:
        prog = coll.programs["xdp_ok"]
        info = prog_info(prog.fd)
        assert info.ifindex == nsim.ifindex
        assert info.id in nsim.bound_progs()
        att = attach_xdp(prog, nsim.ifname, mode="offload", netns=nsim.netns)
        try:
            assert att.mode == "offload"
            assert {m: hp.prog_id for m, hp in query(nsim.ifname, nsim.netns).items()} == {"offload": info.id}
            assert xdp_oracle(nsim) == {"offload": info.id}
            assert int(nsim.knob("bpf_offloaded_id")) == info.id
        finally:
            att.detach()
        assert query(nsim.ifname, nsim.netns) == {}
        assert xdp_oracle(nsim) == {}
        assert int(nsim.knob("bpf_offloaded_id")) == 0


def test_replace_offloaded_program(nsim):
    with load_bound(nsim) as first, load_bound(nsim) as second:
        att = attach_xdp(first.programs["xdp_ok"], nsim.ifname, mode="offload", netns=nsim.netns)
        try:
            new_id = prog_info(second.programs["xdp_ok"].fd).id
            att.replace(second.programs["xdp_ok"])
            assert xdp_oracle(nsim) == {"offload": new_id}
            assert int(nsim.knob("bpf_offloaded_id")) == new_id
        finally:
            att.detach()
        assert xdp_oracle(nsim) == {}


def test_native_and_offloaded_side_by_side(nsim):
    with load_bound(nsim) as hw, load_host() as host:
        hw_att = attach_xdp(hw.programs["xdp_ok"], nsim.ifname, mode="offload", netns=nsim.netns)
        try:
            drv_att = attach_xdp(host.programs["xdp_ok"], nsim.ifname, mode="native", netns=nsim.netns)
            try:
                expected = {"offload": prog_info(hw.programs["xdp_ok"].fd).id,
                            "native": prog_info(host.programs["xdp_ok"].fd).id}
                assert {m: hp.prog_id for m, hp in query(nsim.ifname, nsim.netns).items()} == expected
                assert xdp_oracle(nsim) == expected
            finally:
                drv_att.detach()
            assert set(xdp_oracle(nsim)) == {"offload"}
        finally:
            hw_att.detach()
    assert xdp_oracle(nsim) == {}


@pytest.mark.parametrize("mode", ["auto"])
def test_auto_mode_choice_on_netdevsim(nsim, mode):
    caps = Capabilities.for_interface(nsim.ifname, nsim.netns)
    assert choose_mode(caps, ("skb", "native"), mode) == "native"
