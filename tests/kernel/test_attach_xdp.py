"""XDP attach on veth pairs in namespaces: every mode and method, with real packets.

A counter program (tests/kernel/progs.py) proves the program ran; iproute2 and
bpftool snapshots prove detach leaves the interface as it was.
"""

import pytest
from netenv import bpftool_links, delete_ns_under, in_ns
from progs import counter_program, return_program

from xnf.core.attach import XdpAttachment, attach_xdp, detach_xdp, query_xdp
from xnf.core.errors import AttachError, InterfaceNotFoundError, ModeNotSupportedError
from xnf.core.kernel import features
from xnf.core.kernel.netns import NamespaceNotFoundError

pytestmark = pytest.mark.root



def _need_link(via):
    if via == "link" and not features.have_xdp_link():
        pytest.skip("the kernel has no XDP BPF links (Linux 5.9)")


@pytest.mark.parametrize("via", ["link", "netlink"])
@pytest.mark.parametrize("mode", ["skb", "native"])
def test_attach_counts_packets_and_detach_restores(netns_pair, iface_state, counters, mode, via):
    _need_link(via)
    p = netns_pair
    before = iface_state(p.ns_a, p.if_a)
    prog = counter_program("xdp", counters, slot=0)
    att = attach_xdp(prog, p.if_a, mode=mode, netns=p.ns_a, via=via)
    try:
        assert isinstance(att, XdpAttachment) and att.mode == mode and att.via == via
        assert att.attached
        assert p.ping(3) == 3
        assert counters[0] >= 3
        seen = query_xdp(p.if_a, p.ns_a)
        assert list(seen) == [mode]
        assert seen[mode].prog_id == att.prog_id and seen[mode].prog_name == "xnf_count"
        assert seen[mode].via == via
        ip_mode = {"skb": "xdpgeneric", "native": "xdp"}[mode]
        shown = in_ns(p.ns_a, "ip", "-d", "link", "show", p.if_a)
        assert f" {ip_mode} " in shown.splitlines()[0] and f"prog/xdp id {att.prog_id} " in shown
        net = iface_state(p.ns_a, p.if_a)["bpftool_net"][0]["xdp"]
        assert [(x["mode"], x["id"]) for x in net] == [({"skb": "generic", "native": "driver"}[mode], att.prog_id)]
        if via == "link":
            assert att.link_id in {link["id"] for link in bpftool_links()}
    finally:
        link_id = att.link_id
        assert att.detach() is True
        prog.close()
    assert iface_state(p.ns_a, p.if_a) == before
    if via == "link":
        assert link_id not in {link["id"] for link in bpftool_links()}
    assert query_xdp(p.if_a, p.ns_a) == {}
    count = counters[0]
    assert p.ping(2) == 2
    assert counters[0] == count


def test_auto_mode_picks_native_on_veth(netns_pair, counters):
    p = netns_pair
    prog = counter_program("xdp", counters)
    try:
        with attach_xdp(prog, p.if_a, netns=p.ns_a) as att:
            assert att.mode == "native" and att.fallback_reason is None
            assert p.ping(2) == 2 and counters[0] >= 2
    finally:
        prog.close()
    assert query_xdp(p.if_a, p.ns_a) == {}


@pytest.mark.parametrize("via", ["link", "netlink"])
def test_initial_namespace(root_veth, iface_state, counters, via):
    _need_link(via)
    p = root_veth
    before = iface_state(None, p.if_a)
    prog = counter_program("xdp", counters, slot=1)
    try:
        att = attach_xdp(prog, p.if_a, mode="skb", via=via)
        assert att.netns is None
        assert p.ping(2) == 2 and counters[1] >= 2
        assert att.detach()
    finally:
        prog.close()
    assert iface_state(None, p.if_a) == before


@pytest.mark.parametrize("via", ["link", "netlink"])
def test_replace_swaps_the_program(netns_pair, iface_state, counters, via):
    _need_link(via)
    p = netns_pair
    before = iface_state(p.ns_a, p.if_a)
    old, new = counter_program("xdp", counters, 0), counter_program("xdp", counters, 1, name=b"xnf_new")
    try:
        att = attach_xdp(old, p.if_a, mode="skb", netns=p.ns_a, via=via)
        assert p.ping(2) == 2
        att.replace(new)
        hits_old = counters[0]
        assert p.ping(2) == 2
        assert counters[0] == hits_old and counters[1] >= 2
        assert query_xdp(p.if_a, p.ns_a)["skb"].prog_id == att.prog_id
        assert att.detach()
    finally:
        old.close()
        new.close()
    assert iface_state(p.ns_a, p.if_a) == before


