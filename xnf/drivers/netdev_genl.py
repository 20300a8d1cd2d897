"""The XDP, XSK and RX-metadata features a driver declares, as typed flags (Linux 6.3+).

The ``netdev`` generic-netlink family itself is declared once, in
:mod:`xnf.core.attach.netlink` (``netdev_dev_get``); layout: include/uapi/linux/netdev.h.
"""
import enum
import errno

import attrs

from xnf.core import uapi
from xnf.core.errors import InterfaceNotFoundError, NotSupportedError
from xnf.core.kernel.netns import NamespaceNotFoundError, exists


def _flags(name, prefix, doc):
    """An IntFlag of the generated ``prefix*`` constants (the enum's members, without its mask)."""
    flags = enum.IntFlag(name, {k[len(prefix):]: v for k, v in vars(uapi).items()
                                if k.startswith(prefix) and not k.endswith("_MASK")})
    flags.__doc__, flags.__module__ = doc, __name__
    return flags


XdpFeature = _flags("XdpFeature", "NETDEV_XDP_ACT_",
                    "enum netdev_xdp_act: what the driver's native XDP path can do (BASIC: XDP_ABORTED, "
                    "XDP_DROP, XDP_PASS, XDP_TX; NDO_XMIT: can be the target of XDP_REDIRECT; RX_SG: "
                    "multi-buffer on receive).")
XdpRxMetadata = _flags("XdpRxMetadata", "NETDEV_XDP_RX_METADATA_",
                       "enum netdev_xdp_rx_metadata: kfuncs an XDP program may call for RX metadata.")
XskFeature = _flags("XskFeature", "NETDEV_XSK_FLAGS_", "enum netdev_xsk_flags: AF_XDP TX metadata the driver honours.")


@attrs.frozen
class NetdevFeatures:
    ifindex: int
    xdp_features: XdpFeature
    xdp_zc_max_segs: int = None
    """Largest multi-buffer frame in AF_XDP zero-copy mode; None when not reported."""
    xdp_rx_metadata_features: XdpRxMetadata = XdpRxMetadata(0)
    xsk_features: XskFeature = XskFeature(0)


def netdev_features(ifindex, netns=None):
    """The NetdevFeatures of ``ifindex``; NotSupportedError before Linux 6.3 (no family)."""
    # pyroute2 (~100 ms): only where netlink is used
    from pyroute2.netlink.exceptions import NetlinkError

    from xnf.core.attach.netlink import netdev_dev_get  # pyroute2 (~100 ms): imported only where netlink is used

    if netns is not None and not exists(netns):
        raise NamespaceNotFoundError(netns)
    try:
        reply = netdev_dev_get(ifindex, netns)
    except NetlinkError as e:
        if e.code == errno.ENODEV:
            raise InterfaceNotFoundError(f"#{ifindex}", netns) from None
        raise
    if reply is None:
        raise NotSupportedError("the netdev generic netlink family (XDP feature reports)", "6.3")
    return NetdevFeatures(
        ifindex=reply.get_attr("NETDEV_A_DEV_IFINDEX"),
        xdp_features=XdpFeature(reply.get_attr("NETDEV_A_DEV_XDP_FEATURES") or 0),
        xdp_zc_max_segs=reply.get_attr("NETDEV_A_DEV_XDP_ZC_MAX_SEGS"),
        xdp_rx_metadata_features=XdpRxMetadata(reply.get_attr("NETDEV_A_DEV_XDP_RX_METADATA_FEATURES") or 0),
        xsk_features=XskFeature(reply.get_attr("NETDEV_A_DEV_XSK_FEATURES") or 0),
    )
