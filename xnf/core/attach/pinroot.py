"""xnf's pin root: one directory per network function on an interface, built and removed whole.

    /sys/fs/bpf/xnf/<ifname>/<nf>/<attachment>/     (interface in the initial namespace)
    /sys/fs/bpf/xnf/<ifname>@<netns>/<nf>/<attachment>/
    /sys/fs/bpf/xnf/<ifname>/<nf>/maps/<map>          (maps the NF pins by name)

bpffs refuses names containing ``.``, so a ``.`` in an interface or namespace name
(``eth0.100``) is written ``%2e`` (and ``%`` as ``%25``).

:class:`PinRoot` is how a network function stores and finds its attachments by name.

The attach protocol (modelled on libxdp's lock and on write-then-rename): an instance
is built under an flock on its interface directory (:class:`InterfaceLock`), in a
staging directory ``<nf>~attaching~<pid>``, and appears by one atomic rename to
``<nf>`` (:class:`Transaction`). Detach takes the same lock and first renames the
instance to ``<nf>~detaching~<pid>``. So a process killed at any step leaves either
nothing, a whole instance, or a leftover that :meth:`PinRoot.broken` reports (its lock
is free: its maker is dead) and :meth:`PinRoot.remove_all` clears, links and filters
included, from the records beside the pins (:func:`xnf.core.attach.base.detach_pinned`).
It sits in attach because an instance is made of attachments; bpffs itself, records,
locks and the checkpoints are :mod:`xnf.core.kernel.pin`.
"""
import contextlib
import ctypes
import errno
import os
from typing import NamedTuple

from xnf.core.errors import AttachError, PinError
from xnf.core.kernel.pin import (MARK, XNF_DIR, InterfaceLock, PinPermissionError, checkpoint, ensure_bpffs,
                                 is_locked, lexists, listdir, lock_holder, read_record, write_record)

_libc = ctypes.CDLL(None, use_errno=True)


# --- pin roots --------------------------------------------------------------------------

def _check_name(what, name):
    if not name or "/" in name or "." in name:
        raise PinError(f"invalid {what} {name!r} for a pin path",
                       "use a plain name without '/' or '.' (bpffs refuses dots)")


def _escape(name):
    return name.replace("%", "%25").replace(".", "%2e")


def _unescape(name):
    return name.replace("%2e", ".").replace("%25", "%")


ATTACHING, DETACHING = "attaching", "detaching"
_MARK = MARK  # <nf>~attaching~<pid>: a staging or detaching directory beside the instance


class AlreadyAttachedError(PinError, AttachError):
    """The network function already has an instance on the interface."""


class BrokenInstanceError(PinError, AttachError):
    """A process died while attaching or detaching and left part of an instance behind."""


class Leftover(NamedTuple):
    """A staging (``attaching``) or ``detaching`` directory beside an instance."""

    path: str
    state: str
    pid: int

    def describe(self):
        return f"a process (pid {self.pid}) died while {self.state}, leaving {self.path}"


def _rename_noreplace(src, dst):
    """rename(2) that fails instead of replacing ``dst`` (renameat2 RENAME_NOREPLACE)."""
    if _libc.renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
        return
    err = ctypes.get_errno()
    raise OSError(err, os.strerror(err), dst)


_AT_FDCWD = -100
_RENAME_NOREPLACE = 1


