"""The ``netdev`` generic-netlink family: the XDP features a driver declares (Linux 6.3+).

pyroute2 has no binding for this family, so it is declared here the way pyroute2
declares its own families (a ``genlmsg`` subclass with an ``nla_map`` and a socket
bound to the family name). Layout: include/uapi/linux/netdev.h.
"""
import enum
import errno

import attrs

from xnf.core.errors import InterfaceNotFoundError, NotSupportedError
from xnf.core.netns import NamespaceNotFoundError, exists

NETDEV_FAMILY_NAME = "netdev"
NETDEV_CMD_DEV_GET = 1


class XdpFeature(enum.IntFlag):
    """enum netdev_xdp_act: what the driver's native XDP path can do."""

    BASIC = 1          # XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX
    REDIRECT = 2
    NDO_XMIT = 4       # can be the target of XDP_REDIRECT
    XSK_ZEROCOPY = 8
    HW_OFFLOAD = 16
    RX_SG = 32         # multi-buffer (frags) on receive
    NDO_XMIT_SG = 64


class XdpRxMetadata(enum.IntFlag):
    """enum netdev_xdp_rx_metadata: kfuncs an XDP program may call for RX metadata."""

    TIMESTAMP = 1
    HASH = 2
    VLAN_TAG = 4


class XskFeature(enum.IntFlag):
    """enum netdev_xsk_flags: AF_XDP TX metadata the driver honours."""

    TX_TIMESTAMP = 1
    TX_CHECKSUM = 2
    TX_LAUNCH_TIME_FIFO = 4


@attrs.frozen
class NetdevFeatures:
    ifindex: int
    xdp_features: XdpFeature
    xdp_zc_max_segs: int = None
    """Largest multi-buffer frame in AF_XDP zero-copy mode; None when not reported."""
    xdp_rx_metadata_features: XdpRxMetadata = XdpRxMetadata(0)
    xsk_features: XskFeature = XskFeature(0)


def _message_class():
    from pyroute2.netlink import genlmsg

    class netdev_dev_msg(genlmsg):
        prefix = "NETDEV_A_DEV_"
        nla_map = (
            ("NETDEV_A_DEV_UNSPEC", "none"),
            ("NETDEV_A_DEV_IFINDEX", "uint32"),
            ("NETDEV_A_DEV_PAD", "none"),
            ("NETDEV_A_DEV_XDP_FEATURES", "uint64"),
            ("NETDEV_A_DEV_XDP_ZC_MAX_SEGS", "uint32"),
            ("NETDEV_A_DEV_XDP_RX_METADATA_FEATURES", "uint64"),
            ("NETDEV_A_DEV_XSK_FEATURES", "uint64"),
        )

    return netdev_dev_msg


def _socket(netns):
    if not exists(netns):  # pyroute2 would create a missing namespace
        raise NamespaceNotFoundError(netns)
    from pyroute2.netlink.generic import AsyncGenericNetlinkSocket, GenericNetlinkSocket

    class AsyncNetdevSocket(AsyncGenericNetlinkSocket):
        module_err_level = "debug"  # a missing family is an answer here, not an error

    class NetdevSocket(GenericNetlinkSocket):
        async_class = AsyncNetdevSocket

    return NetdevSocket(netns=netns) if netns else NetdevSocket()


def netdev_features(ifindex, netns=None):
    """The NetdevFeatures of ``ifindex``; NotSupportedError before Linux 6.3 (no family)."""
    from pyroute2.netlink import NLM_F_REQUEST
    from pyroute2.netlink.exceptions import NetlinkError

    msg_class = _message_class()
    sock = _socket(netns)
    try:
        try:
            sock.bind(NETDEV_FAMILY_NAME, msg_class)
        except NetlinkError as e:
            if e.code in (errno.ENOENT, errno.ENOTSUP):
                raise NotSupportedError("the netdev generic netlink family (XDP feature reports)",
                                        "6.3") from None
            raise
        msg = msg_class()
        msg["cmd"] = NETDEV_CMD_DEV_GET
        msg["version"] = 1
        msg["attrs"] = [("NETDEV_A_DEV_IFINDEX", ifindex)]
        try:
            (reply,) = tuple(sock.nlm_request(msg, msg_type=sock.prid, msg_flags=NLM_F_REQUEST))
        except NetlinkError as e:
            if e.code == errno.ENODEV:
                raise InterfaceNotFoundError(f"#{ifindex}", netns) from None
            raise
    finally:
        sock.close()
    return NetdevFeatures(
        ifindex=reply.get_attr("NETDEV_A_DEV_IFINDEX"),
        xdp_features=XdpFeature(reply.get_attr("NETDEV_A_DEV_XDP_FEATURES") or 0),
        xdp_zc_max_segs=reply.get_attr("NETDEV_A_DEV_XDP_ZC_MAX_SEGS"),
        xdp_rx_metadata_features=XdpRxMetadata(reply.get_attr("NETDEV_A_DEV_XDP_RX_METADATA_FEATURES") or 0),
        xsk_features=XskFeature(reply.get_attr("NETDEV_A_DEV_XSK_FEATURES") or 0),
    )
