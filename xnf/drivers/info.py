"""Which driver runs an interface, on which bus, with which firmware.

The ``ETHTOOL_GDRVINFO`` ioctl is the source: ethtool's netlink family has no driver
info message. It works in any network namespace (the socket is created there).
When a driver does not implement it, ``/sys/class/net/IF/device/driver`` still names
the driver for interfaces of the caller's own namespace.
"""
import ctypes
import errno
import fcntl
import os
import socket

import attrs

from xnf.core.errors import InterfaceNotFoundError
from xnf.core.kernel.netns import entered, ifindex
from xnf.core.uapi import ETHTOOL_GDRVINFO, IFNAMSIZ

SIOCETHTOOL = 0x8946  # linux/sockios.h


class ethtool_drvinfo(ctypes.Structure):
    """struct ethtool_drvinfo from include/uapi/linux/ethtool.h."""

    _fields_ = [("cmd", ctypes.c_uint32), ("driver", ctypes.c_char * 32),
                ("version", ctypes.c_char * 32), ("fw_version", ctypes.c_char * 32),
                ("bus_info", ctypes.c_char * 32), ("erom_version", ctypes.c_char * 32),
                ("reserved2", ctypes.c_char * 12), ("n_priv_flags", ctypes.c_uint32),
                ("n_stats", ctypes.c_uint32), ("testinfo_len", ctypes.c_uint32),
                ("eedump_len", ctypes.c_uint32), ("regdump_len", ctypes.c_uint32)]


class ifreq_data(ctypes.Structure):
    """struct ifreq with the ``ifr_data`` pointer member (24-byte union)."""

    _fields_ = [("ifr_name", ctypes.c_char * IFNAMSIZ), ("ifr_data", ctypes.c_void_p),
                ("_pad", ctypes.c_char * 16)]


@attrs.frozen
class DriverInfo:
    ifname: str
    ifindex: int
    driver: str = None
    """Kernel driver name as ethtool reports it (``nfp``, ``mlx5_core``, ``veth``); None if unknown."""
    version: str = None
    firmware: str = None
    bus_info: str = None
    source: str = "ethtool"
    """Where the driver name came from: ``ethtool`` (ioctl), ``sysfs`` or ``none``."""


def control_socket(netns=None):
    """A datagram socket living in ``netns`` (by name) for interface ioctls."""
    with entered(netns):
        return socket.socket(socket.AF_INET, socket.SOCK_DGRAM)


def _ethtool_drvinfo(sock, ifname):
    info = ethtool_drvinfo(cmd=ETHTOOL_GDRVINFO)
    req = ifreq_data(ifr_name=ifname.encode(), ifr_data=ctypes.addressof(info))
    try:
        fcntl.ioctl(sock.fileno(), SIOCETHTOOL, req)
    except OSError as e:
        if e.errno == errno.ENODEV:
            raise InterfaceNotFoundError(ifname) from None
        if e.errno in (errno.EOPNOTSUPP, errno.EINVAL):
            return None
        raise
    return info


def _text(raw):
    value = raw.decode("utf-8", "replace").strip()
    return value or None


def _sysfs_driver(ifname):
    link = f"/sys/class/net/{ifname}/device/driver"
    if os.path.islink(link):
        return os.path.basename(os.readlink(link))
    return None


def driver_info(ifname, netns=None):
    """DriverInfo for ``ifname`` in network namespace ``netns`` (None: the caller's)."""
    index = ifindex(ifname, netns)
    with control_socket(netns) as sock:
        raw = _ethtool_drvinfo(sock, ifname)
    if raw is not None and raw.driver:
        return DriverInfo(ifname, index, _text(raw.driver), _text(raw.version),
                          _text(raw.fw_version), _text(raw.bus_info), "ethtool")
    driver = _sysfs_driver(ifname) if netns is None else None
    return DriverInfo(ifname, index, driver, source="sysfs" if driver else "none")
