"""tc attach on veth pairs in namespaces: tcx links (with anchors) and clsact + cls_bpf.

Ping requests from ``ns_b`` arrive at ``if_a`` ingress; the replies leave by its egress.
"""
import json

import pytest
from netenv import bpftool_links, delete_ns_under, in_ns
from progs import counter_program, return_program

import xnf
from xnf.core.attach import (HookProgram, TcAttachment, TcxAttachment, attach_cls_bpf, attach_tc,
                             attach_tcx, query, query_tc, query_tcx)
from xnf.core.attach.tc import CLSACT_PARENTS
from xnf.core.errors import AttachError, InterfaceNotFoundError, ModeNotSupportedError
from xnf.core.kernel import features

pytestmark = pytest.mark.root

DIRECTIONS = ["ingress", "egress"]



@pytest.fixture
def need_tcx():
    if not features.have_tcx():
        pytest.skip("the kernel has no tcx links (Linux 6.6)")


def _bpftool_link(link_id):
    """bpftool's record of one link (bpftool before 7.3 does not list tcx in `net show`)."""
    return next((link for link in bpftool_links() if link["id"] == link_id), None)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_tcx_counts_and_detach_restores(netns_pair, iface_state, counters, need_tcx, direction):
    p = netns_pair
    before = iface_state(p.ns_a, p.if_a)
    prog = counter_program("sched_cls", counters, 0)
    try:
        att = attach_tc(prog, p.if_a, direction, netns=p.ns_a, via="tcx")
        assert isinstance(att, TcxAttachment) and att.via == "tcx" and att.held_by == "link"
        assert p.ping(3) == 3 and counters[0] >= 3
        progs, _ = query_tcx(p.if_a, direction, p.ns_a)
        assert [(h.prog_id, h.link_id) for h in progs] == [(att.prog_id, att.link_id)]
        link_id = att.link_id
        assert _bpftool_link(link_id)["prog_id"] == att.prog_id
        assert att.detach() is True
        assert _bpftool_link(link_id) is None
    finally:
        prog.close()
    assert iface_state(p.ns_a, p.if_a) == before
    count = counters[0]
    assert p.ping(2) == 2 and counters[0] == count


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_clsact_counts_and_detach_restores(netns_pair, iface_state, counters, direction):
    p = netns_pair
    before = iface_state(p.ns_a, p.if_a)
    assert "clsact" not in before["qdisc"]
    prog = counter_program("sched_cls", counters, 1)
    try:
        att = attach_tc(prog, p.if_a, direction, netns=p.ns_a, via="clsact")
        assert isinstance(att, TcAttachment) and att.via == "clsact" and att.held_by == "netlink" and att.created_qdisc
        assert att.parent == CLSACT_PARENTS[direction] and att.prio and att.handle
        assert p.ping(3) == 3 and counters[1] >= 3
        shown = in_ns(p.ns_a, "tc", "filter", "show", "dev", p.if_a, direction)
        net = json.loads(in_ns(p.ns_a, "bpftool", "-j", "net", "show", "dev", p.if_a))[0]["tc"]
        assert [(t["kind"], t["id"]) for t in net] == [(f"clsact/{direction}", att.prog_id)]
        assert f"handle {att.handle:#x}" in shown and f"id {att.prog_id} " in shown
        assert "direct-action" in shown and f"pref {att.prio} " in shown
        found = query_tc(p.if_a, p.ns_a)
        assert [(h.where, h.prog_id, h.prio, h.handle) for h in found] == \
            [(direction, att.prog_id, att.prio, att.handle)]
        assert f"tag {found[0].prog_tag} " in shown and found[0].prog_name == "xnf_count"
        assert att.attached
        assert att.detach() is True
    finally:
        prog.close()
    assert iface_state(p.ns_a, p.if_a) == before
    count = counters[1]
    assert p.ping(2) == 2 and counters[1] == count


def test_clsact_we_did_not_create_stays(netns_pair, iface_state, counters):
    p = netns_pair
    in_ns(p.ns_a, "tc", "qdisc", "add", "dev", p.if_a, "clsact")
    before = iface_state(p.ns_a, p.if_a)
    prog = counter_program("sched_cls", counters)
    try:
        with attach_tc(prog, p.if_a, "ingress", netns=p.ns_a, via="clsact") as att:
            assert not att.created_qdisc
    finally:
        prog.close()
    assert iface_state(p.ns_a, p.if_a) == before


