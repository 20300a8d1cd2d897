"""detach_tc (issue 12 item 4): tc programs nobody holds an attachment for are removed by
filter handle/prio or by program id, clsact filters and tcx programs (with or without a
link) alike; ``tc filter show`` and pings counted by the programs are the oracles. Nothing matching
is an AttachError that leaves everything in place."""
import json

import pytest
from netenv import in_ns
from progs import TC_ACT_OK, TCX_NEXT, counter_program, return_program

from xnf.core.attach import attach_tc, detach_tc, query_tcx
from xnf.core.attach.tcx import attach_type
from xnf.core.errors import AttachError
from xnf.core.kernel import features, netns as _netns, syscall

pytestmark = pytest.mark.root


def tc_filters(ns, dev, direction):
    """(prio, handle, prog id) of each cls_bpf filter `tc filter show` lists."""
    out = json.loads(in_ns(ns, "tc", "-j", "filter", "show", "dev", dev, direction) or "[]")
    return sorted((f["pref"], int(f["options"]["handle"], 16), f["options"]["prog"]["id"])
                  for f in out if f.get("kind") == "bpf" and "options" in f)


@pytest.mark.parametrize("direction", ["ingress", "egress"])
def test_clsact_filter_by_handle_and_prio_then_by_prog_id(netns_pair, direction):
    p = netns_pair
    progs = [return_program("sched_cls", TC_ACT_OK) for _ in range(2)]
    try:
        atts = [attach_tc(prog, p.if_a, direction, netns=p.ns_a, via="clsact", prio=prio, handle=handle)
                for prog, prio, handle in zip(progs, (10, 20), (1, 2))]
        ids = [a.prog_id for a in atts]
        for a in atts:
            a.close()  # our references only: the filters stay, held by nobody
        assert tc_filters(p.ns_a, p.if_a, direction) == [(10, 1, ids[0]), (20, 2, ids[1])]

        [gone] = detach_tc(p.if_a, direction, handle="0x1", prio=10, netns=p.ns_a)
        assert (gone.prog_id, gone.prio, gone.handle) == (ids[0], 10, 1)
        assert tc_filters(p.ns_a, p.if_a, direction) == [(20, 2, ids[1])]

        [gone] = detach_tc(p.if_a, direction, prog_id=ids[1], netns=p.ns_a)
        assert gone.prog_id == ids[1]
        assert tc_filters(p.ns_a, p.if_a, direction) == []
    finally:
        for prog in progs:
            prog.close()


def test_nothing_matching_is_refused_and_removes_nothing(netns_pair):
    p = netns_pair
    prog = return_program("sched_cls", TC_ACT_OK)
    try:
        att = attach_tc(prog, p.if_a, "ingress", netns=p.ns_a, via="clsact", prio=10, handle=1)
        before = tc_filters(p.ns_a, p.if_a, "ingress")
        with pytest.raises(AttachError, match=r"no tc program with handle 0x1, prio 11 .*there: .*prio 10"):
            detach_tc(p.if_a, "ingress", handle=1, prio=11, netns=p.ns_a)
        with pytest.raises(AttachError, match="at egress"):  # the other direction holds nothing
            detach_tc(p.if_a, "egress", prog_id=att.prog_id, netns=p.ns_a)
        with pytest.raises(AttachError, match="needs prog_id, handle or prio"):
            detach_tc(p.if_a, "ingress", netns=p.ns_a)
        assert tc_filters(p.ns_a, p.if_a, "ingress") == before
        assert att.detach() is True
    finally:
        prog.close()


def ran(pair, counters, slot):
    """Whether the program counting into ``counters[slot]`` sees a ping's packets: the oracle
    for tcx, which bpftool before 7.3 does not list in `net show`."""
    count = counters[slot]
    assert pair.ping(2) == 2
    return counters[slot] > count


@pytest.mark.parametrize("direction", ["ingress", "egress"])
def test_tcx_link_by_prog_id(netns_pair, counters, direction):
    if not features.have_tcx():
        pytest.skip("the kernel has no tcx links (Linux 6.6)")
    p = netns_pair
    prog = counter_program("sched_cls", counters, 0, ret=TCX_NEXT)   # runs the next program too
    keep = counter_program("sched_cls", counters, 1)
    try:
        att = attach_tc(prog, p.if_a, direction, netns=p.ns_a, via="tcx")
        other = attach_tc(keep, p.if_a, direction, netns=p.ns_a, via="tcx")
        assert ran(p, counters, 0) and ran(p, counters, 1)
        [gone] = detach_tc(p.if_a, direction, prog_id=att.prog_id, netns=p.ns_a)
        assert (gone.prog_id, gone.link_id) == (att.prog_id, att.link_id)
        assert not ran(p, counters, 0) and ran(p, counters, 1)   # the other program stays
        assert [h.prog_id for h in query_tcx(p.if_a, direction, p.ns_a)[0]] == [other.prog_id]
        assert att.attached is False
        att.close()
        assert other.detach() is True
    finally:
        prog.close()
        keep.close()


def test_tcx_program_without_a_link_by_prog_id(netns_pair, counters):
    if not features.have_tcx():
        pytest.skip("the kernel has no tcx links (Linux 6.6)")
    p = netns_pair
    prog = counter_program("sched_cls", counters, 0)
    try:
        ifindex = _netns.ifindex(p.if_a, p.ns_a)
        with _netns.entered(p.ns_a):
            syscall.prog_attach(ifindex, int(prog), attach_type("ingress"))
        [hp] = query_tcx(p.if_a, "ingress", p.ns_a)[0]
        assert hp.link_id is None and (hp.via, hp.held_by) == ("tcx", "prog_attach") and ran(p, counters, 0)
        [gone] = detach_tc(p.if_a, "ingress", prog_id=hp.prog_id, netns=p.ns_a)
        assert gone.prog_id == hp.prog_id
        assert not ran(p, counters, 0) and query_tcx(p.if_a, "ingress", p.ns_a)[0] == []
    finally:
        prog.close()
