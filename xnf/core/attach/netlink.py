"""Netlink plumbing shared by the XDP and tc attach paths (pyroute2, imported lazily).

This module imports pyroute2 at the top, so only import it from inside functions:
``import xnf`` must stay light.

pyroute2 knows ``IFLA_XDP`` but its request filter maps only the fd, and its
cls_bpf options stop at ``TCA_BPF_FLAGS``. The XDP path therefore sends the
``IFLA_XDP`` NLAs raw, and the tc path uses :class:`tcmsg_bpf`, a ``tcmsg`` whose
cls_bpf options carry the whole kernel layout (``TCA_BPF_FLAGS_GEN`` for
skip_sw/skip_hw, ``TCA_BPF_TAG``, ``TCA_BPF_ID``), for requests and for dumps.
"""
import contextlib
import os

from pyroute2 import IPRoute
from pyroute2.netlink import nla
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import RTM_NEWTFILTER
from pyroute2.netlink.rtnl.tcmsg import tcmsg

from xnf.core import uapi
from xnf.core.kernel import netns as _netns

__all__ = ["NetlinkError", "rtnl", "request", "kernel_message", "tcmsg_bpf", "cls_bpf_options",
           "xdp_features"]


@contextlib.contextmanager
def rtnl(netns=None):
    """An IPRoute socket inside ``netns`` (created there with setns, closed on exit).

    Creating the socket from a thread that has entered the namespace binds it there;
    unlike ``IPRoute(netns=...)`` this forks no helper and never creates a namespace.
    The socket decodes filter dumps with :class:`tcmsg_bpf`.
    """
    with _netns.entered(netns):
        ipr = IPRoute(ext_ack=True)
    try:
        ipr.marshal.msg_map[RTM_NEWTFILTER] = tcmsg_bpf
        yield ipr
    finally:
        ipr.close()


def request(ipr, msg, msg_type, msg_flags):
    """Send one raw message and wait for the kernel's answer; raises NetlinkError.

    (``nlm_request_batch`` rather than ``nlm_request``, whose sync wrapper breaks in
    pyroute2 0.9.)
    """
    msg["header"]["type"] = msg_type
    msg["header"]["flags"] = msg_flags
    return ipr.nlm_request_batch([msg])


def kernel_message(error):
    """The kernel's extack text of a NetlinkError, else strerror."""
    if len(error.args) > 1 and error.args[1]:
        return str(error.args[1])
    return os.strerror(error.code)


class cls_bpf_options(nla):
    """``TCA_OPTIONS`` of a ``bpf`` filter, as in include/uapi/linux/pkt_cls.h."""

    nla_map = (
        ("TCA_BPF_UNSPEC", "none"),
        ("TCA_BPF_ACT", "hex"),
        ("TCA_BPF_POLICE", "hex"),
        ("TCA_BPF_CLASSID", "uint32"),
        ("TCA_BPF_OPS_LEN", "uint16"),
        ("TCA_BPF_OPS", "hex"),
        ("TCA_BPF_FD", "uint32"),
        ("TCA_BPF_NAME", "asciiz"),
        ("TCA_BPF_FLAGS", "uint32"),
        ("TCA_BPF_FLAGS_GEN", "uint32"),
        ("TCA_BPF_TAG", "cdata"),
        ("TCA_BPF_ID", "uint32"),
    )


class tcmsg_bpf(tcmsg):
    """A tcmsg that codes cls_bpf options completely; other kinds decode as pyroute2 does."""

    nla_map = tcmsg.nla_map
    # pyroute2 compiles nla_map once per class into name-mangled class attributes that
    # subclasses inherit; reset the flag so this class compiles its own table (with the
    # get_options below) instead of reusing tcmsg's.
    _nlmsg_base__compiled_nla = False

    @staticmethod
    def get_options(self, *argv, **kwarg):
        if self.get_attr("TCA_KIND") == "bpf":
            return cls_bpf_options
        return tcmsg.get_options(self, *argv, **kwarg)


# --- genl "netdev": what XDP a device can do (Linux 6.3) ---------------------------------

XDP_FEATURE_BITS = {name[len("NETDEV_XDP_ACT_"):].lower(): bit for name, bit in vars(uapi).items()
                    if name.startswith("NETDEV_XDP_ACT_") and name != "NETDEV_XDP_ACT_MASK"}


def _netdevmsg():
    # pyroute2 (~100 ms): only where netlink is used
    from pyroute2.netlink import genlmsg

    class netdevmsg(genlmsg):
        nla_map = (
            ("NETDEV_A_DEV_UNSPEC", "none"),
            ("NETDEV_A_DEV_IFINDEX", "uint32"),
            ("NETDEV_A_DEV_PAD", "none"),
            ("NETDEV_A_DEV_XDP_FEATURES", "uint64"),
            ("NETDEV_A_DEV_XDP_ZC_MAX_SEGS", "uint32"),
            ("NETDEV_A_DEV_XDP_RX_METADATA_FEATURES", "uint64"),
            ("NETDEV_A_DEV_XSK_FEATURES", "uint64"),
        )

    return netdevmsg


def netdev_dev_get(ifindex, netns=None):
    """The ``netdev`` genetlink family's reply for ``ifindex`` (XDP, XSK and RX metadata
    features), or None when the kernel has no such family (before Linux 6.3).

    Other netlink errors (ENODEV for a missing device) are raised as NetlinkError.
    """
    # pyroute2 (~100 ms): only where netlink is used
    from pyroute2.netlink import NLM_F_ACK, NLM_F_REQUEST
    from pyroute2.netlink.generic import GenericNetlinkSocket

    msg_class = _netdevmsg()
    with _netns.entered(netns):
        sock = GenericNetlinkSocket()
    try:
        try:
            sock.bind("netdev", msg_class)
        except NetlinkError:
            return None
        msg = msg_class()
        msg["cmd"] = uapi.NETDEV_CMD_DEV_GET
        msg["version"] = 1
        msg["attrs"] = [("NETDEV_A_DEV_IFINDEX", ifindex)]
        replies = [r for r in request(sock, msg, sock.prid, NLM_F_REQUEST | NLM_F_ACK)
                   if r.get_attr("NETDEV_A_DEV_IFINDEX") is not None]
        return replies[0] if replies else None
    finally:
        sock.close()


def xdp_features(ifindex, netns=None):
    """The device's ``NETDEV_XDP_ACT_*`` names, or None if the kernel cannot say."""
    try:
        reply = netdev_dev_get(ifindex, netns)
    except NetlinkError:
        return None
    if reply is None:
        return None
    bits = reply.get_attr("NETDEV_A_DEV_XDP_FEATURES") or 0
    return sorted(name for name, bit in XDP_FEATURE_BITS.items() if bits & bit)