def test_only_our_filter_is_removed(netns_pair, counters):
    """Another filter on the same clsact: detach removes ours and keeps the qdisc."""
    p = netns_pair
    prog = counter_program("sched_cls", counters)
    try:
        att = attach_tc(prog, p.if_a, "ingress", netns=p.ns_a, via="clsact")
        in_ns(p.ns_a, "tc", "filter", "add", "dev", p.if_a, "ingress", "prio", "5", "handle", "7", "bpf",
              "da", "obj", "tests/bpf/tc_counter.bpf.o", "sec", "classifier")
        assert att.detach() is True
        left = query_tc(p.if_a, p.ns_a)
        assert [(h.prio, h.handle, h.prog_name) for h in left] == [(5, 7, "cls_count")]
        assert "clsact" in in_ns(p.ns_a, "tc", "qdisc", "show", "dev", p.if_a)
    finally:
        prog.close()


def test_replaced_filter_is_not_ours(netns_pair, counters):
    p = netns_pair
    prog = counter_program("sched_cls", counters)
    try:
        att = attach_tc(prog, p.if_a, "ingress", netns=p.ns_a, via="clsact")
        in_ns(p.ns_a, "tc", "filter", "replace", "dev", p.if_a, "ingress", "prio", str(att.prio),
              "handle", hex(att.handle), "bpf", "da", "obj", "tests/bpf/tc_counter.bpf.o", "sec", "classifier")
        assert not att.attached
        assert att.detach() is False
        assert [h.prog_name for h in query_tc(p.if_a, p.ns_a)] == ["cls_count"]
    finally:
        prog.close()


def test_flags_gen_skip_hw_is_sent_and_read_back(netns_pair, counters):
    p = netns_pair
    prog = counter_program("sched_cls", counters)
    try:
        with attach_tc(prog, p.if_a, "egress", netns=p.ns_a, skip_hw=True) as att:
            assert isinstance(att, TcAttachment)
            shown = in_ns(p.ns_a, "tc", "filter", "show", "dev", p.if_a, "egress")
            assert "skip_hw" in shown and "not_in_hw" in shown
            assert p.ping(2) == 2 and counters[0] >= 2
    finally:
        prog.close()


def test_skip_sw_on_veth_is_refused(netns_pair, iface_state, counters):
    p = netns_pair
    before = iface_state(p.ns_a, p.if_a)
    prog = counter_program("sched_cls", counters)
    try:
        with pytest.raises(ModeNotSupportedError, match="cannot offload the filter"):
            attach_tc(prog, p.if_a, "ingress", netns=p.ns_a, skip_sw=True)
        with pytest.raises(AttachError, match="nowhere"):
            attach_tc(prog, p.if_a, "ingress", netns=p.ns_a, skip_sw=True, skip_hw=True)
    finally:
        prog.close()
    assert iface_state(p.ns_a, p.if_a) == before


def test_explicit_prio_and_handle(netns_pair, iface_state, counters):
    p = netns_pair
    before = iface_state(p.ns_a, p.if_a)
    a, b = counter_program("sched_cls", counters, 0), counter_program("sched_cls", counters, 1)
    try:
        att = attach_tc(a, p.if_a, "ingress", netns=p.ns_a, prio=3, handle=9)
        assert (att.prio, att.handle) == (3, 9) and isinstance(att, TcAttachment)
        with pytest.raises(AttachError, match="already has a filter at prio 3"):
            attach_tc(b, p.if_a, "ingress", netns=p.ns_a, prio=3, handle=9)
        att2 = attach_tc(b, p.if_a, "ingress", netns=p.ns_a, prio=4, handle=9)
        assert p.ping(2) == 2
        assert counters[0] >= 2 and counters[1] == 0  # direct action: prio 3 decides first
        att.detach()
        assert p.ping(2) == 2 and counters[1] >= 2
        att2.detach()
    finally:
        a.close()
        b.close()
    assert iface_state(p.ns_a, p.if_a) == before


