"""What every attach path returns: an :class:`Attachment` that can detach, be pinned and found again.

A BPF *link* owns its attachment: closing the last reference detaches it, so a link
that must outlive the process is pinned (``obj_pin`` of the link). A *netlink*
attachment (XDP through ``IFLA_XDP``, tc through cls_bpf) stays until removed; to
find it again after a restart its program is pinned and a small JSON record (ifindex,
mode, parent, handle, prio...) is stored beside it. bpffs refuses regular files (and
names with a dot), so the record is the target of a symlink, readable with ``readlink``::

    <path>/link     the pinned link            (link attachments)
    <path>/prog     the pinned program         (netlink attachments)
    <path>/record   symlink -> '{"kind": "xdp", "ifindex": 3, ...}' (JSON)

The record is written first: from a record alone (its pin never made, the process
killed in between) :func:`detach_pinned` still removes a netlink program or filter.
"""
import errno
import importlib
import os

import attrs

from xnf.core import uapi
from xnf.core.errors import AttachError, BPFError, InterfaceNotFoundError, NamespaceNotFoundError, PinError
from xnf.core.kernel import info, syscall
from xnf.core.kernel import pin as _pin
from xnf.core.kernel.fd import FD

RECORD = "record"
LINK_PIN = "link"
PROG_PIN = "prog"
PENDING = "pending"  # the kind of a record written before its attachment exists (Transaction.intend)

BPF_F_REPLACE = uapi.BPF_F_REPLACE  # LINK_UPDATE only if old_prog_fd is attached

_KINDS = {}  # record kind -> Attachment subclass; each subclass adds itself when its module is imported
# record kind -> the module of xnf.core.attach defining its class, imported when a record of
# that kind is read: reading a record needs no import beforehand, and base, below them all,
# names them only here, as data (tests/unit/test_layering.py checks the table is whole)
KIND_MODULES = {"xdp": "xdp", "xdp-dispatcher": "dispatcher", "tc": "tc", "tcx": "tcx", "link": "links"}


def _kind(name):
    """The Attachment subclass of record kind ``name``, or None if there is none."""
    if not isinstance(name, str):
        return None
    if name not in _KINDS and name in KIND_MODULES:
        importlib.import_module(f"{__package__}.{KIND_MODULES[name]}")
    return _KINDS.get(name)


def _all_kinds():
    return [_kind(name) for name in KIND_MODULES]


def program_fd(program):
    """A new owned FD for ``program``: a loader Program (``.fd``), an FD or a raw int fd."""
    fd = getattr(program, "fd", program)
    try:
        return FD(os.dup(int(fd)))
    except (TypeError, ValueError, OSError) as e:
        raise AttachError(f"not a program or program fd: {program!r} ({e})",
                          "pass a loaded xnf Program or its fd") from None


def check_type(fd, expected, hook):
    """ProgInfo of ``fd``; raises AttachError if its type is not one of ``expected``."""
    try:
        pinfo = info.prog_info(fd)
    except BPFError as e:
        raise AttachError(f"fd {int(fd)} is not a BPF program ({e.strerror})",
                          "pass a loaded xnf Program or its fd") from None
    if pinfo.type not in expected:
        def name(t):
            return uapi.PROG_TYPE_NAMES.get(t, f"type {t}")

        raise AttachError(f"program {pinfo.name!r} is a {name(pinfo.type)} program, {hook} needs "
                          + " or ".join(name(t) for t in sorted(expected)),
                          f"load it from a section for {hook}")
    return pinfo


@attrs.frozen
class HookProgram:
    """One program found at a hook of an interface (what ``query`` returns)."""

    hook: str
    """``xdp``, ``tcx`` or ``tc``."""
    where: str
    """xdp: ``skb``/``native``/``offload``; tcx and clsact: ``ingress``/``egress``; else the parent ``1:0``."""
    prog_id: int
    prog_name: str = ""
    prog_tag: str = ""
    link_id: int = None
    handle: int = None
    prio: int = None

    @property
    def via(self):
        """How it is attached, in the words of :attr:`Attachment.via` (the attach call's
        ``via=``): XDP ``link``/``netlink``, ``tcx``, tc ``clsact`` (``cls_bpf`` under
        another qdisc)."""
        if self.hook == "tcx":
            return "tcx"
        if self.hook == "tc":
            return "clsact" if self.where in ("ingress", "egress") else "cls_bpf"
        return "link" if self.link_id else "netlink"

    @property
    def held_by(self):
        """What keeps it attached: ``link``, ``netlink``, or ``prog_attach`` (a tcx program
        attached without a link), as :attr:`Attachment.held_by` says it."""
        if self.link_id:
            return "link"
        return "prog_attach" if self.hook == "tcx" else "netlink"

    def to_dict(self):
        d = attrs.asdict(self)
        d["via"], d["held_by"] = self.via, self.held_by
        return {k: v for k, v in d.items() if v is not None}


def prog_label(prog_id):
    """``{"prog_name": ..., "prog_tag": ...}`` of a program id, empty if it is gone."""
    try:
        fd = syscall.fd_by_id("prog", prog_id)
    except BPFError:
        return {}
    try:
        pinfo = info.prog_info(fd)
        return {"prog_name": pinfo.name, "prog_tag": pinfo.tag}
    finally:
        fd.close()


