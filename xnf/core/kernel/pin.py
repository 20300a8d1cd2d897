"""bpffs: find or mount it; pin and open programs, maps and links; records, locks, checkpoints.

Pins keep kernel objects alive without a process holding an fd. A record is JSON in a
symlink's target (:func:`write_record`, :func:`read_record`): bpffs holds no regular
files. :class:`InterfaceLock` is the per-interface flock of the attach protocol, and
:func:`checkpoint` its named steps (a test can stop a process at one). xnf's own pin
root, one directory per network function on an interface, is
:class:`xnf.core.attach.pinroot.PinRoot`, built on these.
"""
import ctypes
import errno
import fcntl
import json
import os
import sys
import threading
import time

from xnf.core.errors import BPFError, PinError
from xnf.core.kernel import syscall
from xnf.core.uapi import BPF_FS_MAGIC

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


def lexists(path):
    """os.path.lexists, except that a permission error is an error, not "absent"."""
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except PermissionError:
        raise _denied(path) from None
    return True


def listdir(path):
    """The entries of ``path`` ([] if it is missing); PinError when permission is lacking."""
    try:
        return sorted(os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except PermissionError:
        raise _denied(path) from None


MARK = "~"  # reserved in pin names: <record>~new while one is replaced, <nf>~attaching~<pid>


# --- records ---------------------------------------------------------------------------

def write_record(path, data):
    """Store ``data`` as JSON in the target of a symlink at ``path`` (replacing one there, atomically).

    bpffs holds only directories, pins and symlinks, so a record is a symlink that
    ``readlink`` (or :func:`read_record`) turns back into the data.
    """
    fresh = path + MARK + "new"
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
