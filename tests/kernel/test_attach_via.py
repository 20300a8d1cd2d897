"""Attachment.via names what was chosen in the vocabulary of the attach call's ``via=``
(issue 12 item 4): ``tcx``/``clsact`` for tc (``cls_bpf`` under another qdisc),
``link``/``netlink`` for XDP. The pin record keeps storing ``link``/``netlink`` (what
holds the program, ``held_by``), so records written by earlier xnf versions, and by this
one, read alike."""
import os

import pytest
from netenv import in_ns
from progs import return_program

from xnf.core.attach import Attachment, attach_cls_bpf, attach_tc, attach_xdp
from xnf.core.attach.base import RECORD
from xnf.core.kernel import features
from xnf.core.kernel.pin import read_record, write_record

pytestmark = pytest.mark.root


def vias():
    return (["tcx"] if features.have_tcx() else []) + ["clsact"]


@pytest.mark.parametrize("via", ["tcx", "clsact"])
def test_tc_via_is_the_argument_and_survives_a_pin(netns_pair, bpffs, via):
    if via not in vias():
        pytest.skip("the kernel has no tcx links (Linux 6.6)")
    p = netns_pair
    prog = return_program("sched_cls", 0)
    try:
        att = attach_tc(prog, p.if_a, "ingress", netns=p.ns_a, via=via)
        held = "link" if via == "tcx" else "netlink"
        assert (att.via, att.held_by, att.to_dict()["via"]) == (via, held, via)
        path = os.path.join(bpffs, "a")
        att.pin(path)
        assert read_record(os.path.join(path, RECORD))["via"] == held           # the pin format is unchanged
        again = Attachment.load_pinned(path)
        assert (again.via, again.held_by) == (via, held)
        att.close()
        assert again.detach() is True
    finally:
        prog.close()


def test_an_old_record_reads_with_the_new_names(netns_pair, bpffs):
    """A record as xnf wrote it before (every field there is today's, ``via`` a mechanism)."""
    p = netns_pair
    prog = return_program("sched_cls", 0)
    try:
        att = attach_tc(prog, p.if_a, "egress", netns=p.ns_a, via="clsact")
        path = os.path.join(bpffs, "old")
        att.pin(path)
        old = dict(read_record(os.path.join(path, RECORD)), via="netlink")
        write_record(os.path.join(path, RECORD), old)
        again = Attachment.load_pinned(path)
        assert (again.via, again.held_by, again.prog_id) == ("clsact", "netlink", att.prog_id)
        att.close()
        assert again.detach() is True
    finally:
        prog.close()


def test_cls_bpf_under_a_qdisc(netns_pair):
    p = netns_pair
    in_ns(p.ns_a, "tc", "qdisc", "add", "dev", p.if_a, "root", "handle", "1:", "htb")
    prog = return_program("sched_cls", 0)
    try:
        with attach_cls_bpf(prog, p.if_a, "1:", netns=p.ns_a) as att:
            assert (att.via, att.held_by) == ("cls_bpf", "netlink")
    finally:
        prog.close()


@pytest.mark.parametrize("via", ["link", "netlink"])
def test_xdp_via_is_the_argument(netns_pair, via):
    if via == "link" and not features.have_xdp_link():
        pytest.skip("the kernel has no XDP links (Linux 5.9)")
    p = netns_pair
    prog = return_program("xdp", 2)  # XDP_PASS
    try:
        with attach_xdp(prog, p.if_a, mode="skb", netns=p.ns_a, via=via) as att:
            assert (att.via, att.held_by, att.to_dict()["via"]) == (via, via, via)
    finally:
        prog.close()
