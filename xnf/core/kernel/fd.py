"""A file descriptor that is closed exactly once, by its owner or at garbage collection."""
import os

from xnf.core.errors import ObjectClosedError


class FD:
    __slots__ = ("_fd", "__weakref__")

    def __init__(self, fd):
        if fd < 0:
            raise ValueError(f"invalid file descriptor {fd}")
        self._fd = fd

    def __int__(self):
        if self._fd < 0:
            raise ObjectClosedError("the BPF object was closed", "open it again (from its pin or id)")
        return self._fd

    __index__ = __int__

    @property
    def closed(self):
        return self._fd < 0

    def close(self):
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def detach(self):
        """Give up ownership: the caller now closes the returned raw fd."""
        fd, self._fd = self._fd, -1
        return fd

    def dup(self):
        return FD(os.dup(int(self)))

    def __del__(self):
        try:
            self.close()
        except OSError:
            pass

    def __repr__(self):
        return f"FD({self._fd})"
