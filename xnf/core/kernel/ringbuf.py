"""Reading BPF ring buffers (``BPF_MAP_TYPE_RINGBUF``) from Python, without libbpf.

The kernel shares a ring buffer through ``mmap`` on the map fd: page 0 holds the
consumer position (ours to write, so it is mapped read-write); page 1 holds the
producer position and is followed by the data area, which the kernel maps twice in a
row so that a record wrapping past the end is still contiguous. Both positions are
byte counters that only grow; ``pos & (size - 1)`` is the offset in the data area.

Each record starts with an 8-byte header: a u32 length whose top bits are BUSY (still
being written) and DISCARD (drop it), then a u32 the kernel uses internally. Records
are 8-byte aligned. We stop at the first BUSY record and skip DISCARD ones, then
publish how far we read by writing the consumer position back, which frees the space.

Memory ordering: the kernel publishes a record with a release store of its header and
reads our position with an acquire load. On x86 (TSO) a plain aligned load or store,
which is what one ``memoryview`` item access is, already has those semantics, so no
fence is needed. On weakly ordered CPUs we fence after reading the producer position,
between reading a header and reading its data, and before writing our position back;
the fence is a ctypes call, whose GIL release and re-acquire (a mutex unlock/lock pair)
orders the memory accesses around it.

Records are handed out as ``bytes`` copies: once the position is written back the
kernel may overwrite the slot, so a view into the ring would not stay valid.
"""
import ctypes
import mmap
import os
import platform
import select
import threading

from xnf.core import uapi
from xnf.core.errors import ConfigError, MapTypeError, ReaderClosedError
from xnf.core.kernel.fd import FD
from xnf.core.kernel.info import map_info

PAGE_SIZE = mmap.PAGESIZE
BUSY = 1 << 31
DISCARD = 1 << 30
HEADER_SIZE = 8

_TSO = platform.machine() in ("x86_64", "i386", "i686", "amd64", "s390x")
_fence_call = None if _TSO else ctypes.CDLL(None).getpid


def fence():
    """Order the memory accesses before this call before those after it (see module doc)."""
    if _fence_call is not None:
        _fence_call()


def map_fd_and_info(map_obj, expected_type, reader):
    """The fd and kernel-reported info of a map given as a ``Map`` (anything with ``.fd``) or a raw fd.

    The type and size come from the kernel (``BPF_OBJ_GET_INFO_BY_FD``), so a reader can
    be built from a fd alone and a wrong map is refused before anything is mapped.
    """
    fd = getattr(map_obj, "fd", map_obj)
    try:
        fd = int(fd)
    except (TypeError, ValueError):
        raise ConfigError(f"{reader} needs a map (an object with .fd) or a map fd, not {map_obj!r}") from None
    info = map_info(fd)
    if info.type != expected_type:
        got = uapi.MAP_TYPE_NAMES.get(info.type, info.type)
        want = uapi.MAP_TYPE_NAMES[expected_type]
        name = getattr(map_obj, "name", None) or info.name or f"fd {fd}"
        raise MapTypeError(f"{reader} reads {want} maps, but map {name!r} is a {got} map",
                           f"declare the map with __uint(type, BPF_MAP_TYPE_{want.upper()})")
    return fd, info