@attrs.define(eq=False, kw_only=True)
class Attachment:
    """One program attached to one hook of one interface.

    ``detach()`` removes only this attachment (and its pin); ``close()`` drops our
    references without detaching, which for an unpinned *link* ends the attachment.
    Used as a context manager it detaches on exit.
    """

    kind = ""

    ifname: str
    ifindex: int
    prog_id: int
    netns: str = None
    program: FD = attrs.field(default=None, repr=False)
    """Our reference to the attached program (netlink detach names it as the expected fd)."""
    link: FD = attrs.field(default=None, repr=False)
    pin_path: str = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.kind:
            _KINDS[cls.kind] = cls

    @property
    def held_by(self):
        """``link`` or ``netlink``: what keeps the program attached, and so what a pin holds
        (the link, or the program). Records store it as ``via``, as every xnf version did."""
        return "link" if self.link is not None else "netlink"

    @property
    def via(self):
        """How it was attached, named as the attach call's ``via=`` argument names it: XDP
        ``link``/``netlink``, tc ``tcx``/``clsact`` (``cls_bpf`` under another qdisc)."""
        return self.held_by

    @property
    def link_id(self):
        return info.link_info(self.link).id if self.link is not None and not self.link.closed else None

    # --- hook specific ------------------------------------------------------------

    @property
    def attached(self):
        """Whether this program is still attached where we put it (asks the kernel)."""
        if self.link is not None:
            try:
                return info.link_info(self.link).ifindex != 0
            except BPFError:
                return False
        return self._attached_netlink()

    def _attached_netlink(self):
        raise NotImplementedError

    def _detach_netlink(self):
        """Remove a netlink attachment; returns False if it was already gone."""
        raise NotImplementedError

    def _replace_netlink(self, new_fd):
        raise NotImplementedError

    def _fields(self):
        """Hook-specific fields of the record."""
        return {}

    @classmethod
    def remove_netlink_of(cls, prog_id, ifname, netns=None):
        """Remove what program ``prog_id`` has attached through netlink at this kind's hook
        on ``ifname`` (a pending record's program: see :func:`detach_pinned`). Links end
        with their process, so kinds without netlink attachments have nothing to do."""

    # --- common ---------------------------------------------------------------------

    def detach(self):
        """Remove this attachment and its pin; returns False if it was already gone.

        Only our program is removed: a link detaches itself, a netlink attachment is
        removed only if our program is still the one attached there.
        """
        if self.closed:
            return False
        if self.link is not None:
            result = self.attached
            try:
                syscall.link_detach(self.link)
            except BPFError as e:
                if e.errno not in (errno.ENOLINK, errno.EINVAL, errno.ENODEV):
                    raise AttachError(f"detaching {self}: {e}") from None
        else:
            result = self._detach_netlink()
        if self.pin_path:
            self.unpin()
        self.close()
        return result

    def replace(self, program):
        """Atomically swap the attached program for ``program`` (same hook, same mode)."""
        new = program_fd(program)
        try:
            new_id = info.prog_info(new).id
            if self.closed:
                raise AttachError(f"{self} is closed", "find it again with load_pinned or attach anew")
            if self.link is not None:
                expected = self.program is not None
                try:
                    syscall.link_update(self.link, new, old_prog_fd=self.program if expected else 0,
                                        flags=BPF_F_REPLACE if expected else 0)
                except BPFError as e:
                    raise AttachError(f"replacing the program of {self}: {e}") from None
            else:
                self._replace_netlink(new)
        except BaseException:
            new.close()
            raise
        old, self.program, self.prog_id = self.program, new, new_id
        if old is not None:
            old.close()
        if self.pin_path:
            self._write_pin(self.pin_path, replace=True)

    @property
    def closed(self):
        """Whether ``detach()`` or ``close()`` already dropped our references."""
        held = self.link if self.link is not None else self.program
        return held is None or held.closed

    def close(self):
        for fd in (self.link, self.program):
            if fd is not None:
                fd.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.detach()

    # --- records and pins -----------------------------------------------------------

    def record(self):
        """The JSON-able description stored beside a pin."""
        rec = {"kind": self.kind, "via": self.held_by, "ifname": self.ifname, "ifindex": self.ifindex,
               "netns": self.netns, "prog_id": self.prog_id}
        rec.update(self._fields())
        return rec

    def to_dict(self):
        d = self.record()
        d["via"] = self.via
        d["pin_path"] = self.pin_path
        if self.link is not None and not self.link.closed:
            d["link_id"] = self.link_id
        return d

    def pin(self, path):
        """Pin under directory ``path`` (on bpffs) so the attachment outlives this process.

        The record is written before the pin: a process killed in between leaves a
        record from which :func:`detach_pinned` can still find what to remove.
        """
        path = os.path.abspath(path)
        _pin.require_bpffs(path)
        if os.path.lexists(path) and not os.path.isdir(path):
            raise PinError(f"cannot pin an attachment at {path}: something that is not a directory is there",
                           "pick another path, or remove what is there first (rm PATH)")
        if os.path.lexists(os.path.join(path, RECORD)) and read_record(path).get("kind") != PENDING:
            raise PinError(f"{path} already holds a pinned attachment",
                           "remove it first (Attachment.load_pinned(path).detach()) or pick another name")
        try:
            os.makedirs(path, mode=0o700, exist_ok=True)
        except OSError as e:
            raise PinError(f"cannot create the pin directory {path}: {e.strerror}") from None
        try:
            self._write_pin(path)
        except BaseException:
            _remove_pin_dir(path)
            raise
        self.pin_path = path

    def _write_pin(self, path, replace=False):
        obj, name = (self.link, LINK_PIN) if self.link is not None else (self.program, PROG_PIN)
        target = os.path.join(path, name)
        if replace:
            if name == PROG_PIN:
                if os.path.lexists(target):
                    os.unlink(target)
                _pin.pin_object(obj, target)
            _pin.write_record(os.path.join(path, RECORD), self.record())
            return
        _pin.write_record(os.path.join(path, RECORD), self.record())
        _pin.checkpoint(f"pin-record-{os.path.basename(path)}")
        _pin.pin_object(obj, target)

    def unpin(self):
        """Remove the pin (not the attachment: a pinned link still has our fd until close)."""
        if self.pin_path:
            _remove_pin_dir(self.pin_path)
            self.pin_path = None

    @classmethod
    def load_pinned(cls, path):
        """The attachment pinned at ``path`` (by :meth:`pin`, maybe in another process)."""
        path = os.path.abspath(path)
        rec = read_record(path)
        kind = _kind(rec.get("kind"))
        if kind is None:
            raise PinError(f"{path}: unknown attachment kind {rec.get('kind')!r}")
        fields = {k: v for k, v in rec.items() if k not in ("kind", "via")}
        att = kind(**fields)
        if rec.get("via") == "link":
            att.link = _pin.open_pinned(os.path.join(path, LINK_PIN), "link")
            linfo = info.link_info(att.link)
            att.prog_id = linfo.prog_id
            try:
                att.program = syscall.fd_by_id("prog", linfo.prog_id)
            except BPFError:
                att.program = None
        else:
            att.program = _pin.open_pinned(os.path.join(path, PROG_PIN), "prog")
            att.prog_id = info.prog_info(att.program).id
        att.pin_path = path
        return att

    def __str__(self):
        where = f" in netns {self.netns}" if self.netns else ""
        return f"{self.kind} prog {self.prog_id} on {self.ifname}{where}"



