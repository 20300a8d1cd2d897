"""Capabilities of a real veth, read from the kernel (ethtool, netdev genetlink, attached XDP)."""
import os
import subprocess

import pytest

from xnf.core.errors import ModeNotSupportedError
from xnf.drivers.capabilities import Capabilities, choose_mode
from xnf.drivers.profiles import VETH

pytestmark = pytest.mark.root

ALL = ("skb", "native", "offload")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
XDP_OBJ = os.path.join(ROOT, "tests", "bpf", "xdp_counter.bpf.o")


def test_veth_can_do_skb_and_native_not_offload(veth):
    netns, a, _ = veth
    caps = Capabilities.for_interface(a, netns)
    assert caps.driver.driver == "veth"
    assert caps.profile is VETH
    assert caps.supports("skb") and caps.supports("native")
    assert caps.modes["offload"].supported is False
    assert caps.offload_target is None
    assert caps.attached == {}


def test_attached_program_is_seen(veth):
    netns, a, _ = veth
    subprocess.run(["ip", "-n", netns, "link", "set", a, "xdpgeneric", "obj", XDP_OBJ, "sec", "xdp"],
                   check=True, capture_output=True)
    caps = Capabilities.for_interface(a, netns)
    assert set(caps.attached) == {"skb"}
    assert caps.attached["skb"] > 0
    assert caps.modes["skb"].source == "attached XDP program"


def test_auto_on_veth_picks_native(veth):
    netns, a, _ = veth
    caps = Capabilities.for_interface(a, netns)
    assert choose_mode(caps, ALL) == "native"
    assert choose_mode(caps, ("skb",)) == "skb"
    assert choose_mode(caps, ALL, "skb") == "skb"


def test_explicit_offload_on_veth_is_refused_with_reason(veth):
    netns, a, _ = veth
    caps = Capabilities.for_interface(a, netns)
    with pytest.raises(ModeNotSupportedError, match=f"{a} cannot run XDP in offload mode") as err:
        choose_mode(caps, ALL, "offload")
    assert "use --mode native or --mode auto" in str(err.value)