class EpollReader:
    """What every event reader shares: one epoll over kernel fds, blocking or not,
    callback or iterator, and a ``close()`` that any thread may call.

    One thread reads at a time (a lock is held while waiting and draining). ``close()``
    from another thread wakes a blocked reader through a pipe registered in the same
    epoll, waits for it to leave, then releases the mappings. ``close()`` from inside a
    callback takes effect when that ``poll()`` returns.
    """

    stop_check_interval = 0.1
    """Seconds between checks of ``iterate(stop=event)``'s event while no data arrives."""

    def __init__(self):
        self._sources = {}
        self._epoll = select.epoll()
        rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._wake_r, self._wake_w = FD(rfd), FD(wfd)
        self._epoll.register(rfd, select.EPOLLIN)
        self._lock = threading.Lock()
        self._state = threading.Lock()
        self._reader = None
        self._closing = False
        self._closed = False

    # --- subclass hooks ----------------------------------------------------------------

    def _drain(self, source, handle):
        """Hand every complete record of ``source`` to ``handle``; returns how many."""
        raise NotImplementedError

    def _collector(self, records):
        """A handler that appends each record's bytes to ``records`` (iteration mode)."""
        return records.append

    def _release_source(self, source):
        raise NotImplementedError

    def _ready(self, woken):
        """The sources to drain once a wait ends: by default those the epoll reported."""
        return [self._sources[fd] for fd, _ in woken if fd in self._sources]

    # --- reading -------------------------------------------------------------------------

    def _register(self, fd, source):
        """Watch one more source; safe while another thread waits in poll(). Releases the
        source and raises ReaderClosedError if the reader is closing."""
        with self._state:
            if not self._closing:
                self._sources[fd] = source
                self._epoll.register(fd, select.EPOLLIN)
                return
        self._release_source(source)
        raise ReaderClosedError(f"{type(self).__name__} is closed")

    def fileno(self):
        """The epoll fd: readable when a record is waiting (for selectors / asyncio)."""
        return self._epoll.fileno()

    @property
    def closed(self):
        return self._closing

    def _run(self, timeout_ms, handle, all_sources):
        """Wait up to ``timeout_ms`` (unless ``all_sources``) and drain; ``None`` once closing."""
        with self._lock:
            if self._closing:
                self._release()
                return None
            self._reader = threading.get_ident()
            try:
                if all_sources:
                    ready = list(self._sources.values())
                else:
                    timeout = -1 if timeout_ms is None or timeout_ms < 0 else timeout_ms / 1000
                    ready = self._ready(self._epoll.poll(timeout))
                n = 0
                for source in ready:
                    n += self._drain(source, handle or self._callback_of(source))
                return n
            finally:
                self._reader = None
                if self._closing:
                    self._release()

    @staticmethod
    def _callback_of(source):
        if source.callback is None:
            raise ConfigError("poll() and consume() hand records to a callback, and this map has none",
                              "pass callback= when creating the reader (or to add()), or iterate over it")
        return source.callback

    def poll(self, timeout_ms=-1):
        """Wait up to ``timeout_ms`` (-1: forever) for records, hand them to the callbacks; returns how many."""
        n = self._run(timeout_ms, None, False)
        if n is None:
            raise ReaderClosedError(f"{type(self).__name__} is closed")
        return n

    def consume(self):
        """Hand every waiting record to the callbacks without blocking; returns how many."""
        n = self._run(0, None, True)
        if n is None:
            raise ReaderClosedError(f"{type(self).__name__} is closed")
        return n

    def iterate(self, stop=None):
        """Yield records as ``bytes``, blocking for new ones, until ``close()`` or ``stop.set()``.

        ``stop`` is a ``threading.Event``; it is checked every :attr:`stop_check_interval`
        seconds while idle. ``close()`` from another thread ends the iteration at once.
        """
        records = []
        collect = self._collector(records)
        timeout = -1 if stop is None else self.stop_check_interval * 1000
        while stop is None or not stop.is_set():
            if self._run(timeout, collect, False) is None:
                return
            yield from records
            records.clear()

    def __iter__(self):
        return self.iterate()

    # --- shutdown ------------------------------------------------------------------------

    def close(self):
        """Stop any reader, unmap and close everything; safe to call twice and from any thread."""
        with self._state:
            if not self._closing:
                self._closing = True
                try:
                    os.write(int(self._wake_w), b"x")
                except BlockingIOError:
                    pass
        if self._reader == threading.get_ident():
            return  # called from a callback: the poll() underway releases on its way out
        with self._lock:
            self._release()

    def _release(self):
        with self._state:
            if self._closed:
                return
            self._closed = True
            for source in self._sources.values():
                self._release_source(source)
            self._sources.clear()
            self._epoll.close()
            self._wake_r.close()
            self._wake_w.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Ring:
    """One mapped ring: views on the positions and the header words, and the callback."""

    __slots__ = ("fd", "name", "size", "mask", "callback", "consumer_map", "data_map",
                 "consumer", "producer", "words")

    def __init__(self, fd, name, size, callback):
        self.fd, self.name, self.size, self.mask, self.callback = fd, name, size, size - 1, callback
        self.consumer_map = mmap.mmap(int(fd), PAGE_SIZE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        try:
            self.data_map = mmap.mmap(int(fd), PAGE_SIZE + 2 * size, mmap.MAP_SHARED, mmap.PROT_READ,
                                      offset=PAGE_SIZE)
        except BaseException:
            self.consumer_map.close()
            raise
        # "L" is the kernel's unsigned long; "I" reads one u32 header length in one load.
        self.consumer = memoryview(self.consumer_map).cast("L")
        self.producer = memoryview(self.data_map).cast("L")
        self.words = memoryview(self.data_map).cast("I")

    def pending(self):
        """Bytes the kernel has produced that we have not consumed (headers included)."""
        return self.producer[0] - self.consumer[0]

    def release(self):
        for view in (self.consumer, self.producer, self.words):
            view.release()
        self.consumer_map.close()
        self.data_map.close()
        self.fd.close()


class RingBuffer(EpollReader):
    """A reader for one or more BPF ring buffers sharing one epoll (as libbpf's ``ring_buffer__add``).

    ``callback(data: bytes)`` receives each record in :meth:`poll` / :meth:`consume`;
    iterating yields the records instead. ``map`` is a :class:`~xnf.core.kernel.maps.Map` (any
    object with ``.fd``) or a raw map fd.

    A BPF program may submit with ``BPF_RB_NO_WAKEUP`` and wake the reader only now and
    then (pping does, once a sixteenth of its ring is waiting): no epoll wake-up comes
    for those records, so :meth:`poll` reads every ring when its wait ends, woken or
    timed out, and such records arrive within one ``timeout_ms``.
    """

    def __init__(self, map=None, callback=None):
        super().__init__()
        if map is not None:
            try:
                self.add(map, callback)
            except BaseException:
                self.close()
                raise

    def add(self, map, callback=None):
        """Read one more ring buffer through the same epoll; returns ``self``."""
        if self._closing:
            raise ReaderClosedError("RingBuffer is closed")
        fd, info = map_fd_and_info(map, uapi.BPF_MAP_TYPE_RINGBUF, "RingBuffer")
        own = FD(os.dup(fd))  # keeps epoll and the mappings valid if the caller closes its Map
        try:
            ring = _Ring(own, info.name, info.max_entries, callback)
        except BaseException:
            own.close()
            raise
        self._register(int(own), ring)
        return self

    def pending(self):
        """Bytes waiting in all rings (record headers included): 0 once everything is consumed."""
        return sum(ring.pending() for ring in self._sources.values())

    def _drain(self, ring, handle):
        producer, consumer, words, data = ring.producer, ring.consumer, ring.words, ring.data_map
        mask, weak, discard, busy = ring.mask, _fence_call is not None, DISCARD, BUSY
        n = 0
        while True:
            cons, prod = consumer[0], producer[0]
            if cons >= prod:
                return n
            if weak:
                fence()  # read headers only after the position that published them
            # The data area is mapped twice in a row: [start, end) is contiguous even when it wraps.
            start = off = PAGE_SIZE + (cons & mask)
            end = start + (prod - cons)
            try:
                while off < end:
                    length = words[off >> 2]
                    if length < discard:  # neither BUSY nor DISCARD: hand it out
                        if weak:
                            fence()
                        begin = off + HEADER_SIZE
                        off = begin + ((length + 7) & -8)  # past it even if the handler raises
                        n += 1
                        handle(data[begin:begin + length])
                    elif length & busy:
                        break  # not committed yet; its commit wakes the epoll
                    else:
                        off += ((length ^ discard) + HEADER_SIZE + 7) & -8
            finally:
                if weak:
                    fence()  # finish reading before the kernel may reuse the space
                consumer[0] = cons + (off - start)
            if off < end:
                return n

    def _release_source(self, ring):
        ring.release()

    def _ready(self, woken):
        """Every ring holding records, woken or not (see the class doc: NO_WAKEUP producers)."""
        return [ring for ring in self._sources.values() if ring.pending()]

    def __repr__(self):
        names = ", ".join(repr(r.name) for r in self._sources.values())
        return f"RingBuffer({names}{', closed' if self._closing else ''})"
