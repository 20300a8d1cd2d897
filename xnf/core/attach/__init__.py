"""Attach programs to interfaces: XDP (link or netlink), tc (tcx or clsact), cls_bpf under any qdisc;
and through links to probes, tracepoints, cgroups, namespaces, sockmaps and iterators (``links``).

Every attach returns an :class:`Attachment` with ``detach()``, ``replace()``,
``pin(path)`` and :meth:`Attachment.load_pinned`. Every function takes ``netns=``
(a name from ``ip netns``). pyroute2 is imported only when netlink is used.
"""
from xnf.core.attach.base import Attachment, HookProgram
from xnf.core.attach.links import (LinkAttachment, attach_cgroup, attach_iter, attach_kprobe, attach_kprobe_multi,
                                   attach_ksyscall, attach_netns, attach_raw_tracepoint, attach_sockmap,
                                   attach_trace, attach_tracepoint, attach_uprobe, attach_uprobe_multi,
                                   attach_usdt)
from xnf.core.attach.tc import TcAttachment, attach_cls_bpf, attach_tc, detach_tc, query_tc
from xnf.core.attach.tcx import TcxAttachment, attach_tcx, query_tcx
from xnf.core.attach.xdp import XdpAttachment, attach_xdp, detach_xdp, query as query_xdp
from xnf.core.kernel import features

__all__ = ["Attachment", "HookProgram", "XdpAttachment", "TcAttachment", "TcxAttachment",
           "attach_xdp", "attach_tc", "attach_tcx", "attach_cls_bpf", "detach_xdp", "detach_tc",
           "query_xdp", "query_tc", "query_tcx", "query", "load_pinned",
           "LinkAttachment", "attach_kprobe", "attach_ksyscall", "attach_kprobe_multi", "attach_uprobe",
           "attach_uprobe_multi",
           "attach_usdt", "attach_tracepoint", "attach_raw_tracepoint", "attach_trace", "attach_cgroup",
           "attach_netns", "attach_sockmap", "attach_iter"]


def load_pinned(path):
    """The attachment pinned at ``path`` (see :meth:`Attachment.pin`)."""
    return Attachment.load_pinned(path)


def query(ifname, netns=None):
    """Every program attached to ``ifname``: XDP modes, tcx hooks and cls_bpf filters."""
    found = list(query_xdp(ifname, netns).values())
    if features.have_tcx():
        for direction in ("ingress", "egress"):
            found += query_tcx(ifname, direction, netns)[0]
    return found + query_tc(ifname, netns)
