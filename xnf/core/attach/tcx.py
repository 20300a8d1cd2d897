"""tc programs through tcx links (Linux 6.6): ordered, owned, no qdisc needed.

A tcx hook keeps an ordered list of programs per direction. A new link goes last by
default, or first, or right before/after an anchor (another link, a program, or an
id from :func:`query_tcx`); ``expected_revision`` makes the change fail if the list
changed since it was read, so concurrent managers cannot clobber each other.
"""
import errno

import attrs

from xnf.core import uapi
from xnf.core.attach.base import Attachment, HookProgram, check_type, prog_label, program_fd
from xnf.core.errors import AttachError, BPFError, NotSupportedError
from xnf.core.kernel import features, netns as _netns, syscall

ATTACH_TYPES = {"ingress": uapi.BPF_TCX_INGRESS, "egress": uapi.BPF_TCX_EGRESS}

# include/uapi/linux/bpf.h #defines of Linux 6.6, newer than the linux-libc-dev headers
# tools/gen-uapi reads (see xnf/core/uapi.py's docstring)
BPF_F_BEFORE = 1 << 3
BPF_F_AFTER = 1 << 4
BPF_F_ID = 1 << 5
BPF_F_LINK = uapi.BPF_F_LINK


def attach_type(direction):
    try:
        return ATTACH_TYPES[direction]
    except KeyError:
        raise AttachError(f"unknown tc direction {direction!r}", "use ingress or egress") from None


@attrs.define(eq=False, kw_only=True)
class TcxAttachment(Attachment):
    kind = "tcx"

    direction: str = "ingress"

    @property
    def via(self):
        return "tcx"

    def _fields(self):
        return {"direction": self.direction}


def _anchor(anchor):
    """(flags, relative fd or id, fd to close) for a before/after anchor."""
    if isinstance(anchor, TcxAttachment):
        return BPF_F_LINK, int(anchor.link), None
    if isinstance(anchor, HookProgram):
        if anchor.link_id:
            return BPF_F_LINK | BPF_F_ID, anchor.link_id, None
        return BPF_F_ID, anchor.prog_id, None
    fd = program_fd(anchor)
    return 0, int(fd), fd


def attach_tcx(program, ifname, direction="ingress", netns=None, before=None, after=None,
               first=False, expected_revision=None, last=False):
    """Attach a ``sched_cls`` program through a tcx link; returns a :class:`TcxAttachment`.

    Placement: last (default; ``last=True`` says so with ``BPF_F_AFTER``), ``first=True``
    (``BPF_F_BEFORE``), or ``before=``/``after=`` an anchor: a TcxAttachment, a program,
    or a HookProgram from :func:`query_tcx`. First and last hold when attaching: a later
    link asked to go first or last goes beyond this one.
    """
    if not features.have_tcx():
        raise NotSupportedError("tcx links", "6.6", "use attach_tc(..., via='clsact')")
    atype = attach_type(direction)
    if sum(x is not None and x is not False for x in (before, after, first or None, last or None)) > 1:
        raise AttachError("give only one of before=, after=, first= and last=")
    ifindex = _netns.ifindex(ifname, netns)
    fd = program_fd(program)
    close_anchor = None
    try:
        pinfo = check_type(fd, {uapi.BPF_PROG_TYPE_SCHED_CLS}, "tcx")
        flags, relative = 0, 0
        if first:
            flags = BPF_F_BEFORE
        elif last:
            flags = BPF_F_AFTER
        elif before is not None or after is not None:
            aflags, relative, close_anchor = _anchor(before if before is not None else after)
            flags = aflags | (BPF_F_BEFORE if before is not None else BPF_F_AFTER)
        att = TcxAttachment(ifname=ifname, ifindex=ifindex, netns=netns, prog_id=pinfo.id,
                            program=fd, direction=direction)
        try:
            with _netns.entered(netns):
                att.link = syscall.link_create(fd, ifindex, atype, flags, relative_fd=relative,
                                               expected_revision=expected_revision or 0)
        except BPFError as e:
            raise _explain(att, e, expected_revision) from None
        return att
    except BaseException:
        fd.close()
        raise
    finally:
        if close_anchor is not None:
            close_anchor.close()


def _explain(att, e, expected_revision):
    where = f"tcx {att.direction} of {att.ifname}" + (f" (netns {att.netns})" if att.netns else "")
    if e.errno == errno.ESTALE:
        _, rev = query_tcx(att.ifname, att.direction, att.netns)
        return AttachError(f"{where} changed: expected revision {expected_revision}, it is now {rev}",
                           "query again and retry")
    if e.errno == errno.ENOENT:
        return AttachError(f"the anchor is not attached at {where}")
    if e.errno == errno.EEXIST:
        return AttachError(f"program {att.prog_id} is already attached at {where}")
    if e.errno == errno.ERANGE:
        return AttachError(f"{where} is full (the kernel allows 64 programs per hook)")
    return AttachError(f"cannot attach to {where}: {e.strerror}", e.hint or None)


def query_tcx(ifname, direction="ingress", netns=None):
    """([HookProgram in run order], revision) of one tcx hook."""
    atype = attach_type(direction)
    ifindex = _netns.ifindex(ifname, netns)
    with _netns.entered(netns):
        try:
            prog_ids, link_ids, _, revision = syscall.prog_query(ifindex, atype)
        except BPFError as e:
            if e.errno in (errno.EINVAL, errno.EOPNOTSUPP):
                return [], 0
            raise
    return [HookProgram(hook="tcx", where=direction, prog_id=p, **prog_label(p),
                        link_id=lid or None)
            for p, lid in zip(prog_ids, link_ids)], revision
