"""Reading a ``BPF_MAP_TYPE_PERF_EVENT_ARRAY`` from Python: one perf ring per CPU, without libbpf.

``bpf_perf_event_output(ctx, &map, BPF_F_CURRENT_CPU, ...)`` writes into the perf event
stored in the map at the current CPU's index. So for every CPU we open a software
``PERF_COUNT_SW_BPF_OUTPUT`` event with ``perf_event_open(2)`` (raw samples, a wake-up
per sample), map its ring (one metadata page, then ``page_count`` data pages), store
its fd in the map at that CPU's index and enable it; one epoll watches them all.

The metadata page (``struct perf_event_mmap_page``) holds ``data_head`` (the kernel's
write position) and ``data_tail`` (ours) at fixed offsets. Records are a
``perf_event_header`` (u32 type, u16 misc, u16 size) and a body:
``PERF_RECORD_SAMPLE`` with ``PERF_SAMPLE_RAW`` is a u32 size and that many bytes (the
kernel pads them so the record stays 8-byte aligned: a 24-byte event arrives as 28
bytes); ``PERF_RECORD_LOST`` carries how many samples did not fit. A record may wrap
past the end of the data area; it is then copied out in two pieces.
"""
import ctypes
import fcntl
import mmap
import os
import platform
import struct

from xnf.core import uapi
from xnf.core.errors import BPFError, ConfigError
from xnf.core.kernel import syscall
from xnf.core.kernel.fd import FD
from xnf.core.kernel.ringbuf import PAGE_SIZE, EpollReader, _fence_call, fence, map_fd_and_info
from xnf.core.uapi import (PERF_COUNT_SW_BPF_OUTPUT, PERF_FLAG_FD_CLOEXEC, PERF_RECORD_LOST, PERF_RECORD_SAMPLE,
                           PERF_SAMPLE_RAW, PERF_TYPE_SOFTWARE)

_NR_PERF_EVENT_OPEN = {"x86_64": 298, "aarch64": 241, "armv7l": 364, "ppc64le": 319, "s390x": 331,
                       "riscv64": 241}

PERF_EVENT_IOC_ENABLE = 0x2400   # _IO('$', 0)
PERF_EVENT_IOC_DISABLE = 0x2401  # _IO('$', 1)

# u64 indexes into struct perf_event_mmap_page (offsets 1024, 1032, 1040, 1048)
_DATA_HEAD, _DATA_TAIL, _DATA_OFFSET, _DATA_SIZE = 128, 129, 130, 131

_U32 = struct.Struct("=I")     # the kernel writes records in native byte order
_LOST = struct.Struct("=QQ")   # PERF_RECORD_LOST body: id, lost

_libc = ctypes.CDLL(None, use_errno=True)


class PerfEventAttr(ctypes.Structure):
    """``struct perf_event_attr`` up to ``config1`` (PERF_ATTR_SIZE_VER0, 64 bytes)."""

    _fields_ = [("type", ctypes.c_uint32), ("size", ctypes.c_uint32), ("config", ctypes.c_uint64),
                ("sample_period", ctypes.c_uint64), ("sample_type", ctypes.c_uint64),
                ("read_format", ctypes.c_uint64), ("flags", ctypes.c_uint64),
                ("wakeup_events", ctypes.c_uint32), ("bp_type", ctypes.c_uint32),
                ("config1", ctypes.c_uint64)]


_ATTR_DISABLED = 1 << 0  # first bit of the flags bitfield


def perf_event_open(attr, pid, cpu, group_fd=-1, flags=PERF_FLAG_FD_CLOEXEC):
    """perf_event_open(2); returns an owned FD or raises BPFError naming the syscall."""
    try:
        nr = _NR_PERF_EVENT_OPEN[platform.machine()]
    except KeyError:
        raise BPFError("perf_event_open", 38, f"no perf_event_open(2) number known for {platform.machine()}") \
            from None
    while True:
        fd = _libc.syscall(nr, ctypes.byref(attr), pid, cpu, group_fd, ctypes.c_ulong(flags))
        if fd >= 0:
            return FD(fd)
        err = ctypes.get_errno()
        if err != 4:  # EINTR
            hint = ("perf events are restricted: run as root or with CAP_PERFMON "
                    "(or lower /proc/sys/kernel/perf_event_paranoid)") if err in (1, 13) else None
            raise BPFError("perf_event_open", err, hint=hint)


def online_cpus():
    """The online CPU numbers, from /sys/devices/system/cpu/online ("0-3,6")."""
    with open("/sys/devices/system/cpu/online") as f:
        cpus = []
        for part in f.read().strip().split(","):
            lo, _, hi = part.partition("-")
            cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


class _CpuRing:
    """The perf event of one CPU and its mapped ring."""

    __slots__ = ("cpu", "event", "callback", "lost_callback", "map", "meta", "words", "halves", "base", "size")

    def __init__(self, cpu, event, pages, callback, lost_callback):
        self.cpu, self.event, self.callback, self.lost_callback = cpu, event, callback, lost_callback
        self.map = mmap.mmap(int(event), (1 + pages) * PAGE_SIZE, mmap.MAP_SHARED,
                             mmap.PROT_READ | mmap.PROT_WRITE)
        self.meta = memoryview(self.map).cast("Q")
        self.words = memoryview(self.map).cast("I")
        self.halves = memoryview(self.map).cast("H")
        # older kernels leave data_offset/data_size at 0: the data then starts at page 1
        self.base = self.meta[_DATA_OFFSET] or PAGE_SIZE
        self.size = self.meta[_DATA_SIZE] or pages * PAGE_SIZE

    def release(self):
        try:
            fcntl.ioctl(int(self.event), PERF_EVENT_IOC_DISABLE, 0)
        finally:
            for view in (self.meta, self.words, self.halves):
                view.release()
            self.map.close()
            self.event.close()


