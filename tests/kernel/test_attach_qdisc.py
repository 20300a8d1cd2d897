"""The qdisc layer: cls_bpf under any qdisc parent, classifying into HTB classes.

An HTB root ``1:`` with classes ``1:10`` and ``1:20`` (default) on the egress of
``if_a``; pings from ``ns_a`` leave through it, and ``tc -s class show`` counts which
class they went through.
"""
import pytest
from netenv import in_ns
from progs import classify_program, counter_program

import xnf
from xnf.core.attach import attach_cls_bpf, attach_tc, query_tc
from xnf.core.errors import AttachError

pytestmark = pytest.mark.root

CLASS_10, CLASS_20 = 0x10010, 0x10020



@pytest.fixture
def htb(netns_pair):
    p = netns_pair
    tc = ("tc",)
    in_ns(p.ns_a, *tc, "qdisc", "add", "dev", p.if_a, "root", "handle", "1:", "htb", "default", "20")
    for cls in ("1:10", "1:20"):
        in_ns(p.ns_a, *tc, "class", "add", "dev", p.if_a, "parent", "1:", "classid", cls,
              "htb", "rate", "100mbit")
    return p


def class_packets(p):
    """{classid: packets sent} from ``tc -s class show`` (its -j ignores classes in 6.1)."""
    counts, current = {}, None
    for line in in_ns(p.ns_a, "tc", "-s", "class", "show", "dev", p.if_a).splitlines():
        words = line.split()
        if words[:1] == ["class"]:
            current = words[2]
        elif words[:1] == ["Sent"] and current:
            counts[current] = int(words[3])
    return counts


def test_direct_action_classid_under_htb(htb, iface_state, counters):
    p = htb
    before_classes = class_packets(p)
    prog = classify_program(counters, 0, CLASS_10)
    try:
        att = attach_cls_bpf(prog, p.if_a, "1:", netns=p.ns_a)
        assert att.parent == 0x10000 and att.direct_action and not att.created_qdisc
        shown = in_ns(p.ns_a, "tc", "filter", "show", "dev", p.if_a, "parent", "1:")
        assert f"id {att.prog_id} " in shown and "direct-action" in shown
        assert [(h.where, h.prog_id) for h in query_tc(p.if_a, p.ns_a)] == [("1:0", att.prog_id)]
        state = iface_state(p.ns_a, p.if_a)
        assert p.ping(3, to="b") == 3 and counters[0] >= 3
        after = class_packets(p)
        assert after["1:10"] - before_classes["1:10"] >= 3
        assert after["1:20"] == before_classes["1:20"]
        assert att.detach()
    finally:
        prog.close()
    now = iface_state(p.ns_a, p.if_a)
    assert now["filter_ingress"] == state["filter_ingress"]
    assert "bpf" not in in_ns(p.ns_a, "tc", "filter", "show", "dev", p.if_a, "parent", "1:")
    assert "qdisc htb 1: root" in now["qdisc"]  # the qdisc we did not create stays
    settled = class_packets(p)
    assert p.ping(2, to="b") == 2
    assert class_packets(p)["1:20"] - settled["1:20"] >= 2


def test_priority_from_clsact_egress_selects_htb_class(htb, counters):
    """skb->priority set at clsact egress (before the qdisc) picks the HTB class."""
    p = htb
    start = class_packets(p)
    prog = classify_program(counters, 1, CLASS_10, field="priority")
    try:
        with attach_tc(prog, p.if_a, "egress", p.ns_a, via="clsact") as att:
            assert att.created_qdisc
            assert p.ping(3, to="b") == 3 and counters[1] >= 3
            after = class_packets(p)
            assert after["1:10"] - start["1:10"] >= 3 and after["1:20"] == start["1:20"]
    finally:
        prog.close()
    assert "clsact" not in in_ns(p.ns_a, "tc", "qdisc", "show", "dev", p.if_a)


def test_loaded_set_classid_program(htb):
    """tc_counter.bpf.o's set_classid, configured through its map, under HTB 1:."""
    p = htb
    start = class_packets(p)
    with xnf.load("tests/bpf/tc_counter.bpf.o") as coll:
        coll.maps["class_cfg"][0] = CLASS_10
        with attach_cls_bpf(coll.programs["set_classid"], p.if_a, "1:0", p.ns_a, prio=1):
            assert p.ping(2, to="b") == 2
            assert coll.maps["class_cfg"][2] == CLASS_10
        assert class_packets(p)["1:10"] - start["1:10"] >= 2


def test_classic_mode_with_classid(htb, counters):
    """Without direct action, the filter's classid picks the class when the program returns -1."""
    p = htb
    start = class_packets(p)
    prog = counter_program("sched_cls", counters, 2, ret=-1)
    try:
        with attach_cls_bpf(prog, p.if_a, "1:", p.ns_a, direct_action=False, classid=CLASS_10) as att:
            assert not att.direct_action
            assert p.ping(2, to="b") == 2
    finally:
        prog.close()
    assert class_packets(p)["1:10"] - start["1:10"] >= 2


def test_missing_parent_is_refused(netns_pair, iface_state, counters):
    p = netns_pair
    before = iface_state(p.ns_a, p.if_a)
    prog = classify_program(counters, 0, CLASS_10)
    try:
        with pytest.raises(AttachError, match="parent 7:0"):
            attach_cls_bpf(prog, p.if_a, "7:", netns=p.ns_a)
    finally:
        prog.close()
    assert iface_state(p.ns_a, p.if_a) == before


def test_pinned_qdisc_filter_survives_and_is_found(htb, bpffs, counters):
    from xnf.core.attach import load_pinned

    p = htb
    prog = classify_program(counters, 0, CLASS_10)
    try:
        att = attach_cls_bpf(prog, p.if_a, "1:", netns=p.ns_a)
        att.pin(f"{bpffs}/htb-filter")
        att.close()
    finally:
        prog.close()
    again = load_pinned(f"{bpffs}/htb-filter")
    assert (again.parent, again.prio, again.handle) == (att.parent, att.prio, att.handle)
    assert again.attached
    assert again.detach()
    assert query_tc(p.if_a, p.ns_a) == []