def read_record(path):
    rec = os.path.join(path, RECORD)
    data = _pin.read_record(rec, "xnf attachment record")
    if data is None:
        raise PinError(f"no pinned attachment at {path}", f"{rec} is missing")
    return data


def is_attachment_dir(path):
    """Whether ``path`` is (part of) a pinned attachment: a directory with a record or a pin."""
    return os.path.isdir(path) and any(os.path.lexists(os.path.join(path, n)) for n in (RECORD, LINK_PIN, PROG_PIN))


def detach_pinned(path):
    """Detach and unpin the attachment at ``path``, however far its pinning got.

    Whole, it is loaded and detached. A record without its pin (the pinning process
    died in between): a link died with that process; a netlink program is found by
    the id in the record and removed only while it is still the one attached. A pin
    without a record (pins made by older xnf) is unpinned, which ends a link.
    """
    try:
        att = Attachment.load_pinned(path)
    except PinError:
        att = _from_record(path)
    if att is not None:
        try:
            att.detach()
        finally:
            att.close()
    _remove_pin_dir(path)


def _remove_pending(rec):
    """Remove the netlink attachment a pending record announced, if it was made: each kind
    looks for it on the interface by its program id (a link made then ended with its process)."""
    ifname, netns, prog_id = rec.get("ifname"), rec.get("netns"), rec.get("prog_id")
    try:
        for kind in _all_kinds():
            kind.remove_netlink_of(prog_id, ifname, netns)
    except (InterfaceNotFoundError, NamespaceNotFoundError):
        pass  # the interface is gone, and what was attached to it


def _from_record(path):
    rec = _pin.read_record(os.path.join(path, RECORD), "xnf attachment record")
    if rec is not None and rec.get("kind") == PENDING:
        _remove_pending(rec)
        return None
    if rec is None or rec.get("via") != "netlink" or _kind(rec.get("kind")) is None:
        return None
    try:
        program = syscall.fd_by_id("prog", rec["prog_id"])
    except (BPFError, KeyError, TypeError):
        return None  # the program is gone, so it is attached nowhere
    fields = {k: v for k, v in rec.items() if k not in ("kind", "via")}
    try:
        return _kind(rec["kind"])(**fields, program=program)
    except TypeError:
        program.close()
        return None


def _remove_pin_dir(path):
    for name in (LINK_PIN, PROG_PIN, RECORD, RECORD + "~new"):  # (a record being replaced: pin.write_record)
        try:
            os.unlink(os.path.join(path, name))
        except FileNotFoundError:
            pass
    try:
        os.rmdir(path)
    except OSError:
        pass
