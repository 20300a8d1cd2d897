"""tc attach: tcx where the kernel has it, else clsact + cls_bpf; and cls_bpf under any qdisc.

:func:`attach_tc` is the ingress/egress entry point: a tcx link (Linux 6.6) or, as
fallback, a direct-action cls_bpf filter on the clsact qdisc (created if missing, and
removed again on detach only if we created it and it is empty).

:func:`attach_cls_bpf` is the qdisc layer: a cls_bpf filter under any parent handle,
for example an HTB root ``1:`` where a direct-action program classifies packets into
classes through ``skb->priority`` / ``skb->tc_classid``. Schedulers build on it.

Filters are sent with the whole cls_bpf option set (``TCA_BPF_FLAGS_GEN`` for
skip_sw/skip_hw) and identified on dumps by ``TCA_BPF_ID``, so detaching removes
only the filter we added, and only while it still runs our program.
"""
import errno
import socket

import attrs

from xnf.core import uapi
from xnf.core.attach.base import Attachment, HookProgram, check_type, prog_label, program_fd
from xnf.core.attach.tcx import attach_tcx, attach_type as tcx_attach_type, query_tcx
from xnf.core.errors import AttachError, BPFError, ModeNotSupportedError, NamespaceNotFoundError
from xnf.core.kernel import features, netns as _netns, syscall
from xnf.core.uapi import (TC_H_MIN_EGRESS, TC_H_MIN_INGRESS, TC_H_ROOT, TCA_BPF_FLAG_ACT_DIRECT, TCA_CLS_FLAGS_SKIP_HW,
                           TCA_CLS_FLAGS_SKIP_SW)

CLSACT_HANDLE = 0xFFFF0000
CLSACT_PARENTS = {"ingress": CLSACT_HANDLE | TC_H_MIN_INGRESS, "egress": CLSACT_HANDLE | TC_H_MIN_EGRESS}
ETH_P_ALL = 0x0003

VIAS = ("auto", "tcx", "clsact")

# clsact qdiscs this process created, by (netns, ifindex): every attachment made on one
# shares its ownership, so whichever of them leaves it empty removes it.
_created_clsact = set()


def parse_handle(value):
    """A tc handle from an int or iproute2 notation: ``1:``, ``1:10``, ``ffff:fff2``, ``root``."""
    if isinstance(value, int):
        return value
    text = str(value).strip().lower()
    named = {"root": TC_H_ROOT, "ingress": CLSACT_PARENTS["ingress"], "egress": CLSACT_PARENTS["egress"],
             "clsact": CLSACT_HANDLE}
    if text in named:
        return named[text]
    major, sep, minor = text.partition(":")
    try:
        if not sep:
            return int(text, 0)
        return (int(major or "0", 16) << 16) | int(minor or "0", 16)
    except ValueError:
        raise AttachError(f"bad tc handle {value!r}", "write it as MAJOR:MINOR in hex, e.g. 1: or 1:10") from None


def format_handle(handle):
    for name, parent in CLSACT_PARENTS.items():
        if handle == parent:
            return name
    if handle == TC_H_ROOT:
        return "root"
    return f"{handle >> 16:x}:{handle & 0xFFFF:x}"


