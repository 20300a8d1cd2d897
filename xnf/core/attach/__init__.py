"""Attach programs to interfaces: XDP (link or netlink), tc (tcx or clsact), cls_bpf under any qdisc;
and through links to probes, tracepoints, cgroups, namespaces, sockmaps and iterators (``links``).

Every attach returns an :class:`Attachment` with ``detach()``, ``replace()``,
``pin(path)`` and :meth:`Attachment.load_pinned`. Every function takes ``netns=``
(a name from ``ip netns``). pyroute2 is imported only when netlink is used.

The names below are imported from their modules on first use (PEP 562), so reading pins
(`xnf status`) does not import every attach kind.
"""
import importlib

# exported name -> (module of xnf.core.attach, its name there)
_EXPORTS = {
    **{name: ("base", name) for name in ("Attachment", "HookProgram")},
    **{name: ("links", name) for name in (
        "LinkAttachment", "attach_auto", "attach_cgroup", "attach_iter", "attach_kprobe", "attach_kprobe_multi", "attach_ksyscall",
        "attach_netns", "attach_raw_tracepoint", "attach_sockmap", "attach_trace", "attach_tracepoint",
        "attach_uprobe", "attach_uprobe_multi", "attach_usdt")},
    **{name: ("tc", name) for name in ("TcAttachment", "attach_cls_bpf", "attach_tc", "detach_tc", "query_tc")},
    **{name: ("tcx", name) for name in ("TcxAttachment", "attach_tcx", "query_tcx")},
    **{name: ("xdp", name) for name in ("XdpAttachment", "attach_xdp", "detach_xdp")},
    "query_xdp": ("xdp", "query"),
}

__all__ = ["Attachment", "HookProgram", "XdpAttachment", "TcAttachment", "TcxAttachment",
           "attach_xdp", "attach_tc", "attach_tcx", "attach_cls_bpf", "detach_xdp", "detach_tc",
           "query_xdp", "query_tc", "query_tcx", "query", "load_pinned",
           "LinkAttachment", "attach_kprobe", "attach_ksyscall", "attach_kprobe_multi", "attach_uprobe",
           "attach_uprobe_multi",
           "attach_usdt", "attach_tracepoint", "attach_raw_tracepoint", "attach_trace", "attach_cgroup",
           "attach_netns", "attach_sockmap", "attach_iter", "attach_auto"]


def __getattr__(name):
    """An exported name, imported from its module on first use and kept."""
    try:
        module, attr = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


def load_pinned(path):
    """The attachment pinned at ``path`` (see :meth:`Attachment.pin`)."""
    from xnf.core.attach.base import Attachment

    return Attachment.load_pinned(path)


def query(ifname, netns=None):
    """Every program attached to ``ifname``: XDP modes, tcx hooks and cls_bpf filters."""
    from xnf.core.attach import tc, tcx, xdp
    from xnf.core.kernel import features

    found = list(xdp.query(ifname, netns).values())
    if features.have_tcx():
        for direction in ("ingress", "egress"):
            found += tcx.query_tcx(ifname, direction, netns)[0]
    return found + tc.query_tc(ifname, netns)
