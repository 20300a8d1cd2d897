"""NetworkFunction.building(): the attach protocol a plugin gets for free (issue 12 item 5).
A whole instance appears on success; a failure inside the block leaves nothing (no pin,
no staging directory, the interface as the kernel tools saw it before); a second attach
is refused naming the detach command."""
import os

import pytest

import xnf
from xnf.core.attach.pinroot import AlreadyAttachedError
from xnf.core.attach.xdp import attach_xdp
from xnf.core.kernel.maps import Map
from xnf.nf import NetworkFunction

OBJECT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bpf", "xdp_counter.bpf.o")


class Boom(Exception):
    pass


class CountNF(NetworkFunction):
    name = "xnftestbuild"
    hooks = ("xdp",)
    modes = ("skb",)
    fail_after = None  # "attach" or "maps": raise right after that step

    def attach(self):
        spec = xnf.open_object(OBJECT)
        with self.building() as build, xnf.load(spec) as coll:
            build.attach("xdp", coll.programs["xdp_count"], attach_xdp, mode="skb")
            if self.fail_after == "attach":
                raise Boom()
            build.pin_maps([("pkt_count", coll.maps["pkt_count"])])
            if self.fail_after == "maps":
                raise Boom()

    def detach(self):
        self.pins.remove_all()


def test_a_built_instance_is_whole_and_detaches_cleanly(netns_pair, iface_state):
    p = netns_pair
    before = iface_state(p.ns_a, p.if_a)
    nf = CountNF(p.if_a, netns=p.ns_a, mode="skb")
    nf.attach()
    try:
        assert nf.pins.exists() and not nf.pins.leftovers()
        att = nf.pins.find("xdp")
        assert att is not None and att.mode == "skb"
        att.close()
        with Map.from_pin(os.path.join(nf.pins.maps_dir, "pkt_count")):
            pass
        assert iface_state(p.ns_a, p.if_a)["bpftool_net"] != before["bpftool_net"]
        with pytest.raises(AlreadyAttachedError) as e:
            CountNF(p.if_a, netns=p.ns_a).attach()
        assert f"xnf detach xnftestbuild {p.if_a} --netns {p.ns_a}" in e.value.hint
    finally:
        nf.detach()
    assert not nf.pins.exists() and not nf.pins.leftovers()
    assert iface_state(p.ns_a, p.if_a) == before


@pytest.mark.parametrize("step", ["attach", "maps"])
def test_a_failure_inside_the_block_leaves_nothing(netns_pair, iface_state, step):
    p = netns_pair
    before = iface_state(p.ns_a, p.if_a)
    nf = CountNF(p.if_a, netns=p.ns_a, mode="skb")
    nf.fail_after = step
    with pytest.raises(Boom):
        nf.attach()
    assert not nf.pins.exists() and not nf.pins.leftovers()
    assert iface_state(p.ns_a, p.if_a) == before


def test_a_missing_interface_fails_before_anything_is_made(netns_pair):
    from xnf.core.errors import InterfaceNotFoundError

    nf = CountNF("xnfnosuch7", netns=netns_pair.ns_a)
    with pytest.raises(InterfaceNotFoundError):
        nf.attach()
    assert not nf.pins.exists() and not os.path.exists(nf.pins.ifdir)