class PinRoot:
    """The pin directory of one network function on one interface.

    ``store(name, attachment)`` pins an attachment under a name, ``find(name)`` gives it
    back (in any later process), ``remove(name)`` detaches and unpins it. An instance
    built with :meth:`attaching` appears only whole; :meth:`remove_all` takes away the
    instance and anything a dead process left beside it.
    """

    def __init__(self, ifname, nf, netns=None, root=None):
        _check_name("interface name", _escape(ifname))
        _check_name("network function name", nf)
        if _MARK in nf:
            raise PinError(f"invalid network function name {nf!r} for a pin path", f"{_MARK!r} is reserved")
        if netns is not None:
            _check_name("network namespace name", _escape(netns))
        self.ifname, self.nf, self.netns = ifname, nf, netns
        self.root = root if root is not None else os.path.join(ensure_bpffs(), XNF_DIR)

    @property
    def ifdir(self):
        """The interface's directory: its lock, and every network function's instance."""
        name = _escape(self.ifname) + ("" if self.netns is None else "@" + _escape(self.netns))
        return os.path.join(self.root, name)

    @property
    def path(self):
        return os.path.join(self.ifdir, self.nf)

    @property
    def maps_dir(self):
        """Where the network function pins its maps by name."""
        return os.path.join(self.path, "maps")

    @property
    def label(self):
        return f"{self.nf} on {self.ifname}" + (f" in netns {self.netns}" if self.netns else "")

    @property
    def detach_command(self):
        return f"xnf detach {self.nf} {self.ifname}" + (f" --netns {self.netns}" if self.netns else "")

    def attachment_path(self, name):
        _check_name("attachment name", name)
        return os.path.join(self.path, name)

    def exists(self):
        """Whether the (whole) instance directory is there."""
        return lexists(self.path)

    # --- attachments and records of the instance ---------------------------------

    def store(self, name, attachment):
        attachment.pin(self.attachment_path(name))
        return attachment

    def find(self, name):
        """The attachment stored under ``name``, or None."""
        # lazy: `xnf status` with nothing attached only lists directories; base brings attrs
        from xnf.core.attach.base import RECORD, Attachment

        path = self.attachment_path(name)
        if not lexists(os.path.join(path, RECORD)):
            return None
        return Attachment.load_pinned(path)

    def names(self):
        """Names of the attachments pinned in the instance: its directories with a record.
        Other entries (pinned maps or records of the NF's own) are not looked into: a
        lookup through a 0600 pin is EACCES even for root, not "absent"."""
        from xnf.core.attach.base import RECORD  # lazy: as in find()

        return [n for n in listdir(self.path)
                if os.path.isdir(os.path.join(self.path, n)) and lexists(os.path.join(self.path, n, RECORD))]

    def attachments(self):
        return {name: self.find(name) for name in self.names()}

    def open_maps(self, names):
        """{name: Map} of the maps ``names`` pinned by :meth:`Transaction.pin_maps`, opened.

        A committed instance has them all, so one missing means it is not whole, most often
        because another process is detaching it (its directory renamed after we read its
        records): a :class:`PinError` then (what was opened is closed), which `xnf status`
        and `xnf detach` take for "not attached as a whole", never a partial set of maps
        that fails later on the one it lacks (a KeyError in `xnf status`, two runs at once).
        """
        from xnf.core.kernel.maps import Map  # lazy: `xnf status` with nothing attached opens no map

        maps = {}
        try:
            for name in names:
                _check_name("map name", name)
                maps[name] = Map.from_pin(os.path.join(self.maps_dir, name))
        except PinError as e:
            for m in maps.values():
                m.close()
            if isinstance(e, PinPermissionError):
                raise
            raise PinError(f"the {self.label} instance at {self.path} lacks its pinned map {name}: {e.args[0]}",
                           f"if no detach is under way, remove it with `{self.detach_command}`") from None
        return maps

    def read_record(self, name):
        """The record ``name`` of the instance (see :meth:`Transaction.write_record`), or None."""
        _check_name("record name", name)
        return read_record(os.path.join(self.path, name))

    def remove(self, name):
        """Detach and unpin the attachment ``name``; False if there was none."""
        att = self.find(name)
        if att is None:
            return False
        att.detach()
        self._prune()
        return True

    # --- the protocol ---------------------------------------------------------------

    def lock(self):
        return InterfaceLock(self.ifdir, f"{self.ifname}" + (f" in netns {self.netns}" if self.netns else ""))

    @contextlib.contextmanager
    def locked(self):
        """Hold the interface lock for the body (taking it again inside, as ``remove_all`` does, nests)."""
        with self.lock():
            yield self

    def attaching(self):
        """A :class:`Transaction`: build the instance in a staging directory, then commit."""
        return Transaction(self)

    def leftovers(self):
        """Staging and detaching directories of this network function on this interface."""
        found = []
        for entry in listdir(self.ifdir):
            nf, sep, rest = entry.partition(_MARK)
            state, _, pid = rest.partition(_MARK)
            if nf == self.nf and sep and state in (ATTACHING, DETACHING) and pid.isdigit():
                found.append(Leftover(os.path.join(self.ifdir, entry), state, int(pid)))
        return found

    def busy(self):
        """The pid attaching or detaching on this interface now (0 if unknown), else None."""
        if not is_locked(self.ifdir):
            return None
        return lock_holder(self.ifdir) or 0

    def broken(self):
        """Leftovers of processes that died while attaching or detaching ([] while one is at work).

        Listed first, then the lock checked free, then each leftover checked again: a
        leftover made before a moment when nobody held the lock was abandoned.
        """
        left = self.leftovers()
        if not left or is_locked(self.ifdir):
            return []
        return [item for item in left if lexists(item.path)]

    def refuse_if_present(self):
        """Raise unless the interface is free for a new instance (call with the lock held)."""
        if self.exists():
            raise AlreadyAttachedError(f"{self.nf} is already attached to {self.ifname} (pinned at {self.path})",
                                       f"detach it first with `{self.detach_command}`")
        left = self.leftovers()
        if left:
            raise BrokenInstanceError(f"{self.label} has a broken instance: {left[0].describe()}",
                                      f"clear it with `{self.detach_command}`")

    def remove_all(self):
        """Detach every attachment, unpin every map and record, remove the directory; and
        the same for anything a dead process left beside it. Runs under the interface lock.

        The instance is first renamed to a ``detaching`` directory, so that a detach cut
        short shows as broken (and is finished by the next detach), never as whole.
        """
        with self.locked():
            checkpoint("detach-locked")
            if self.exists():
                marked = os.path.join(self.ifdir, f"{self.nf}{_MARK}{DETACHING}{_MARK}{os.getpid()}")
                _rename_noreplace(self.path, marked)
                checkpoint("detach-marked")
            for item in self.leftovers():
                remove_instance_dir(item.path)
            self._prune()
            checkpoint("detach-removed")

    def _prune(self):
        """Remove empty directories from ours up to (not including) the root."""
        path = self.maps_dir
        while path != self.root and path.startswith(self.root):
            try:
                os.rmdir(path)
            except OSError as e:
                if e.errno not in (errno.ENOENT,):
                    break
            path = os.path.dirname(path)

    @classmethod
    def scan(cls, root=None):
        """Every PinRoot with something in it under ``root`` (instances and leftovers): for ``xnf status``."""
        root = root if root is not None else os.path.join(ensure_bpffs(), XNF_DIR)
        found = []
        for ifdir in listdir(root):
            ifname, _, netns = ifdir.partition("@")
            nfs = {entry.partition(_MARK)[0] for entry in listdir(os.path.join(root, ifdir))}
            for nf in sorted(nfs):
                found.append(cls(_unescape(ifname), nf, _unescape(netns) or None, root=root))
        return found

    def __repr__(self):
        return f"PinRoot({self.path!r})"