def test_tcx_anchors(netns_pair, iface_state, counters, need_tcx):
    p = netns_pair
    before = iface_state(p.ns_a, p.if_a)
    progs = [return_program("sched_cls", -1, name=f"xnf_p{i}".encode()) for i in range(6)]
    atts = []
    try:
        def attach(i, **kw):
            atts.append(attach_tcx(progs[i], p.if_a, "ingress", p.ns_a, **kw))
            return atts[-1]

        p0 = attach(0)
        p1 = attach(1)                                  # last
        attach(2, first=True)                           # first
        attach(3, before=p1)                            # anchor: a TcxAttachment (its link)
        hp0 = query_tcx(p.if_a, "ingress", p.ns_a)[0][1]
        assert hp0.prog_id == p0.prog_id
        attach(4, after=hp0)                            # anchor: a HookProgram (link id)
        attach(5, before=progs[2])                      # anchor: a program fd
        order, _ = query_tcx(p.if_a, "ingress", p.ns_a)
        names = [h.prog_name for h in order]
        assert names == ["xnf_p5", "xnf_p2", "xnf_p0", "xnf_p4", "xnf_p3", "xnf_p1"]
        assert [h.link_id for h in order] == [a.link_id for a in (atts[5], atts[2], atts[0], atts[4],
                                                                   atts[3], atts[1])]
        with pytest.raises(AttachError, match="only one of"):
            attach_tcx(progs[0], p.if_a, "ingress", p.ns_a, first=True, after=p1)
    finally:
        for att in atts:
            att.detach()
        for prog in progs:
            prog.close()
    assert iface_state(p.ns_a, p.if_a) == before


def test_tcx_expected_revision(netns_pair, counters, need_tcx):
    p = netns_pair
    a, b = return_program("sched_cls", -1), return_program("sched_cls", -1)
    atts = []
    try:
        _, rev = query_tcx(p.if_a, "egress", p.ns_a)
        atts.append(attach_tcx(a, p.if_a, "egress", p.ns_a, expected_revision=rev))
        with pytest.raises(AttachError, match=f"expected revision {rev}, it is now {rev + 1}"):
            attach_tcx(b, p.if_a, "egress", p.ns_a, expected_revision=rev)
        atts.append(attach_tcx(b, p.if_a, "egress", p.ns_a, expected_revision=rev + 1))
        assert len(query_tcx(p.if_a, "egress", p.ns_a)[0]) == 2
    finally:
        for att in atts:
            att.detach()
        a.close()
        b.close()


@pytest.mark.parametrize("via", ["tcx", "clsact"])
def test_replace(netns_pair, iface_state, counters, via):
    if via == "tcx" and not features.have_tcx():
        pytest.skip("the kernel has no tcx links (Linux 6.6)")
    p = netns_pair
    before = iface_state(p.ns_a, p.if_a)
    old, new = counter_program("sched_cls", counters, 0), counter_program("sched_cls", counters, 1)
    try:
        att = attach_tc(old, p.if_a, "ingress", netns=p.ns_a, via=via)
        assert p.ping(2) == 2
        att.replace(new)
        hits = counters[0]
        assert p.ping(2) == 2
        assert counters[0] == hits and counters[1] >= 2
        assert att.attached
        assert att.detach()
    finally:
        old.close()
        new.close()
    assert iface_state(p.ns_a, p.if_a) == before


def test_auto_prefers_tcx_and_clsact_options_force_clsact(netns_pair, counters):
    p = netns_pair
    prog = counter_program("sched_cls", counters)
    try:
        with attach_tc(prog, p.if_a, "ingress", netns=p.ns_a) as att:
            assert isinstance(att, TcxAttachment if features.have_tcx() else TcAttachment)
        with attach_tc(prog, p.if_a, "ingress", netns=p.ns_a, prio=2) as att:
            assert isinstance(att, TcAttachment)
        with pytest.raises(AttachError, match="need tcx"):
            attach_tc(prog, p.if_a, "ingress", netns=p.ns_a, via="clsact", first=True)
    finally:
        prog.close()


