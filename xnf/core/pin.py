"""bpffs: find or mount it, pin and open programs, maps and links, and xnf's own pin root.

Pins keep kernel objects alive without a process holding an fd. xnf keeps its own
under one root, one directory per interface and network function::

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
included, from the records beside the pins. Records are JSON in symlink targets
(:func:`write_record`, :func:`read_record`): bpffs holds no regular files.
"""
import contextlib
import ctypes
import errno
import fcntl
import json
import os
import sys
import threading
import time
from typing import NamedTuple

from xnf.core import syscall
from xnf.core.errors import AttachError, BPFError, PinError

BPF_FS_MAGIC = 0xCAFE4A11
DEFAULT_BPFFS = "/sys/fs/bpf"
XNF_DIR = "xnf"

_libc = ctypes.CDLL(None, use_errno=True)


def _fs_type(path):
    buf = ctypes.create_string_buffer(256)  # struct statfs; f_type is its first word
    if _libc.statfs(os.fsencode(path), buf) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFF


def is_bpffs(path):
    try:
        return _fs_type(path) == BPF_FS_MAGIC
    except OSError:
        return False


def find_bpffs():
    """The mount point of a bpf filesystem (``/sys/fs/bpf`` preferred), or None."""
    found = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                if right.split(" ", 1)[0] == "bpf":
                    found.append(left.split(" ")[4].replace("\\040", " "))
    except OSError:
        return None
    if DEFAULT_BPFFS in found:
        return DEFAULT_BPFFS
    return found[0] if found else None


def mount_bpffs(path=DEFAULT_BPFFS):
    """Mount a bpf filesystem at ``path`` (created if needed); PinError when impossible."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise PinError(f"cannot create the bpffs mount point {path}: {e.strerror}") from None
    if _libc.mount(b"bpf", os.fsencode(path), b"bpf", 0, b"mode=0700") != 0:
        err = ctypes.get_errno()
        hint = ("mounting needs CAP_SYS_ADMIN: run as root, or mount it once with "
                f"`mount -t bpf bpf {path}`")
        if err == errno.ENODEV:
            hint = "the kernel has no bpf filesystem (CONFIG_BPF_SYSCALL)"
        raise PinError(f"cannot mount bpffs at {path}: {os.strerror(err)}", hint)
    return path


def ensure_bpffs(path=None):
    """A usable bpffs mount point: ``path`` if given (mounted there if needed), else the
    existing mount, else ``/sys/fs/bpf`` mounted now."""
    if path is not None:
        return path if is_bpffs(path) else mount_bpffs(path)
    return find_bpffs() or mount_bpffs(DEFAULT_BPFFS)


def require_bpffs(path):
    """Raise PinError unless ``path`` (or its nearest existing parent) is on bpffs."""
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not is_bpffs(probe):
        raise PinError(f"{path} is not on a bpf filesystem",
                       f"pin under a bpffs mount such as {find_bpffs() or DEFAULT_BPFFS} "
                       "(mount one with `mount -t bpf bpf /sys/fs/bpf`)")


def pin_object(fd, path):
    """Pin a program, map or link fd at ``path``, creating parent directories.

    The pin is tried first: checks and directory creation run only when it fails, so
    pinning many objects into an existing directory costs one syscall each.
    """
    try:
        syscall.obj_pin(fd, path)
        return
    except BPFError as e:
        if e.errno == errno.EEXIST:
            raise PinError(f"{path} is already pinned", "unpin it first or choose another path") from None
        if e.errno != errno.ENOENT:
            require_bpffs(path)
            raise PinError(f"cannot pin at {path}: {e.strerror}", e.hint or None) from None
    require_bpffs(path)  # ENOENT: a parent directory is missing
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    try:
        syscall.obj_pin(fd, path)
    except BPFError as e:
        raise PinError(f"cannot pin at {path}: {e.strerror}", e.hint or None) from None


def object_kind(fd):
    """``prog``, ``map`` or ``link``: what a bpf fd refers to (from fdinfo), else None."""
    try:
        with open(f"/proc/self/fdinfo/{int(fd)}") as f:
            keys = {line.split(":", 1)[0] for line in f}
    except OSError:
        return None
    for key, kind in (("link_type", "link"), ("prog_type", "prog"), ("map_type", "map")):
        if key in keys:
            return kind
    return None


def open_pinned(path, kind=None, flags=0):
    """Open the object pinned at ``path``; with ``kind`` set, it must be that kind."""
    try:
        fd = syscall.obj_get(path, flags)
    except BPFError as e:
        if e.errno == errno.ENOENT:
            raise PinError(f"nothing is pinned at {path}") from None
        require_bpffs(path)  # the usual reason for any other errno: the path is not on bpffs
        raise PinError(f"cannot open pin {path}: {e.strerror}", e.hint or None) from None
    if kind is not None:
        found = object_kind(fd)
        if found != kind:
            fd.close()
            raise PinError(f"{path} holds a {found}, not a {kind}")
    return fd


def unpin(path):
    """Remove one pin; the object lives on while something else references it."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        raise PinError(f"nothing is pinned at {path}") from None