class Transaction:
    """One instance being built: under the interface lock, in a staging directory
    ``<nf>~attaching~<pid>`` beside where it will live, made visible by one atomic rename.

    ``with root.attaching() as txn: ...; txn.commit()``. Leaving the block without a
    commit removes the staging directory and what its records name (only what this
    attempt made); the lock is released either way. Killed halfway, the staging
    directory stays: :meth:`PinRoot.broken` reports it and :meth:`PinRoot.remove_all`
    clears it.
    """

    def __init__(self, root):
        self.root = root
        self.path = None
        self.committed = False
        self._stored = []
        self._lock = root.lock()

    def __enter__(self):
        self._lock.acquire()
        try:
            checkpoint("locked")
            self.root.refuse_if_present()
            self.path = os.path.join(self.root.ifdir, f"{self.root.nf}{_MARK}{ATTACHING}{_MARK}{os.getpid()}")
            os.mkdir(self.path, 0o700)
            checkpoint("staging")
        except BaseException:
            self._lock.release()
            raise
        return self

    @property
    def maps_dir(self):
        return os.path.join(self.path, "maps")

    def store(self, name, attachment):
        """Pin ``attachment`` as ``name`` of the instance (record first, so a cut pin is still found)."""
        _check_name("attachment name", name)
        attachment.pin(os.path.join(self.path, name))
        self._stored.append(attachment)
        checkpoint(f"pinned-{name}")
        return attachment

    def intend(self, name, program):
        """Record, before attaching ``program`` as ``name``, that it is about to be attached.

        A netlink attachment (XDP through netlink, a cls_bpf filter) outlives its process;
        killed between the kernel's answer and :meth:`store`, this pending record is what
        lets a later detach find it (by program id) and remove it. Links need none: they
        end with their process.
        """
        from xnf.core.attach.base import PENDING, RECORD  # lazy: as in PinRoot.find()
        from xnf.core.kernel import info

        _check_name("attachment name", name)
        os.makedirs(os.path.join(self.path, name), mode=0o700, exist_ok=True)
        prog_id = info.prog_info(getattr(program, "fd", program)).id
        write_record(os.path.join(self.path, name, RECORD),
                     {"kind": PENDING, "ifname": self.root.ifname, "netns": self.root.netns, "prog_id": prog_id})

    def pin_maps(self, maps):
        """Pin ``(name, map)`` pairs under the instance's ``maps`` directory."""
        os.makedirs(self.maps_dir, mode=0o700, exist_ok=True)
        for name, m in maps:
            _check_name("map name", name)
            m.pin(os.path.join(self.maps_dir, name))
        checkpoint("pinned-maps")

    def write_record(self, name, data):
        """A JSON record of the instance, read back with :meth:`PinRoot.read_record`."""
        _check_name("record name", name)
        write_record(os.path.join(self.path, name), data)
        checkpoint(f"record-{name}")

    def commit(self):
        """Make the instance visible, whole, by renaming the staging directory."""
        try:
            _rename_noreplace(self.path, self.root.path)
        except OSError as e:
            raise PinError(f"cannot publish {self.root.label} at {self.root.path}: {e.strerror}") from None
        for att in self._stored:
            att.pin_path = os.path.join(self.root.path, os.path.basename(att.pin_path))
        self.path, self.committed = None, True
        checkpoint("committed")

    def __exit__(self, *exc):
        try:
            if not self.committed and self.path is not None:
                remove_instance_dir(self.path)
        finally:
            self._lock.release()


def remove_instance_dir(path):
    """Remove an instance directory, however far its making or removal got.

    Attachments first (from their records: links unpinned and detached, netlink
    programs and tc filters removed while still ours), so that programs stop before
    their maps go; then every other pin and record, then the directory.
    """
    from xnf.core.attach.base import detach_pinned, is_attachment_dir  # lazy: as in PinRoot.find()

    entries = listdir(path)
    for name in entries:
        sub = os.path.join(path, name)
        if is_attachment_dir(sub):
            detach_pinned(sub)
            checkpoint(f"detached-{name}")
    _remove_tree(path)


def _remove_tree(path):
    """Unpin and unlink everything under ``path``, then remove it (the directory last, so
    a removal cut short leaves the directory, which is still reported)."""
    _empty(path)
    checkpoint("unpinned")
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass


def _empty(path):
    for name in listdir(path):
        sub = os.path.join(path, name)
        if os.path.isdir(sub) and not os.path.islink(sub):
            _empty(sub)
            try:
                os.rmdir(sub)
            except FileNotFoundError:
                pass
        else:
            try:
                os.unlink(sub)
            except FileNotFoundError:
                pass
