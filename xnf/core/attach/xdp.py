"""XDP attach in generic (skb), native (driver) or offload (hardware) mode, or auto.

Two ways in, as the kernel offers them:

* a BPF link (``BPF_LINK_CREATE`` with ``BPF_XDP`` and the mode flag, Linux 5.9): the
  attachment lives as long as the link (an fd or a pin) and nobody can replace it;
* netlink ``IFLA_XDP`` (``IFLA_XDP_FD`` + ``IFLA_XDP_FLAGS``) with
  ``XDP_FLAGS_UPDATE_IF_NOEXIST``: the program stays until removed; replace and detach
  name the program we expect (``IFLA_XDP_EXPECTED_FD`` + ``XDP_FLAGS_REPLACE``), so we
  never remove somebody else's.

``auto`` mode is native when the driver advertises basic XDP (genl ``netdev``
xdp-features) or, on kernels without that family, when native attach works; else generic.
"""
import errno

import attrs

from xnf.core import uapi
from xnf.core.attach.base import Attachment, HookProgram, check_type, prog_label, program_fd
from xnf.core.errors import AttachError, BPFError, InterfaceNotFoundError, ModeNotSupportedError
from xnf.core.errors import NamespaceNotFoundError
from xnf.core.kernel import features, info, netns as _netns, syscall

# include/uapi/linux/if_link.h, through tools/gen-uapi
XDP_FLAGS_UPDATE_IF_NOEXIST = uapi.XDP_FLAGS_UPDATE_IF_NOEXIST
XDP_FLAGS_SKB_MODE = uapi.XDP_FLAGS_SKB_MODE
XDP_FLAGS_DRV_MODE = uapi.XDP_FLAGS_DRV_MODE
XDP_FLAGS_HW_MODE = uapi.XDP_FLAGS_HW_MODE
XDP_FLAGS_REPLACE = uapi.XDP_FLAGS_REPLACE

MODE_FLAGS = {"skb": XDP_FLAGS_SKB_MODE, "native": XDP_FLAGS_DRV_MODE, "offload": XDP_FLAGS_HW_MODE}
MODE_ALIASES = {"generic": "skb", "drv": "native", "driver": "native", "hw": "offload"}
MODES = ("auto",) + tuple(MODE_FLAGS)
VIAS = ("auto", "link", "netlink")

# IFLA_XDP attributes that report one mode each
_MODE_IDS = {"IFLA_XDP_SKB_PROG_ID": "skb", "IFLA_XDP_DRV_PROG_ID": "native",
             "IFLA_XDP_HW_PROG_ID": "offload"}
_ATTACHED = {"xdpgeneric": "skb", "xdp": "native", "xdpoffload": "offload"}


def canonical_mode(mode):
    mode = MODE_ALIASES.get(mode, mode)
    if mode not in MODES:
        raise ModeNotSupportedError(f"unknown XDP mode {mode!r}",
                                    "use one of auto, skb (generic), native (drv), offload (hw)")
    return mode


@attrs.define(eq=False, kw_only=True)
class XdpAttachment(Attachment):
    kind = "xdp"

    mode: str = "skb"
    """The mode the program runs in (never ``auto``)."""
    fallback_reason: str = None
    """Why ``auto`` fell back to generic mode, if it did."""

    @property
    def flags(self):
        return MODE_FLAGS[self.mode]

    def _fields(self):
        return {"mode": self.mode}

    def _attached_netlink(self):
        try:
            found = query(self.ifname, self.netns).get(self.mode)
        except (InterfaceNotFoundError, NamespaceNotFoundError):
            return False
        return found is not None and found.prog_id == self.prog_id

    def _detach_netlink(self):
        try:
            _setlink(self, -1, self.flags | XDP_FLAGS_REPLACE, expected_fd=self.program)
        except NamespaceNotFoundError:
            return False
        except _Refused as e:
            if e.code in (errno.EEXIST, errno.ENODEV):
                return False  # our program is no longer the one attached (or the device is gone)
            raise AttachError(f"detaching {self}: {e.message}") from None
        return True

    @classmethod
    def remove_netlink_of(cls, prog_id, ifname, netns=None):
        for mode, hp in query(ifname, netns).items():
            if hp.prog_id == prog_id and hp.via == "netlink":
                detach_xdp(ifname, prog_id, mode=mode, netns=netns)

    def _replace_netlink(self, new_fd):
        try:
            _setlink(self, int(new_fd), self.flags | XDP_FLAGS_REPLACE, expected_fd=self.program)
        except _Refused as e:
            if e.code == errno.EEXIST:
                raise AttachError(f"cannot replace {self}: it is no longer the program attached",
                                  "query the interface to see what is") from None
            raise AttachError(f"replacing {self}: {e.message}") from None


class _Refused(Exception):
    def __init__(self, code, message):
        super().__init__(code, message)
        self.code, self.message = code, message


def _setlink(att, fd, flags, expected_fd=None):
    setlink_fd(att.ifindex, att.netns, fd, flags, expected_fd)