@attrs.define(eq=False, kw_only=True)
class TcAttachment(Attachment):
    kind = "tc"

    parent: int = CLSACT_PARENTS["ingress"]
    handle: int = 0
    prio: int = 0
    direct_action: bool = True
    flags_gen: int = 0
    """TCA_CLS_FLAGS_SKIP_HW / TCA_CLS_FLAGS_SKIP_SW as sent."""
    classid: int = None
    created_qdisc: bool = False
    """Whether we created the clsact qdisc (and so remove it when it is left empty)."""

    @property
    def direction(self):
        return next((d for d, p in CLSACT_PARENTS.items() if p == self.parent), None)

    @property
    def via(self):
        return "clsact" if self.direction else "cls_bpf"

    def _fields(self):
        return {"parent": self.parent, "handle": self.handle, "prio": self.prio,
                "direct_action": self.direct_action, "flags_gen": self.flags_gen,
                "classid": self.classid, "created_qdisc": self.created_qdisc}

    @classmethod
    def remove_netlink_of(cls, prog_id, ifname, netns=None):
        for hp in query_tc(ifname, netns):
            if hp.prog_id == prog_id:
                cls(ifname=ifname, ifindex=_netns.ifindex(ifname, netns), netns=netns, prog_id=prog_id,
                    program=syscall.fd_by_id("prog", prog_id), parent=parse_handle(hp.where), prio=hp.prio,
                    handle=hp.handle).detach()

    def _attached_netlink(self):
        return _current_prog_id(self) == self.prog_id

    def _detach_netlink(self):
        # pyroute2 (~100 ms): imported only where netlink is used
        from xnf.core.attach.netlink import NetlinkError, kernel_message, rtnl

        if _current_prog_id(self) != self.prog_id:
            result = False
        else:
            with rtnl(self.netns) as ipr:
                try:
                    _filter_request(ipr, "del", self)
                except NetlinkError as e:
                    if e.code not in (errno.ENOENT, errno.ENODEV):
                        raise AttachError(f"removing {self}: {kernel_message(e)}") from None
            result = True
        if self.created_qdisc:
            _remove_clsact_if_empty(self.ifindex, self.netns)
        return result

    def _replace_netlink(self, new_fd):
        # pyroute2 (~100 ms): imported only where netlink is used
        from xnf.core.attach.netlink import NetlinkError, kernel_message, rtnl

        if _current_prog_id(self) != self.prog_id:
            raise AttachError(f"cannot replace {self}: it is no longer the program attached there")
        with rtnl(self.netns) as ipr:
            try:
                _filter_request(ipr, "replace", self, fd=new_fd)
            except NetlinkError as e:
                raise AttachError(f"replacing {self}: {kernel_message(e)}") from None

    def __str__(self):
        where = f" in netns {self.netns}" if self.netns else ""
        return (f"tc prog {self.prog_id} on {self.ifname}{where} parent {format_handle(self.parent)} "
                f"prio {self.prio} handle {self.handle:#x}")


def _filter_request(ipr, command, att, fd=None):
    """Send one cls_bpf filter request (add / replace / del) for ``att``.

    ``add`` asks the kernel to echo the new filter and returns ``(prio, handle)`` as the
    kernel chose them.
    """
    # pyroute2 (~100 ms): only where netlink is used
    from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_ECHO, NLM_F_EXCL, NLM_F_REQUEST
    from pyroute2.netlink.rtnl import RTM_DELTFILTER, RTM_NEWTFILTER

    from xnf.core.attach.netlink import request, tcmsg_bpf  # pyroute2 (~100 ms): imported only where netlink is used

    msg = tcmsg_bpf()
    msg["index"] = att.ifindex
    msg["parent"] = att.parent
    msg["handle"] = att.handle
    msg["info"] = (att.prio << 16) | socket.htons(ETH_P_ALL)
    msg["attrs"] = [["TCA_KIND", "bpf"]]
    if command == "del":
        request(ipr, msg, RTM_DELTFILTER, NLM_F_REQUEST | NLM_F_ACK)
        return
    options = [["TCA_BPF_FD", int(fd)], ["TCA_BPF_NAME", "xnf"],
               ["TCA_BPF_FLAGS", TCA_BPF_FLAG_ACT_DIRECT if att.direct_action else 0]]
    if att.flags_gen:
        options.append(["TCA_BPF_FLAGS_GEN", att.flags_gen])
    if att.classid is not None:
        options.append(["TCA_BPF_CLASSID", att.classid])
    msg["attrs"].append(["TCA_OPTIONS", {"attrs": options}])
    flags = NLM_F_REQUEST | NLM_F_ACK
    if command == "add":
        flags |= NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO
    replies = request(ipr, msg, RTM_NEWTFILTER, flags)
    for reply in replies:
        if reply.get("event") == "RTM_NEWTFILTER":
            return reply["info"] >> 16, reply["handle"]
    return None


def _dump_filters(ipr, ifindex, parent):
    """[(prio, handle, prog_id, filter name, prog tag)] of the cls_bpf filters under ``parent``."""
    from xnf.core.attach.netlink import NetlinkError  # pyroute2 (~100 ms): imported only where netlink is used

    out = []
    try:
        msgs = ipr.get_filters(index=ifindex, parent=parent)
    except NetlinkError as e:
        if e.code in (errno.EINVAL, errno.ENOENT):
            return out  # no such qdisc
        raise
    for m in msgs:
        if m.get_attr("TCA_KIND") != "bpf" or not m["handle"]:
            continue
        opts = m.get_attr("TCA_OPTIONS")
        if opts is None:
            continue
        tag = opts.get_attr("TCA_BPF_TAG")
        out.append((m["info"] >> 16, m["handle"], opts.get_attr("TCA_BPF_ID"),
                    opts.get_attr("TCA_BPF_NAME") or "", tag.hex() if tag else ""))
    return out