@pytest.mark.parametrize("first,second", [("link", "netlink"), ("netlink", "link"), ("netlink", "netlink")])
def test_busy_hook_is_refused_and_first_stays(netns_pair, counters, first, second):
    _need_link("link")
    p = netns_pair
    a, b = counter_program("xdp", counters, 0), counter_program("xdp", counters, 1)
    try:
        att = attach_xdp(a, p.if_a, mode="skb", netns=p.ns_a, via=first)
        try:
            with pytest.raises(AttachError, match="already has XDP attached"):
                attach_xdp(b, p.if_a, mode="skb", netns=p.ns_a, via=second)
            assert query_xdp(p.if_a, p.ns_a)["skb"].prog_id == att.prog_id
        finally:
            att.detach()
    finally:
        a.close()
        b.close()


def test_generic_and_native_cannot_mix(netns_pair, counters):
    p = netns_pair
    a, b = counter_program("xdp", counters, 0), counter_program("xdp", counters, 1)
    try:
        with attach_xdp(a, p.if_a, mode="skb", netns=p.ns_a, via="netlink"):
            with pytest.raises(AttachError):
                attach_xdp(b, p.if_a, mode="native", netns=p.ns_a, via="netlink")
            assert list(query_xdp(p.if_a, p.ns_a)) == ["skb"]
    finally:
        a.close()
        b.close()


def test_netlink_detach_leaves_a_foreign_program(netns_pair, counters):
    """Our program was replaced by somebody else: detach must not remove theirs."""
    p = netns_pair
    ours = counter_program("xdp", counters, 0)
    try:
        att = attach_xdp(ours, p.if_a, mode="skb", netns=p.ns_a, via="netlink")
        in_ns(p.ns_a, "ip", "-force", "link", "set", "dev", p.if_a, "xdpgeneric",
              "obj", "tests/bpf/xdp_counter.bpf.o", "sec", "xdp")
        foreign = query_xdp(p.if_a, p.ns_a)["skb"].prog_id
        assert foreign != att.prog_id
        assert att.detach() is False
        assert query_xdp(p.if_a, p.ns_a)["skb"].prog_id == foreign
        assert detach_xdp(p.if_a, foreign, netns=p.ns_a) is True
        assert query_xdp(p.if_a, p.ns_a) == {}
    finally:
        in_ns(p.ns_a, "ip", "link", "set", "dev", p.if_a, "xdpgeneric", "off", check=False)
        ours.close()


def test_detach_by_id_removes_a_link(netns_pair, counters):
    _need_link("link")
    p = netns_pair
    prog = counter_program("xdp", counters)
    try:
        att = attach_xdp(prog, p.if_a, mode="skb", netns=p.ns_a, via="link")
        assert detach_xdp(p.if_a, att.prog_id, netns=p.ns_a) is True
        assert not att.attached
        assert query_xdp(p.if_a, p.ns_a) == {}
        att.close()
    finally:
        prog.close()


# --- bad input: typed errors, nothing left attached ---------------------------------

@pytest.mark.parametrize("via", ["link", "netlink"])
def test_offload_on_veth_is_refused(netns_pair, iface_state, counters, via):
    _need_link(via)
    p = netns_pair
    before = iface_state(p.ns_a, p.if_a)
    prog = counter_program("xdp", counters)
    try:
        with pytest.raises(ModeNotSupportedError, match="offload mode: its driver does not advertise"):
            attach_xdp(prog, p.if_a, mode="offload", netns=p.ns_a, via=via)
    finally:
        prog.close()
    assert iface_state(p.ns_a, p.if_a) == before


def test_missing_interface(netns_pair, counters):
    prog = counter_program("xdp", counters)
    try:
        with pytest.raises(InterfaceNotFoundError, match="nope0.*" + netns_pair.ns_a):
            attach_xdp(prog, "nope0", netns=netns_pair.ns_a)
        with pytest.raises(InterfaceNotFoundError):
            query_xdp("nope0", netns_pair.ns_a)
    finally:
        prog.close()


def test_missing_namespace(counters):
    prog = counter_program("xdp", counters)
    try:
        with pytest.raises(NamespaceNotFoundError, match="xnf-no-such-ns"):
            attach_xdp(prog, "lo", netns="xnf-no-such-ns")
    finally:
        prog.close()


