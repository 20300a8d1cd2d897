"""Netdev features by name (``ethtool -k`` / ``-K``), through the ethtool ioctl.

tc offload (cls_bpf ``skip_sw``) needs the ``hw-tc-offload`` feature on; this reads and
sets it, like any other feature, without shelling out. The feature names and their
bit positions come from the kernel (``ETH_SS_FEATURES`` string set), so nothing here
depends on a kernel version's bit layout.
"""
import ctypes
import errno
import fcntl

import attrs

from xnf.core.errors import ConfigError, InterfaceNotFoundError, NotSupportedError
from xnf.core.uapi import (ETH_GSTRING_LEN, ETH_SS_FEATURES, ETHTOOL_GFEATURES, ETHTOOL_GSSET_INFO, ETHTOOL_GSTRINGS,
                           ETHTOOL_SFEATURES)
from xnf.drivers.info import IFNAMSIZ, SIOCETHTOOL, control_socket, ifreq_data


@attrs.frozen
class Feature:
    name: str
    active: bool
    requested: bool
    changeable: bool
    """False for features ethtool shows as ``[fixed]``."""


def _ioctl(sock, ifname, buf):
    req = ifreq_data(ifr_name=ifname.encode(), ifr_data=ctypes.addressof(buf))
    try:
        fcntl.ioctl(sock.fileno(), SIOCETHTOOL, req)
    except OSError as e:
        if e.errno == errno.ENODEV:
            raise InterfaceNotFoundError(ifname) from None
        if e.errno == errno.EOPNOTSUPP:
            raise NotSupportedError(f"ethtool feature flags on {ifname}") from None
        raise


def _u32s(count):
    return (ctypes.c_uint32 * count)()


def _names(sock, ifname):
    info = _u32s(5)  # cmd, reserved, sset_mask (u64), data[1]
    info[0] = ETHTOOL_GSSET_INFO
    info[2] = 1 << ETH_SS_FEATURES
    _ioctl(sock, ifname, info)
    count = info[4]
    raw = (ctypes.c_uint8 * (12 + count * ETH_GSTRING_LEN))()
    ctypes.memmove(raw, (ctypes.c_uint32 * 3)(ETHTOOL_GSTRINGS, ETH_SS_FEATURES, count), 12)
    _ioctl(sock, ifname, raw)
    data = bytes(raw)[12:]
    return [data[i * ETH_GSTRING_LEN:(i + 1) * ETH_GSTRING_LEN].split(b"\0", 1)[0].decode()
            for i in range(count)]


def _read(sock, ifname):
    """(feature names by bit, GFEATURES buffer)."""
    names = _names(sock, ifname)
    blocks = (len(names) + 31) // 32
    buf = _u32s(2 + 4 * blocks)  # cmd, size, {available, requested, active, never_changed}[]
    buf[0], buf[1] = ETHTOOL_GFEATURES, blocks
    _ioctl(sock, ifname, buf)
    return names, buf


def features(ifname, netns=None):
    """{name: Feature} of ``ifname`` in ``netns``."""
    if len(ifname.encode()) >= IFNAMSIZ:
        raise InterfaceNotFoundError(ifname, netns)
    with control_socket(netns) as sock:
        names, buf = _read(sock, ifname)
    out = {}
    for i, name in enumerate(names):
        if name:
            base, bit = 2 + 4 * (i // 32), 1 << (i % 32)
            out[name] = Feature(name, bool(buf[base + 2] & bit), bool(buf[base + 1] & bit),
                                bool(buf[base] & bit) and not buf[base + 3] & bit)
    return out


def set_feature(ifname, name, on, netns=None):
    """Turn feature ``name`` on or off (``ethtool -K IF NAME on|off``); returns the new Feature.

    Refuses a fixed or unknown feature before asking the kernel, and checks that the
    kernel really changed it (it may keep a feature that depends on another).
    """
    current = features(ifname, netns)
    if name not in current:
        raise ConfigError(f"{ifname} has no feature {name!r}", "list them with `ethtool -k`")
    feature = current[name]
    if feature.active == bool(on):
        return feature
    if not feature.changeable:
        raise NotSupportedError(f"changing {name} on {ifname} (the driver fixes it "
                                f"{'on' if feature.active else 'off'})")
    with control_socket(netns) as sock:
        names = _names(sock, ifname)
        index, blocks = names.index(name), (len(names) + 31) // 32
        buf = _u32s(2 + 2 * blocks)  # cmd, size, {valid, requested}[]
        buf[0], buf[1] = ETHTOOL_SFEATURES, blocks
        buf[2 + 2 * (index // 32)] = 1 << (index % 32)
        buf[3 + 2 * (index // 32)] = (1 << (index % 32)) if on else 0
        _ioctl(sock, ifname, buf)
    result = features(ifname, netns)[name]
    if result.active != bool(on):
        raise NotSupportedError(f"turning {name} {'on' if on else 'off'} on {ifname} "
                                "(the kernel kept it; another feature it depends on may be off)")
    return result
