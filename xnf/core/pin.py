"""bpffs: find or mount it, pin and open programs, maps and links, and xnf's own pin root.

Pins keep kernel objects alive without a process holding an fd. xnf keeps its own
under one root, one directory per interface and network function::

    /sys/fs/bpf/xnf/<ifname>/<nf>/<attachment>/     (interface in the initial namespace)
    /sys/fs/bpf/xnf/<ifname>@<netns>/<nf>/<attachment>/
    /sys/fs/bpf/xnf/<ifname>/<nf>/maps/<map>          (maps the NF pins by name)

bpffs refuses names containing ``.``, so a ``.`` in an interface or namespace name
(``eth0.100``) is written ``%2e`` (and ``%`` as ``%25``).

:class:`PinRoot` is how a network function stores and finds its attachments by name.
"""
import ctypes
import errno
import os

from xnf.core import syscall
from xnf.core.errors import BPFError, PinError

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


def _check_name(what, name):
    if not name or "/" in name or "." in name:
        raise PinError(f"invalid {what} {name!r} for a pin path",
                       "use a plain name without '/' or '.' (bpffs refuses dots)")


def _escape(name):
    return name.replace("%", "%25").replace(".", "%2e")


def _unescape(name):
    return name.replace("%2e", ".").replace("%25", "%")


class PinRoot:
    """The pin directory of one network function on one interface.

    ``store(name, attachment)`` pins an attachment under a name, ``find(name)`` gives it
    back (in any later process), ``remove(name)`` detaches and unpins it.
    """

    def __init__(self, ifname, nf, netns=None, root=None):
        _check_name("interface name", _escape(ifname))
        _check_name("network function name", nf)
        if netns is not None:
            _check_name("network namespace name", _escape(netns))
        self.ifname, self.nf, self.netns = ifname, nf, netns
        self.root = root if root is not None else os.path.join(ensure_bpffs(), XNF_DIR)

    @property
    def path(self):
        ifdir = _escape(self.ifname) + ("" if self.netns is None else "@" + _escape(self.netns))
        return os.path.join(self.root, ifdir, self.nf)

    @property
    def maps_dir(self):
        """Where the network function pins its maps by name."""
        return os.path.join(self.path, "maps")

    def attachment_path(self, name):
        _check_name("attachment name", name)
        return os.path.join(self.path, name)

    def store(self, name, attachment):
        attachment.pin(self.attachment_path(name))
        return attachment

    def find(self, name):
        """The attachment stored under ``name``, or None."""
        from xnf.core.attach.base import RECORD, Attachment

        path = self.attachment_path(name)
        if not os.path.lexists(os.path.join(path, RECORD)):
            return None
        return Attachment.load_pinned(path)

    def names(self):
        from xnf.core.attach.base import RECORD

        try:
            entries = sorted(os.listdir(self.path))
        except FileNotFoundError:
            return []
        return [n for n in entries if os.path.lexists(os.path.join(self.path, n, RECORD))]

    def attachments(self):
        return {name: self.find(name) for name in self.names()}

    def remove(self, name):
        """Detach and unpin the attachment ``name``; False if there was none."""
        att = self.find(name)
        if att is None:
            return False
        att.detach()
        self._prune()
        return True

    def remove_all(self):
        """Detach every attachment, unpin every map, and remove the directory."""
        for name in self.names():
            self.remove(name)
        if os.path.isdir(self.maps_dir):
            for entry in os.listdir(self.maps_dir):
                os.unlink(os.path.join(self.maps_dir, entry))
        self._prune()

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
        """Every PinRoot with something in it under ``root``: for ``xnf status``."""
        root = root if root is not None else os.path.join(ensure_bpffs(), XNF_DIR)
        try:
            ifdirs = sorted(os.listdir(root))
        except FileNotFoundError:
            return []
        found = []
        for ifdir in ifdirs:
            ifname, _, netns = ifdir.partition("@")
            for nf in sorted(os.listdir(os.path.join(root, ifdir))):
                found.append(cls(_unescape(ifname), nf, _unescape(netns) or None, root=root))
        return found

    def __repr__(self):
        return f"PinRoot({self.path!r})"
