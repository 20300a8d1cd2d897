"""Binding an object to an offload device, and the checks the kernel would make too late.

The kernel refuses a device-bound program attached elsewhere only at attach time, and
a program whose maps live on another device only after the maps were created. Every
check here runs on specs or on a live program's info before anything is loaded or
attached, and raises a typed error naming both sides.
"""
import os

from xnf.core.errors import AttachError, ModeNotSupportedError
from xnf.core.kernel import syscall
from xnf.core.kernel.info import bpf_prog_info
from xnf.core.kernel.netns import NamespaceNotFoundError, ifindex as interface_index, netns_path
from xnf.drivers.capabilities import Capabilities
from xnf.drivers.ethtool_features import features
from xnf.offload.check import check_object
from xnf.offload.rules import OffloadTarget, target as rules_for


class OffloadNotSupportedError(ModeNotSupportedError):
    """The interface has no BPF offload (or not with the firmware it runs)."""


class DeviceMismatchError(AttachError):
    """A program, its maps and the interface do not agree on the device they belong to."""


class UnboundProgramError(ModeNotSupportedError):
    """Offload mode asked for a program that was loaded for the host."""


def prepare_offload(spec, ifname, netns=None, programs=None):
    """A copy of ``spec`` checked against the NIC's rules and bound to ``ifname``.

    Raises OffloadNotSupportedError when the device cannot offload, OffloadRejected
    (from :mod:`xnf.offload.check`) when a program or map breaks the device's rules,
    DeviceMismatchError when the spec was bound to another device before. ``spec`` is
    left untouched, so the same object can still be loaded on the host.
    """
    caps = Capabilities.for_interface(ifname, netns)
    support = caps.modes["offload"]
    if not support.supported:
        reason = support.reason or "nothing says it can"
        raise OffloadNotSupportedError(f"{ifname} cannot offload BPF programs: {reason}",
                                       "use --mode native or skb, or a NIC that offloads (nfp, netdevsim)")
    names = list(spec.programs) if programs is None else list(programs)
    _check_not_bound_elsewhere(spec, names, caps.ifindex, ifname)
    target = rules_for(caps.offload_target)
    check_object(spec, target, names)
    bound = spec.copy()
    bind(bound, caps.ifindex, names)
    return bound


def bind(spec, ifindex, programs=None):
    """Set ``ifindex`` on the programs (default: all) and on every map but offload-neutral ones."""
    for name in (spec.programs if programs is None else programs):
        spec.programs[name].ifindex = ifindex
    for m in spec.maps.values():
        m.ifindex = 0 if m.type in OffloadTarget.neutral_map_types else ifindex
    return spec


def _check_not_bound_elsewhere(spec, names, ifindex, ifname):
    for name in names:
        p = spec.programs[name]
        if p.ifindex not in (0, ifindex):
            raise DeviceMismatchError(f"program {name!r} is already bound to ifindex {p.ifindex}, not {ifname}",
                                      "load a fresh spec (xnf.open_object) for each device")


def check_binding(spec, programs=None):
    """Before load: every map a program uses must live where the program runs.

    A bound program needs its (non-neutral) maps bound to the same device, and a host
    program cannot use a map that lives on a device; the kernel says "offload device
    mismatch between prog and map" only after the maps exist.
    """
    for name in (spec.programs if programs is None else programs):
        p = spec.programs[name]
        used = {ins.reference[1] for ins in p.instructions
                if ins.reference and ins.reference[0] in ("map", "data")}
        for map_name in sorted(used):
            m = spec.maps.get(map_name)
            if m is None or m.type in OffloadTarget.neutral_map_types or m.ifindex == p.ifindex:
                continue
            where = {0: "the host"}
            raise DeviceMismatchError(
                f"program {name!r} runs on {where.get(p.ifindex, f'ifindex {p.ifindex}')} but its map "
                f"{map_name!r} lives on {where.get(m.ifindex, f'ifindex {m.ifindex}')}",
                "bind programs and maps together with xnf.offload.device.bind() or prepare_offload()")


def bound_device(program):
    """(ifindex, netns inode, name) of a live program; ifindex 0 for a host program."""
    fd = program if isinstance(program, int) else int(getattr(program, "fd", program))
    info = bpf_prog_info()
    syscall.obj_get_info_by_fd(fd, info)
    return info.ifindex, info.netns_ino, bytes(info.name).rstrip(b"\0").decode() or f"id {info.id}"


def _netns_inode(netns):
    path = "/proc/thread-self/ns/net" if netns is None else netns_path(netns)
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        raise NamespaceNotFoundError(netns) from None


def check_xdp_attach(program, ifname, mode, netns=None):
    """Refuse, before attaching, what the kernel would refuse: an offload-mode attach of
    a host program, a device-bound program in skb/native mode, or on another device."""
    ifindex, prog_ns, name = bound_device(program)
    _check_device(name, ifindex, prog_ns, ifname, netns)
    if mode == "offload" and not ifindex:
        raise UnboundProgramError(f"program {name!r} was loaded for the host and cannot run in XDP offload mode",
                                  f"load it bound to {ifname} (xnf.offload.device.prepare_offload)")
    if mode != "offload" and ifindex:
        raise DeviceMismatchError(f"program {name!r} is bound to a device and can only run in offload mode, "
                                  f"not {mode}", "attach it with mode='offload', or load a host copy")


def check_tc_attach(program, ifname, skip_sw, netns=None):
    """The tc counterpart: a device-bound program needs ``skip_sw`` on its own device,
    and ``skip_sw`` needs the interface's ``hw-tc-offload`` feature on."""
    ifindex, prog_ns, name = bound_device(program)
    _check_device(name, ifindex, prog_ns, ifname, netns)
    if ifindex and not skip_sw:
        raise DeviceMismatchError(f"program {name!r} is bound to a device; tc must attach it with skip_sw",
                                  "pass skip_sw=True (and enable hw-tc-offload on the interface)")
    if skip_sw:
        tc = features(ifname, netns).get("hw-tc-offload")
        if tc is None or not tc.active:
            fixed = tc is None or not tc.changeable
            raise OffloadNotSupportedError(
                f"{ifname} has hw-tc-offload off{' (fixed by the driver)' if fixed else ''}: "
                "tc cannot run a filter with skip_sw there",
                "use a NIC that offloads tc" if fixed else
                "turn it on: xnf.drivers.ethtool_features.set_feature(IF, 'hw-tc-offload', True)")


def _check_device(name, prog_ifindex, prog_ns, ifname, netns):
    if not prog_ifindex:
        return
    target = interface_index(ifname, netns)
    if prog_ifindex != target or prog_ns != _netns_inode(netns):
        raise DeviceMismatchError(f"program {name!r} is bound to another device (ifindex {prog_ifindex}), "
                                  f"not {ifname}", f"load it again bound to {ifname}")