def _current_prog_id(att):
    """The program id of the filter at (parent, prio, handle), or None if there is none."""
    from xnf.core.attach.netlink import NetlinkError, rtnl  # pyroute2 (~100 ms): only where netlink is used

    try:
        with rtnl(att.netns) as ipr:
            for prio, handle, prog_id, *_ in _dump_filters(ipr, att.ifindex, att.parent):
                if prio == att.prio and handle == att.handle:
                    return prog_id
    except NamespaceNotFoundError:
        return None
    except NetlinkError as e:
        if e.code == errno.ENODEV:
            return None
        raise
    return None


def _qdiscs(ipr, ifindex):
    return [(m.get_attr("TCA_KIND"), m["handle"], m["parent"]) for m in ipr.get_qdiscs(index=ifindex)]


def _ensure_clsact(ipr, ifindex, ifname, direction, netns):
    """Make sure the clsact qdisc is there; returns True if we (this process) created it."""
    # pyroute2 (~100 ms): imported only where netlink is used
    from xnf.core.attach.netlink import NetlinkError, kernel_message

    kinds = {kind for kind, handle, _ in _qdiscs(ipr, ifindex) if handle == CLSACT_HANDLE}
    if "clsact" in kinds:
        return (netns, ifindex) in _created_clsact
    if "ingress" in kinds:
        if direction == "ingress":
            return False  # the ingress qdisc serves ffff:fff2 as well
        raise AttachError(f"{ifname} has an ingress qdisc, which has no egress hook",
                          "replace it with clsact (`tc qdisc del dev X ingress`) or use tcx")
    try:
        ipr.tc("add", "clsact", ifindex)
    except NetlinkError as e:
        if e.code == errno.EEXIST:
            return False
        raise AttachError(f"cannot add the clsact qdisc to {ifname}: {kernel_message(e)}") from None
    _created_clsact.add((netns, ifindex))
    return True


def _remove_clsact_if_empty(ifindex, netns):
    from xnf.core.attach.netlink import NetlinkError, rtnl  # pyroute2 (~100 ms): imported only where netlink is used

    if not _netns.exists(netns):
        return False
    try:
        with rtnl(netns) as ipr:
            for parent in CLSACT_PARENTS.values():
                if any(True for m in ipr.get_filters(index=ifindex, parent=parent) if m["handle"]):
                    return False
            ipr.tc("del", "clsact", ifindex)
    except NetlinkError:
        return False
    _created_clsact.discard((netns, ifindex))
    return True


def attach_cls_bpf(program, ifname, parent, netns=None, prio=None, handle=None, classid=None,
                   direct_action=True, skip_sw=False, skip_hw=False, _clsact_direction=None):
    """Add a cls_bpf filter running ``program`` under the qdisc or class ``parent``.

    ``parent``: a handle (``"1:"``, ``0x10000``, ``"ingress"``/``"egress"`` for clsact).
    ``prio``/``handle`` default to values the kernel picks. ``skip_sw`` (offload only)
    and ``skip_hw`` go out as ``TCA_BPF_FLAGS_GEN``. Returns a :class:`TcAttachment`.

    The kernel keeps ``skb->tc_classid`` in 16 bits and ORs in the major of the
    filter's classid; so under a qdisc, ``classid`` defaults to the parent's major
    (``1:0`` under ``1:``) and a program's ``skb->tc_classid = 0x10010`` selects ``1:10``.
    """
    # pyroute2 (~100 ms): imported only where netlink is used
    from xnf.core.attach.netlink import NetlinkError, kernel_message, rtnl

    if skip_sw and skip_hw:
        raise AttachError("skip_sw and skip_hw together leave the filter nowhere to run")
    parent = parse_handle(parent)
    if classid is None and direct_action and _clsact_direction is None and parent != TC_H_ROOT:
        classid = parent & 0xFFFF0000
    ifindex = _netns.ifindex(ifname, netns)
    fd = program_fd(program)
    created = False
    try:
        pinfo = check_type(fd, {uapi.BPF_PROG_TYPE_SCHED_CLS}, "cls_bpf")
        att = TcAttachment(ifname=ifname, ifindex=ifindex, netns=netns, prog_id=pinfo.id, program=fd,
                           parent=parent, handle=handle or 0, prio=prio or 0,
                           direct_action=direct_action, classid=classid,
                           flags_gen=(TCA_CLS_FLAGS_SKIP_SW if skip_sw else 0)
                           | (TCA_CLS_FLAGS_SKIP_HW if skip_hw else 0))
        with rtnl(netns) as ipr:
            if _clsact_direction is not None:
                created = _ensure_clsact(ipr, ifindex, ifname, _clsact_direction, netns)
                att.created_qdisc = created
            try:
                echoed = _filter_request(ipr, "add", att, fd=fd)
            except NetlinkError as e:
                raise _explain(att, e.code, kernel_message(e)) from None
            if echoed is None:  # no echo: find the filter by its program
                echoed = next((ph[:2] for ph in _dump_filters(ipr, ifindex, parent) if ph[2] == att.prog_id))
            att.prio, att.handle = echoed
        return att
    except BaseException:
        if created:
            _remove_clsact_if_empty(ifindex, netns)
        fd.close()
        raise


