"""A file descriptor that is closed exactly once, by its owner or at garbage collection."""
import os


class FD:
    __slots__ = ("_fd", "__weakref__")

    def __init__(self, fd):
        if fd < 0:
            raise ValueError(f"invalid file descriptor {fd}")
        self._fd = fd

    def __int__(self):
        if self._fd < 0:
            raise ValueError("file descriptor is closed")
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
