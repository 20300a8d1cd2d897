"""Run code inside a named network namespace, from the calling thread only.

bpf(2) resolves an ifindex in the network namespace of the calling thread, and a
netlink socket belongs to the namespace it was created in. So attaching to an
interface inside ``ip netns add NAME`` means: ``setns(2)`` this thread into
``/run/netns/NAME``, do the work, and come back. ``setns`` with ``CLONE_NEWNET``
affects only the calling thread, so other threads of the process are undisturbed.
"""
import contextlib
import ctypes
import os
import socket

from xnf.core.errors import InterfaceNotFoundError, NamespaceNotFoundError, XnfError  # noqa: F401 (re-exported)

CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = "/run/netns"

_libc = ctypes.CDLL(None, use_errno=True)


def netns_path(name):
    """The file that names the namespace: ``/run/netns/NAME``, or ``name`` itself if it is a path."""
    return name if "/" in name else os.path.join(NETNS_RUN_DIR, name)


def exists(name):
    return name is None or os.path.exists(netns_path(name))


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def _open_own():
    return os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)


@contextlib.contextmanager
def entered(name):
    """Enter namespace ``name`` for the body of the ``with``; ``None`` means stay where we are."""
    if name is None:
        yield
        return
    try:
        target = os.open(netns_path(name), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NamespaceNotFoundError(name) from None
    try:
        own = _open_own()
        try:
            try:
                _setns(target)
            except OSError as e:
                raise XnfError(f"cannot enter network namespace {name!r}: {e.strerror}",
                               "entering a namespace needs CAP_SYS_ADMIN") from None
            try:
                yield
            finally:
                _setns(own)
        finally:
            os.close(own)
    finally:
        os.close(target)


@contextlib.contextmanager
def private():
    """A fresh, empty namespace (only ``lo``, down) for the body, dropped on exit.

    Feature probes attach throwaway programs here, so nothing visible is ever touched.
    """
    own = _open_own()
    try:
        if _libc.unshare(CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"unshare(CLONE_NEWNET): {os.strerror(err)}")
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(own)


def ifindex(ifname, netns=None):
    """The index of ``ifname`` inside ``netns``; raises InterfaceNotFoundError."""
    with entered(netns):
        try:
            return socket.if_nametoindex(ifname)
        except OSError:
            raise InterfaceNotFoundError(ifname, netns) from None


def ifname(index, netns=None):
    """The name of interface ``index`` inside ``netns``, or None if it is gone."""
    with entered(netns):
        try:
            return socket.if_indextoname(index)
        except OSError:
            return None