@pytest.mark.parametrize("via", ["tcx", "clsact"])
def test_initial_namespace(root_veth, iface_state, counters, via):
    if via == "tcx" and not features.have_tcx():
        pytest.skip("the kernel has no tcx links (Linux 6.6)")
    p = root_veth
    before = iface_state(None, p.if_a)
    prog = counter_program("sched_cls", counters, 2)
    try:
        att = attach_tc(prog, p.if_a, "ingress", via=via)
        assert p.ping(2) == 2 and counters[2] >= 2
        assert [h.prog_id for h in query(p.if_a)] == [att.prog_id]
        assert att.detach()
    finally:
        prog.close()
    assert iface_state(None, p.if_a) == before


def test_query_lists_every_hook(netns_pair, counters, need_tcx):
    from xnf.core.attach import attach_xdp

    p = netns_pair
    x, t, c = (counter_program("xdp", counters), counter_program("sched_cls", counters),
               counter_program("sched_cls", counters))
    try:
        with attach_xdp(x, p.if_a, "skb", p.ns_a), attach_tc(t, p.if_a, "egress", p.ns_a, via="tcx"), \
                attach_tc(c, p.if_a, "ingress", p.ns_a, via="clsact"):
            found = query(p.if_a, p.ns_a)
            assert all(isinstance(h, HookProgram) for h in found)
            # via in the words of Attachment.via (the attach call's via=); held_by what keeps it
            assert [(h.hook, h.where, h.via, h.held_by) for h in found] == \
                [("xdp", "skb", "link", "link"), ("tcx", "egress", "tcx", "link"),
                 ("tc", "ingress", "clsact", "netlink")]
            assert [h.to_dict()["via"] for h in found] == ["link", "tcx", "clsact"]
            assert all(h.to_dict()["prog_id"] for h in found)
    finally:
        for prog in (x, t, c):
            prog.close()


def test_with_loaded_object(netns_pair, iface_state):
    """The committed tc_counter.bpf.o through the ELF loader, on both paths."""
    p = netns_pair
    before = iface_state(p.ns_a, p.if_a)
    with xnf.load("tests/bpf/tc_counter.bpf.o") as coll:
        hits = coll.maps["tc_hits"]
        with attach_tc(coll.programs["tc_count"], p.if_a, "ingress", p.ns_a, via="clsact"):
            assert p.ping(2) == 2 and hits[0] >= 2
        if features.have_tcx():
            with attach_tc(coll.programs["tcx_egress_count"], p.if_a, "egress", p.ns_a, via="tcx"):
                assert p.ping(2) == 2 and hits[2] >= 2
    assert iface_state(p.ns_a, p.if_a) == before


# --- bad input ------------------------------------------------------------------------

def test_bad_input(netns_pair, iface_state, counters):
    p = netns_pair
    before = iface_state(p.ns_a, p.if_a)
    tc_prog, xdp_prog = counter_program("sched_cls", counters), counter_program("xdp", counters)
    try:
        for via in ("clsact", "tcx"):
            with pytest.raises(InterfaceNotFoundError):
                attach_tc(tc_prog, "nope0", "ingress", p.ns_a, via=via)
            with pytest.raises(AttachError, match="is a xdp program"):
                attach_tc(xdp_prog, p.if_a, "ingress", p.ns_a, via=via)
        with pytest.raises(AttachError, match="unknown tc direction"):
            attach_tc(tc_prog, p.if_a, "sideways", p.ns_a)
        with pytest.raises(AttachError, match="unknown tc attach method"):
            attach_tc(tc_prog, p.if_a, "ingress", p.ns_a, via="magic")
        with pytest.raises(AttachError, match="not a program"):
            attach_tc(object(), p.if_a, "ingress", p.ns_a)
        with pytest.raises(AttachError, match="bad tc handle"):
            attach_cls_bpf(tc_prog, p.if_a, "x:y", p.ns_a)
    finally:
        tc_prog.close()
        xdp_prog.close()
    assert iface_state(p.ns_a, p.if_a) == before


@pytest.mark.parametrize("via", ["tcx", "clsact"])
def test_detach_after_the_namespace_is_gone(netns_pair, counters, via):
    if via == "tcx" and not features.have_tcx():
        pytest.skip("the kernel has no tcx links (Linux 6.6)")
    p = netns_pair
    prog = counter_program("sched_cls", counters)
    try:
        att = attach_tc(prog, p.if_a, "ingress", netns=p.ns_a, via=via)
        delete_ns_under(att, p.ns_a)
        assert not att.attached
        assert att.detach() is False
    finally:
        prog.close()