def setlink_fd(ifindex, netns, fd, flags, expected_fd=None):
    """RTM_SETLINK with raw IFLA_XDP attributes; raises _Refused(errno, kernel message)."""
    # netlink: pyroute2 (~100 ms) is loaded only where a netlink request is made
    from xnf.core.attach.netlink import NetlinkError, kernel_message, rtnl

    attrs_ = [["IFLA_XDP_FD", fd], ["IFLA_XDP_FLAGS", flags]]
    if expected_fd is not None:
        attrs_.append(["IFLA_XDP_EXPECTED_FD", int(expected_fd)])
    with rtnl(netns) as ipr:
        try:
            ipr.link("set", index=ifindex, IFLA_XDP={"attrs": attrs_})
        except NetlinkError as e:
            raise _Refused(e.code, kernel_message(e)) from None


_extension_attach = None  # set by xnf.core.attach.dispatcher, the one that knows where EXT programs go


def route_extensions(attach):
    """Have :func:`attach_xdp` hand freplace (EXT) programs to ``attach``: the libxdp
    dispatcher registers itself here, so xdp needs no import of the module built on it."""
    global _extension_attach
    _extension_attach = attach


def attach_xdp(program, ifname, mode="auto", netns=None, via="auto", priority=None, chain_call_actions=None):
    """Attach an XDP program to ``ifname``; returns an :class:`XdpAttachment`.

    ``mode``: ``auto``, ``skb`` (generic), ``native`` (driver) or ``offload`` (hardware;
    the program must have been loaded for this device). ``via``: ``link``, ``netlink``
    or ``auto`` (a link where the kernel has XDP links). Nothing is left attached on error.

    A program loaded as a dispatcher component (freplace, see
    :func:`xnf.core.attach.dispatcher.as_component`) joins the interface's libxdp
    dispatcher instead, at ``priority`` (default 50) with ``chain_call_actions``
    (default ``("XDP_PASS",)``): a :class:`~xnf.core.attach.dispatcher.DispatcherAttachment`.
    """
    if _is_extension(program):
        if _extension_attach is None:
            raise AttachError("an freplace (EXT) program attaches to XDP only as a component of a libxdp "
                              "dispatcher, and xnf.core.attach.dispatcher is not loaded",
                              "load the program with xnf.core.attach.dispatcher.as_component")
        return _extension_attach(program, ifname, mode=mode, netns=netns, priority=priority,
                                 chain_call_actions=chain_call_actions)
    if priority is not None or chain_call_actions is not None:
        raise AttachError("priority and chain_call_actions are for programs in a libxdp dispatcher",
                          "load the program with xnf.core.attach.dispatcher.as_component")
    mode = canonical_mode(mode)
    if via not in VIAS:
        raise AttachError(f"unknown attach method {via!r}", "use auto, link or netlink")
    if via == "auto":
        via = "link" if features.have_xdp_link() else "netlink"
    ifindex = _netns.ifindex(ifname, netns)
    fd = program_fd(program)
    try:
        pinfo = check_type(fd, {uapi.BPF_PROG_TYPE_XDP}, "XDP")
        caps = _caps(ifindex, netns) if mode in ("auto", "offload") else None
        if mode == "offload" and caps is not None and "hw_offload" not in caps:
            raise ModeNotSupportedError(
                f"{ifname} cannot run XDP in offload mode: its driver does not advertise "
                f"hardware offload (XDP features: {', '.join(caps) or 'none'})",
                "use --mode native or skb, or a NIC that offloads XDP (e.g. nfp)")
        if mode == "offload" and pinfo.ifindex != ifindex:
            raise ModeNotSupportedError(
                f"{ifname} cannot run {pinfo.name!r} in XDP offload mode: the program was not "
                "loaded for this device",
                "load it with the device's ifindex (ProgramSpec.ifindex) on a NIC that offloads XDP")
        att = XdpAttachment(ifname=ifname, ifindex=ifindex, netns=netns, prog_id=pinfo.id,
                            program=fd, mode=mode)
        if mode != "auto":
            _attach(att, via)
            return att
        if caps is not None and "basic" not in caps:
            att.mode, att.fallback_reason = "skb", f"the driver of {ifname} does not advertise native XDP"
            _attach(att, via)
            return att
        att.mode = "native"
        try:
            _attach(att, via)
        except ModeNotSupportedError as e:
            att.mode, att.fallback_reason = "skb", str(e)
            _attach(att, via)
        return att
    except BaseException:
        fd.close()
        raise


def _is_extension(program):
    fd = getattr(program, "fd", program)
    try:
        return info.prog_info(fd).type == uapi.BPF_PROG_TYPE_EXT
    except (BPFError, TypeError, ValueError):
        return False  # attach_xdp's own check says what is wrong


def _caps(ifindex, netns):
    # netlink: pyroute2 (~100 ms) is loaded only where a netlink request is made
    from xnf.core.attach.netlink import xdp_features

    return xdp_features(ifindex, netns)