def test_wrong_program_type_and_mode(netns_pair, iface_state):
    p = netns_pair
    before = iface_state(p.ns_a, p.if_a)
    tc_prog = return_program("sched_cls", 0)
    try:
        with pytest.raises(AttachError, match="sched_cls program, XDP needs xdp"):
            attach_xdp(tc_prog, p.if_a, netns=p.ns_a)
        with pytest.raises(ModeNotSupportedError, match="unknown XDP mode"):
            attach_xdp(tc_prog, p.if_a, mode="turbo", netns=p.ns_a)
    finally:
        tc_prog.close()
    assert iface_state(p.ns_a, p.if_a) == before


def test_auto_falls_back_to_generic_where_native_fails(netns_pair, counters):
    """A veth whose peer MTU is too large for native XDP: auto falls back to generic."""
    p = netns_pair
    in_ns(p.ns_b, "ip", "link", "set", "dev", p.if_b, "mtu", "9000")
    in_ns(p.ns_a, "ip", "link", "set", "dev", p.if_a, "mtu", "9000")
    prog = counter_program("xdp", counters)
    try:
        with pytest.raises(ModeNotSupportedError, match="native"):
            attach_xdp(prog, p.if_a, mode="native", netns=p.ns_a, via="netlink")
        with attach_xdp(prog, p.if_a, netns=p.ns_a, via="netlink") as att:
            assert att.mode == "skb" and "native" in att.fallback_reason
            assert p.ping(2) == 2 and counters[0] >= 2
    finally:
        prog.close()
    assert query_xdp(p.if_a, p.ns_a) == {}


@pytest.mark.parametrize("via", ["link", "netlink"])
def test_detach_after_the_namespace_is_gone(netns_pair, counters, via):
    _need_link(via)
    p = netns_pair
    prog = counter_program("xdp", counters)
    try:
        att = attach_xdp(prog, p.if_a, mode="skb", netns=p.ns_a, via=via)
        delete_ns_under(att, p.ns_a)
        assert not att.attached
        assert att.detach() is False
    finally:
        prog.close()


@pytest.mark.parametrize("via", ["link", "netlink"])
def test_native_on_a_driver_without_xdp(netns_pair, counters, via):
    """ifb has no native XDP: explicit native mode is refused, auto falls back to generic."""
    _need_link(via)
    p = netns_pair
    in_ns(p.ns_a, "ip", "link", "add", "xnfifb", "type", "ifb")
    prog = counter_program("xdp", counters)
    try:
        with pytest.raises(ModeNotSupportedError, match="native mode") as err:
            attach_xdp(prog, "xnfifb", mode="native", netns=p.ns_a, via=via)
        assert "does not support XDP in native mode" in str(err.value)
        with attach_xdp(prog, "xnfifb", netns=p.ns_a, via=via) as att:
            assert att.mode == "skb" and "native XDP" in att.fallback_reason
            assert list(query_xdp("xnfifb", p.ns_a)) == ["skb"]
        assert query_xdp("xnfifb", p.ns_a) == {}
    finally:
        prog.close()


def test_with_loaded_object(netns_pair, iface_state):
    """The committed xdp_counter.bpf.o through the ELF loader: ICMP counted per protocol."""
    import xnf

    p = netns_pair
    before = iface_state(p.ns_a, p.if_a)
    with xnf.load("tests/bpf/xdp_counter.bpf.o") as coll:
        for mode in ("skb", "native"):
            with attach_xdp(coll.programs["xdp_count"], p.if_a, mode, p.ns_a) as att:
                assert att.mode == mode
                start = coll.maps["proto_count"].get(1, 0)
                assert p.ping(3) == 3
                assert coll.maps["proto_count"][1] - start >= 3 and coll.maps["pkt_count"][0] >= 3
    assert iface_state(p.ns_a, p.if_a) == before


@pytest.mark.parametrize("via", ["link", "netlink"])
def test_detach_twice_and_use_after_detach(netns_pair, counters, via):
    _need_link(via)
    p = netns_pair
    prog = counter_program("xdp", counters)
    try:
        att = attach_xdp(prog, p.if_a, "skb", p.ns_a, via=via)
        assert att.detach() is True and att.closed
        assert att.detach() is False
        with pytest.raises(AttachError, match="is closed"):
            att.replace(prog)
    finally:
        prog.close()