class PerfBuffer(EpollReader):
    """A reader for a perf event array: ``callback(cpu, data: bytes)`` per sample,
    ``lost_callback(cpu, count)`` when the kernel reports dropped samples.

    ``map`` is a :class:`~xnf.core.kernel.maps.Map` (any object with ``.fd``) or a raw map fd.
    ``page_count`` data pages per CPU (a power of two). Iterating yields the samples as
    ``bytes``; :attr:`lost` counts every dropped sample reported so far.
    """

    def __init__(self, map, page_count=8, callback=None, lost_callback=None, cpus=None):
        if page_count < 1 or page_count & (page_count - 1):
            raise ConfigError(f"page_count must be a power of two, not {page_count}",
                              "use 1, 2, 4, 8, ... pages per CPU")
        super().__init__()
        self.lost = 0
        self._lost_callback = lost_callback
        self._map_fd = None
        self._slots = []
        try:
            fd, info = map_fd_and_info(map, uapi.BPF_MAP_TYPE_PERF_EVENT_ARRAY, "PerfBuffer")
            self._map_fd = FD(os.dup(fd))  # entries are removed through it at close()
            wanted = online_cpus() if cpus is None else list(cpus)
            for cpu in wanted:
                if cpu >= info.max_entries:
                    if cpus is None:
                        continue  # as libbpf: a map sized for fewer CPUs only gets those
                    raise ConfigError(f"CPU {cpu} has no slot in perf event array {info.name!r} "
                                      f"({info.max_entries} entries)", "raise max_entries or leave cpus unset")
                self._open_cpu(cpu, page_count, callback)
        except BaseException:
            self.close()
            raise

    def _open_cpu(self, cpu, pages, callback):
        attr = PerfEventAttr(type=PERF_TYPE_SOFTWARE, size=ctypes.sizeof(PerfEventAttr),
                             config=PERF_COUNT_SW_BPF_OUTPUT, sample_period=1, sample_type=PERF_SAMPLE_RAW,
                             flags=_ATTR_DISABLED, wakeup_events=1)
        event = perf_event_open(attr, -1, cpu)
        try:
            ring = _CpuRing(cpu, event, pages, callback, self._lost_callback)
        except BaseException:
            event.close()
            raise
        self._register(int(event), ring)
        syscall.map_update_elem(int(self._map_fd), ctypes.c_uint32(cpu), ctypes.c_uint32(int(event)))
        self._slots.append(cpu)
        fcntl.ioctl(int(event), PERF_EVENT_IOC_ENABLE, 0)

    @property
    def cpus(self):
        """The CPUs read, in the order their events were opened."""
        return list(self._slots)

    def _collector(self, records):
        append = records.append
        return lambda cpu, data: append(data)

    def _drain(self, ring, handle):
        meta, words, halves, data, base = ring.meta, ring.words, ring.halves, ring.map, ring.base
        mask, limit = ring.size - 1, ring.base + ring.size
        head, tail = meta[_DATA_HEAD], meta[_DATA_TAIL]
        if tail == head:
            return 0
        if _fence_call is not None:
            fence()  # read records only after the head that published them
        cpu, n, sample = ring.cpu, 0, PERF_RECORD_SAMPLE
        try:
            while tail < head:
                off = base + (tail & mask)
                rec_size = halves[(off >> 1) + 3]  # the header never wraps: records are 8-aligned
                tail += rec_size
                if off + rec_size <= limit and words[off >> 2] == sample:
                    n += 1  # the common case, read in place: u32 size at +8, data at +12
                    handle(cpu, data[off + 12:off + 12 + words[(off >> 2) + 2]])
                elif off + rec_size <= limit:
                    n += self._other(ring, data[off:off + rec_size], handle)
                else:  # wraps past the end: copy the two pieces into one record
                    n += self._other(ring, data[off:limit] + data[base:base + off + rec_size - limit], handle)
        finally:
            if _fence_call is not None:
                fence()  # finish reading before the kernel may reuse the space
            meta[_DATA_TAIL] = tail
        return n

    def _other(self, ring, rec, handle):
        """A wrapped sample or a non-sample record, as bytes; returns 1 for a sample."""
        kind = _U32.unpack_from(rec)[0]
        if kind == PERF_RECORD_SAMPLE:
            handle(ring.cpu, rec[12:12 + _U32.unpack_from(rec, 8)[0]])
            return 1
        if kind == PERF_RECORD_LOST:
            lost = _LOST.unpack_from(rec, 8)[1]
            self.lost += lost
            if ring.lost_callback is not None:
                ring.lost_callback(ring.cpu, lost)
        return 0

    def _release_source(self, ring):
        ring.release()

    def _release(self):
        # empty our slots first, so the program stops writing to events we are closing
        if self._map_fd is not None and not self._map_fd.closed:
            for cpu in self._slots:
                try:
                    syscall.map_delete_elem(int(self._map_fd), ctypes.c_uint32(cpu))
                except BPFError:
                    pass  # already emptied (ENOENT): nothing of ours is left in the slot
            self._map_fd.close()
        super()._release()

    def __repr__(self):
        return f"PerfBuffer(cpus={self._slots}, lost={self.lost}{', closed' if self._closing else ''})"

