"""The pre-attach checks on what this machine has (a veth, no offload NIC)."""
import os

import pytest

import xnf
from xnf.offload.device import (OffloadNotSupportedError, UnboundProgramError, check_tc_attach, check_xdp_attach,
                                prepare_offload)

pytestmark = pytest.mark.root

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bpf", "offload")
OK = os.path.join(FIXTURES, "offload_ok.bpf.o")


def test_veth_cannot_offload_and_spec_is_untouched(veth):
    netns, a, _ = veth
    obj = xnf.open_object(OK)
    with pytest.raises(OffloadNotSupportedError, match=f"{a} cannot offload BPF programs"):
        prepare_offload(obj, a, netns)
    assert all(p.ifindex == 0 for p in obj.programs.values())
    assert all(m.ifindex == 0 for m in obj.maps.values())


@pytest.fixture
def host_collection():
    with xnf.load(OK) as coll:
        yield coll


def test_host_program_refused_in_offload_mode(veth, host_collection):
    netns, a, _ = veth
    prog = host_collection.programs["xdp_ok"]
    with pytest.raises(UnboundProgramError, match="'xdp_ok' was loaded for the host"):
        check_xdp_attach(prog, a, "offload", netns)
    check_xdp_attach(prog, a, "native", netns)
    check_xdp_attach(prog, a, "skb", netns)
    check_tc_attach(host_collection.programs["tc_shot"], a, skip_sw=False, netns=netns)


def test_skip_sw_needs_hw_tc_offload(veth, host_collection):
    netns, a, _ = veth
    with pytest.raises(OffloadNotSupportedError, match="hw-tc-offload off \\(fixed by the driver\\)"):
        check_tc_attach(host_collection.programs["tc_shot"], a, skip_sw=True, netns=netns)