def _explain(att, code, message):
    where = f"{att.ifname}" + (f" (netns {att.netns})" if att.netns else "") + \
        f" parent {format_handle(att.parent)}"
    if code == errno.EEXIST:
        return AttachError(f"{where} already has a filter at prio {att.prio} handle {att.handle:#x}",
                           "pick another prio/handle or leave them to the kernel")
    if code == errno.EOPNOTSUPP and att.flags_gen & TCA_CLS_FLAGS_SKIP_SW:
        return ModeNotSupportedError(f"{where} cannot offload the filter (skip_sw): {message}",
                                     "drop skip_sw to run it in software")
    if code == errno.ENOENT or (code == errno.EINVAL and "parent" in message.lower()):
        return AttachError(f"cannot add a filter at {where}: {message}",
                           "create the qdisc first; `tc qdisc show` lists them")
    return AttachError(f"cannot add a cls_bpf filter at {where}: {message}")


def attach_tc(program, ifname, direction="ingress", netns=None, via="auto", prio=None, handle=None,
              skip_sw=False, skip_hw=False, before=None, after=None, first=False,
              expected_revision=None, last=False):
    """Attach a ``sched_cls`` program at tc ingress or egress of ``ifname``.

    ``via="auto"`` uses a tcx link where the kernel has tcx, else clsact + cls_bpf in
    direct-action mode. tcx takes ``before``/``after``/``first``/``expected_revision``;
    clsact takes ``prio``/``handle``/``skip_sw``/``skip_hw``. ``**edge("first")`` places
    it first, ``**edge("last")`` last, either way.
    """
    if direction not in CLSACT_PARENTS:
        raise AttachError(f"unknown tc direction {direction!r}", "use ingress or egress")
    if via not in VIAS:
        raise AttachError(f"unknown tc attach method {via!r}", "use auto, tcx or clsact")
    if via == "auto":
        clsact_only = prio is not None or handle is not None or skip_sw or skip_hw
        via = "clsact" if clsact_only or not features.have_tcx() else "tcx"
    if via == "tcx":
        return attach_tcx(program, ifname, direction, netns, before=before, after=after, first=first,
                          expected_revision=expected_revision, last=last)
    if before is not None or after is not None or first or last or expected_revision is not None:
        raise AttachError("before/after/first/last/expected_revision need tcx", "use via='tcx'")
    return attach_cls_bpf(program, ifname, CLSACT_PARENTS[direction], netns, prio=prio, handle=handle,
                          skip_sw=skip_sw, skip_hw=skip_hw, _clsact_direction=direction)


