"""Ask the kernel what an interface can do, for drivers without a profile.

Three sources, none of which changes the interface:

* the ``netdev`` genl family's XDP features (Linux 6.3+);
* the XDP programs attached right now (``IFLA_XDP``): a mode in use is a mode that works;
* an offload probe, as ``bpftool feature probe dev`` does: load ``r0 = XDP_PASS; exit``
  bound to the device (``prog_ifindex``) and close it again. The kernel accepts the
  load only when the device has a BPF offload implementation. Nothing is attached.
  The load resolves the ifindex in the caller's namespace, so it is skipped for other
  namespaces.
"""
import ctypes
import errno

import attrs

from xnf.core.attach.xdp import query
from xnf.core.errors import BPFError, NotSupportedError
from xnf.core.kernel import syscall
from xnf.core.kernel.netns import NamespaceNotFoundError, entered, exists
from xnf.core.object.insn import BPF_ALU64, BPF_K, BPF_MOV, EXIT, Instruction, encode
from xnf.core.uapi import BPF_PROG_TYPE_XDP, XDP_PASS
from xnf.drivers.netdev_genl import XdpFeature, netdev_features


@attrs.frozen
class ModeSupport:
    """Whether one XDP mode works on an interface, and who said so."""

    mode: str
    supported: bool = None
    """True, False, or None when nothing could tell."""
    source: str = ""
    reason: str = ""


def genl_features(ifindex, netns=None):
    """NetdevFeatures, or None on kernels without the netdev genl family."""
    try:
        return netdev_features(ifindex, netns)
    except NotSupportedError:
        return None


def modes_from_features(features):
    """ModeSupport for native and offload from reported NETDEV_XDP_ACT_* bits."""
    src = "netdev genl xdp-features"
    bits = features.xdp_features
    native = ModeSupport("native", bool(bits & XdpFeature.BASIC), src,
                         "" if bits & XdpFeature.BASIC
                         else "the driver reports no native XDP (NETDEV_XDP_ACT_BASIC unset)")
    offload = ModeSupport("offload", bool(bits & XdpFeature.HW_OFFLOAD), src,
                          "" if bits & XdpFeature.HW_OFFLOAD
                          else "the driver reports no BPF offload (NETDEV_XDP_ACT_HW_OFFLOAD unset)")
    return {"native": native, "offload": offload}


def attached_xdp(ifname, netns=None):
    """{mode: program id} of the XDP programs attached to ``ifname`` now."""
    if not exists(netns):
        raise NamespaceNotFoundError(netns)
    return {mode: hp.prog_id for mode, hp in query(ifname, netns).items()}


def offload_load_probe(ifindex, netns=None):
    """ModeSupport for offload from loading a trivial device-bound XDP program."""
    code = encode([Instruction(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, XDP_PASS), Instruction(EXIT)])
    insns = ctypes.create_string_buffer(code, len(code))
    license_ = ctypes.create_string_buffer(b"GPL")
    attr = syscall.ProgLoadAttr(prog_type=BPF_PROG_TYPE_XDP, insn_cnt=len(code) // 8,
                                insns=syscall.addr(insns), license=syscall.addr(license_),
                                prog_name=b"xnf_probe_hw", prog_ifindex=ifindex)
    src = "offload load probe (prog_ifindex)"
    try:
        with entered(netns):  # the kernel resolves prog_ifindex in the caller's namespace
            syscall.prog_load(attr).close()
    except BPFError as e:
        if e.errno in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENODEV):
            return ModeSupport("offload", False, src,
                               f"the kernel refused a program bound to the device ({e.strerror}): "
                               "the driver has no BPF offload")
        if e.errno == errno.EPERM:
            return ModeSupport("offload", None, src, "the offload probe needs CAP_SYS_ADMIN (run as root)")
        raise
    return ModeSupport("offload", True, src)


def probe_modes(ifname, ifindex, netns=None):
    """ModeSupport for native and offload from the kernel alone (no driver profile)."""
    features = genl_features(ifindex, netns)
    if features is not None:
        return modes_from_features(features)
    attached = attached_xdp(ifname, netns)
    if "native" in attached:
        native = ModeSupport("native", True, "attached XDP program", "a native XDP program is attached now")
    else:
        native = ModeSupport("native", None, "",
                             "unknown: the kernel reports no XDP features before Linux 6.3 and "
                             "xnf has no profile for this driver")
    if "offload" in attached:
        offload = ModeSupport("offload", True, "attached XDP program", "an offloaded XDP program is attached now")
    else:
        offload = offload_load_probe(ifindex, netns)
    return {"native": native, "offload": offload}