class PinPermissionError(PinError):
    """Pins could not be read or written for lack of privileges."""


def _denied(path):
    return PinPermissionError(f"permission denied reading {path}",
                    "pins on bpffs are readable by root only: permission is needed, run xnf as root (sudo)")


def _exists(path):
    """os.path.lexists, except that a permission error is an error, not "absent"."""
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except PermissionError:
        raise _denied(path) from None
    return True


def _listdir(path):
    """The entries of ``path`` ([] if it is missing); PinError when permission is lacking."""
    try:
        return sorted(os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except PermissionError:
        raise _denied(path) from None


# --- records ---------------------------------------------------------------------------

def write_record(path, data):
    """Store ``data`` as JSON in the target of a symlink at ``path`` (replacing one there, atomically).

    bpffs holds only directories, pins and symlinks, so a record is a symlink that
    ``readlink`` (or :func:`read_record`) turns back into the data.
    """
    fresh = path + _MARK + "new"
    if os.path.lexists(fresh):
        os.unlink(fresh)
    os.symlink(json.dumps(data, sort_keys=True), fresh)
    os.rename(fresh, path)  # atomic: the record is the old one or the new one, never missing


def read_record(path, what="xnf record"):
    """The data of the record at ``path``, or None if there is none."""
    try:
        return json.loads(os.readlink(path))
    except (FileNotFoundError, NotADirectoryError):
        return None
    except PermissionError:
        raise _denied(path) from None
    except (OSError, ValueError) as e:
        raise PinError(f"{path} is not an {what} ({e})") from None


# --- fault injection (tests only) -----------------------------------------------------

PAUSE_ENV = "XNF_TEST_PAUSE_AT"
"""Test-only: ``XNF_TEST_PAUSE_AT=step[,step...]`` makes the process stop at those steps of
attach and detach (it prints ``xnf: test pause at STEP (pid N)`` on stderr and sleeps), so
that a test can SIGKILL it there. Read once at import; unset, :func:`checkpoint` is one
set lookup."""
_PAUSE_AT = frozenset(filter(None, os.environ.get(PAUSE_ENV, "").split(",")))


def checkpoint(step):
    """A named step of the attach/detach protocol (see docs/reliability.md for the list)."""
    if step in _PAUSE_AT:
        sys.stderr.write(f"xnf: test pause at {step} (pid {os.getpid()})\n")
        sys.stderr.flush()
        while True:
            time.sleep(3600)


# --- the per-interface lock -------------------------------------------------------------

LOCK_TIMEOUT = 30.0
"""Seconds to wait for another xnf process that attaches or detaches on the same interface."""
_HELD = set()  # (directory, thread id) of the locks this process holds: taking one again nests


def _same_file(fd, path):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def lock_holder(path):
    """The pid holding the flock on ``path`` (from /proc/locks), or None."""
    try:
        st = os.stat(path)
        with open("/proc/locks") as f:
            lines = f.readlines()
    except OSError:
        return None
    want = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    for line in lines:
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK" or fields[4] == "->":
            continue
        try:
            major, minor, ino = fields[5].split(":")
            if (int(major, 16), int(minor, 16), int(ino)) == want:
                return int(fields[4])
        except ValueError:
            continue
    return None


def is_locked(path):
    """Whether some process holds the lock on directory ``path`` right now."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except PermissionError:
        raise _denied(path) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a lock we got
    return False


class InterfaceLock:
    """An exclusive flock(2) on an interface's directory of the pin root.

    Held across check-attach-pin and across detach, as libxdp locks its bpffs
    directory: two xnf processes never build or remove instances on one interface at
    the same time. The kernel drops the lock when its holder dies, so a lock that is
    free while a half-made instance exists proves that its maker is dead.
    """

    def __init__(self, path, label, timeout=LOCK_TIMEOUT):
        self.path, self.label, self.timeout = path, label, timeout
        self.fd = None
        self._nested = False

    def acquire(self):
        """Take the lock, waiting up to ``timeout`` s; a thread that holds it already just nests."""
        key = (self.path, threading.get_ident())
        if key in _HELD:
            self._nested = True
            return self
        deadline = time.monotonic() + self.timeout
        while True:
            fd = self._open()
            if fd is None:
                continue  # removed between makedirs and open: make it again
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if time.monotonic() > deadline:
                    holder = lock_holder(self.path)
                    raise PinError(f"{self.label} is locked by another xnf process"
                                   + (f" (pid {holder})" if holder else "") + " that is attaching or detaching",
                                   "wait for it to finish; if it hangs, stop it and see `xnf status`") from None
                time.sleep(0.02)
                continue
            if _same_file(fd, self.path):
                self.fd = fd
                _HELD.add(key)
                return self
            os.close(fd)  # the directory was removed (and maybe made again) while we waited

    def _open(self):
        try:
            os.makedirs(self.path, mode=0o700, exist_ok=True)
            return os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except PermissionError:
            raise _denied(self.path) from None

    def release(self):
        if self._nested:
            self._nested = False
        elif self.fd is not None:
            _HELD.discard((self.path, threading.get_ident()))
            try:
                os.rmdir(self.path)  # only if empty: nothing on the interface, keep bpffs tidy
            except OSError:
                pass
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


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
PENDING = "pending"  # the kind of a record written before its attachment exists (Transaction.intend)
_MARK = "~"  # <nf>~attaching~<pid>: a staging or detaching directory beside the instance


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
        return _exists(self.path)

    # --- attachments and records of the instance ---------------------------------

    def store(self, name, attachment):
        attachment.pin(self.attachment_path(name))
        return attachment

    def find(self, name):
        """The attachment stored under ``name``, or None."""
        from xnf.core.attach.base import RECORD, Attachment

        path = self.attachment_path(name)
        if not _exists(os.path.join(path, RECORD)):
            return None
        return Attachment.load_pinned(path)

    def names(self):
        from xnf.core.attach.base import RECORD

        return [n for n in _listdir(self.path) if _exists(os.path.join(self.path, n, RECORD))]

    def attachments(self):
        return {name: self.find(name) for name in self.names()}

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
        for entry in _listdir(self.ifdir):
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
        return [item for item in left if _exists(item.path)]

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
        for ifdir in _listdir(root):
            ifname, _, netns = ifdir.partition("@")
            nfs = {entry.partition(_MARK)[0] for entry in _listdir(os.path.join(root, ifdir))}
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
        from xnf.core import info

        _check_name("attachment name", name)
        os.makedirs(os.path.join(self.path, name), mode=0o700, exist_ok=True)
        prog_id = info.prog_info(getattr(program, "fd", program)).id
        write_record(os.path.join(self.path, name, "record"),
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
    from xnf.core.attach.base import detach_pinned, is_attachment_dir

    entries = _listdir(path)
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
    for name in _listdir(path):
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
