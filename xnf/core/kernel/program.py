"""A loaded BPF program that owns its fd: found by fd, id or pin, test-run, pinned."""
import attrs

from xnf.core import uapi
from xnf.core.kernel import syscall
from xnf.core.kernel.fd import FD
from xnf.core.kernel.info import prog_info
from xnf.core.kernel.pin import open_pinned, pin_object


@attrs.frozen
class TestRunResult:
    retval: int
    data: bytes
    duration_ns: int
    ctx: bytes = b""


class Program:
    """A loaded program that owns its fd."""

    def __init__(self, fd, name, type, spec=None, pinned_at=None):
        self.fd = fd if isinstance(fd, FD) else FD(fd)
        self.name = name
        self.type = type
        self.spec = spec
        self.pinned_at = pinned_at

    @classmethod
    def from_fd(cls, fd, pinned_at=None):
        fd = fd if isinstance(fd, FD) else FD(fd)
        info = prog_info(fd)
        return cls(fd, info.name, info.type, pinned_at=pinned_at)

    @classmethod
    def from_id(cls, prog_id):
        return cls.from_fd(syscall.fd_by_id("prog", prog_id))

    @classmethod
    def from_pin(cls, path):
        return cls.from_fd(open_pinned(path, "prog"), pinned_at=path)

    def info(self):
        """The kernel's ``bpf_prog_info`` of this program (id, tag, name, type...)."""
        return prog_info(self.fd)

    @property
    def id(self):
        return self.info().id

    @property
    def tag(self):
        return self.info().tag

    def test_run(self, data=b"", repeat=1, ctx=None, data_out_size=None, ctx_out_size=0, flags=0, cpu=0):
        """Run the program once (or ``repeat`` times) on ``data`` with BPF_PROG_TEST_RUN."""
        if data_out_size is None:
            data_out_size = len(data) + 256 if data else 0
        retval, out, ctx_out, duration = syscall.prog_test_run(
            int(self.fd), data, data_out_size, repeat, ctx, ctx_out_size or (len(ctx) if ctx else 0), flags, cpu)
        return TestRunResult(retval, out, duration, ctx_out)

    def pin(self, path):
        pin_object(self.fd, path)
        self.pinned_at = path

    def close(self):
        self.fd.close()

    def __repr__(self):
        return f"Program({self.name!r}, type={uapi.PROG_TYPE_NAMES.get(self.type, self.type)})"