def _attach(att, via):
    if via == "link":
        _attach_link(att)
    else:
        _attach_netlink(att)


def _attach_link(att):
    try:
        with _netns.entered(att.netns):
            att.link = syscall.link_create(att.program, att.ifindex, uapi.BPF_XDP, att.flags)
    except BPFError as e:
        raise _explain(att, e.errno, e.strerror, from_link=True) from None


def _attach_netlink(att):
    try:
        _setlink(att, int(att.program), att.flags | XDP_FLAGS_UPDATE_IF_NOEXIST)
    except _Refused as e:
        raise _explain(att, e.code, e.message) from None


def _explain(att, code, message, from_link=False):
    """A typed error for a refused attach, naming what is in the way when something is."""
    where = f"{att.ifname}" + (f" (netns {att.netns})" if att.netns else "")
    if code in (errno.EBUSY, errno.EEXIST):
        present = query(att.ifname, att.netns)
        if present:
            what = ", ".join(f"prog {p.prog_id} in {m} mode via {p.via}" for m, p in present.items())
            return AttachError(f"{where} already has XDP attached ({what}): {message}",
                               "detach it first (`xnf detach` or Attachment.detach())")
        return AttachError(f"cannot attach XDP to {where} in {att.mode} mode: {message}")
    if code == errno.EOPNOTSUPP or (code in (errno.EINVAL, errno.ERANGE) and att.mode != "skb"):
        if att.mode == "native" and code == errno.EOPNOTSUPP and from_link:
            message = "the driver does not support XDP in native mode"  # links carry no extack
        return ModeNotSupportedError(f"{where} cannot run XDP in {att.mode} mode: {message}",
                                     "use --mode skb (generic XDP works on every device)")
    if code == errno.ENODEV:
        return InterfaceNotFoundError(att.ifname, att.netns)
    return AttachError(f"cannot attach XDP to {where} in {att.mode} mode: {message}")


def query(ifname, netns=None):
    """What XDP programs ``ifname`` runs: ``{mode: HookProgram}`` for each attached mode."""
    # netlink: pyroute2 (~100 ms) is loaded only where a netlink request is made
    from xnf.core.attach.netlink import rtnl

    ifindex = _netns.ifindex(ifname, netns)
    with rtnl(netns) as ipr:
        msg = ipr.link("get", index=ifindex)[0]
    xdp = msg.get_attr("IFLA_XDP")
    found = {}
    if xdp is not None:
        for attr, mode in _MODE_IDS.items():
            if xdp.get_attr(attr):
                found[mode] = xdp.get_attr(attr)
        attached = _ATTACHED.get(xdp.get_attr("IFLA_XDP_ATTACHED"))
        if attached and not found and xdp.get_attr("IFLA_XDP_PROG_ID"):
            found[attached] = xdp.get_attr("IFLA_XDP_PROG_ID")
    links = _xdp_links(ifindex) if found else {}
    return {mode: HookProgram(hook="xdp", where=mode, prog_id=pid, **prog_label(pid),
                              link_id=links.get(pid))
            for mode, pid in found.items()}


def _xdp_links(ifindex):
    """{prog_id: link_id} of XDP links on ``ifindex`` (link info has no namespace)."""
    out = {}
    for link_id in syscall.iter_ids("link"):
        try:
            fd = syscall.fd_by_id("link", link_id)
        except BPFError:
            continue
        try:
            li = info.link_info(fd)
        finally:
            fd.close()
        if li.type == uapi.BPF_LINK_TYPE_XDP and li.ifindex == ifindex:
            out[li.prog_id] = link_id
    return out


def detach_xdp(ifname, prog_id, mode=None, netns=None):
    """Remove XDP program ``prog_id`` from ``ifname`` (link or netlink), leaving others alone.

    For an attachment whose process is gone and that was never pinned; returns False
    if ``prog_id`` was not attached.
    """
    for found_mode, hp in query(ifname, netns).items():
        if hp.prog_id != prog_id or (mode is not None and canonical_mode(mode) != found_mode):
            continue
        if hp.link_id:
            syscall.link_detach_by_id(hp.link_id)
            return True
        att = XdpAttachment(ifname=ifname, ifindex=_netns.ifindex(ifname, netns), netns=netns,
                            prog_id=prog_id, program=syscall.fd_by_id("prog", prog_id), mode=found_mode)
        return att.detach()
    return False


def device_capabilities(ifname, netns=None):
    """What ``ifname`` offers for XDP: driver features and the programs attached now."""
    ifindex = _netns.ifindex(ifname, netns)
    caps = _caps(ifindex, netns)
    return {
        "ifname": ifname,
        "ifindex": ifindex,
        "netns": netns,
        "xdp_features": caps,
        "xdp_modes": {"skb": True,
                      "native": None if caps is None else "basic" in caps,
                      "offload": None if caps is None else "hw_offload" in caps},
        "xdp_attached": {m: hp.to_dict() for m, hp in query(ifname, netns).items()},
    }