def detach_tc(ifname, direction="ingress", prog_id=None, handle=None, prio=None, netns=None):
    """Remove tc programs from ``ifname``'s ``direction`` that nobody holds an attachment
    for (its process is gone and it was never pinned), as :func:`~xnf.core.attach.xdp.detach_xdp`
    does for XDP; others stay.

    A clsact cls_bpf filter is chosen by ``handle`` and/or ``prio`` (as ``tc filter show``
    prints them) and/or ``prog_id``; a tcx program by ``prog_id`` alone (its link is
    detached, or without a link the program, with ``BPF_PROG_DETACH``). Every match is
    removed; returns the removed ``[HookProgram]``. Raises ``AttachError`` naming what is
    there when nothing matches, and removes nothing then.
    """
    if direction not in CLSACT_PARENTS:
        raise AttachError(f"unknown tc direction {direction!r}", "use ingress or egress")
    if prog_id is None and handle is None and prio is None:
        raise AttachError("detach_tc needs prog_id, handle or prio to choose what to remove",
                          "see query(ifname) for what is attached")
    handle = None if handle is None else parse_handle(handle)
    ifindex = _netns.ifindex(ifname, netns)
    tcx = query_tcx(ifname, direction, netns)[0] if features.have_tcx() else []
    filters = query_tc(ifname, netns, parents=[CLSACT_PARENTS[direction]])
    chosen = [hp for hp in filters if (prog_id is None or hp.prog_id == prog_id)
              and (handle is None or hp.handle == handle) and (prio is None or hp.prio == prio)]
    if handle is None and prio is None:
        chosen = [hp for hp in tcx if hp.prog_id == prog_id] + chosen
    if not chosen:
        asked = ", ".join(f"{k} {v:#x}" if k == "handle" else f"{k} {v}"
                          for k, v in (("prog id", prog_id), ("handle", handle), ("prio", prio)) if v is not None)
        there = "; ".join(_describe(hp) for hp in tcx + filters) or "nothing"
        raise AttachError(f"no tc program with {asked} at {direction} of {ifname}"
                          + (f" in netns {netns}" if netns else "") + f" (there: {there})",
                          "see query(ifname) for what is attached")
    for hp in chosen:
        if hp.hook == "tcx":
            _detach_tcx_program(hp, ifindex, direction, netns)
        else:
            TcAttachment(ifname=ifname, ifindex=ifindex, netns=netns, prog_id=hp.prog_id,
                         program=syscall.fd_by_id("prog", hp.prog_id), parent=CLSACT_PARENTS[direction],
                         prio=hp.prio, handle=hp.handle).detach()
    return chosen


def _describe(hp):
    if hp.hook == "tcx":
        return f"tcx prog {hp.prog_id}" + (f" (link {hp.link_id})" if hp.link_id else "")
    return f"cls_bpf prog {hp.prog_id} prio {hp.prio} handle {hp.handle:#x}"


def _detach_tcx_program(hp, ifindex, direction, netns):
    """Detach one tcx program: through its link, or (attached without one) by program."""
    if hp.link_id:
        syscall.link_detach_by_id(hp.link_id)
        return
    prog = syscall.fd_by_id("prog", hp.prog_id)
    try:
        with _netns.entered(netns):  # bpf(2) resolves the ifindex in the caller's namespace
            syscall.prog_detach(ifindex, int(prog), tcx_attach_type(direction))
    except BPFError as e:
        raise AttachError(f"removing tcx prog {hp.prog_id} at {direction}: {e}") from None
    finally:
        prog.close()


#: cls_bpf priorities that run a filter before / after the others under clsact (lower first).
CLSACT_FIRST_PRIO, CLSACT_LAST_PRIO = 1, 0xFFFF


def edge(position):
    """:func:`attach_tc` keywords that run a program ``"first"`` or ``"last"`` at its hook:
    tcx ``BPF_F_BEFORE`` / ``BPF_F_AFTER`` where the kernel has tcx, else the lowest /
    highest clsact priority. (tcx programs run before clsact filters in both directions.)"""
    if position not in ("first", "last"):
        raise AttachError(f"unknown position {position!r}", "use first or last")
    if features.have_tcx():
        return {position: True}
    return {"prio": CLSACT_FIRST_PRIO if position == "first" else CLSACT_LAST_PRIO}


def query_tc(ifname, netns=None, parents=None):
    """cls_bpf filters on ``ifname``: under ``parents`` if given, else under clsact and every
    qdisc and class of the device. Returns a list of HookProgram."""
    from xnf.core.attach.netlink import rtnl  # pyroute2 (~100 ms): imported only where netlink is used

    ifindex = _netns.ifindex(ifname, netns)
    found = []
    with rtnl(netns) as ipr:
        if parents is None:
            qdiscs = _qdiscs(ipr, ifindex)
            parents = []
            if any(k in ("clsact", "ingress") for k, h, _ in qdiscs):
                parents += list(CLSACT_PARENTS.values())
            parents += [h for k, h, _ in qdiscs if k not in ("clsact", "ingress") and h]
            parents += [m["handle"] for m in ipr.get_classes(index=ifindex)]
        for parent in map(parse_handle, parents):
            for prio, handle, prog_id, name, tag in _dump_filters(ipr, ifindex, parent):
                label = {"prog_name": name, "prog_tag": tag, **prog_label(prog_id)}
                found.append(HookProgram(hook="tc", where=format_handle(parent), prog_id=prog_id,
                                         handle=handle, prio=prio, **label))
    return found
