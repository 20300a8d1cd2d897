"""RingBuffer against the real kernel: records produced by BPF programs (the committed
fixture, and programs built from raw instructions on maps made with map_create, so the
reader is also tested without the ELF loader)."""
import ctypes
import os
import struct
import threading
import time

import pytest

import xnf
from xnf.core import uapi
from xnf.core.errors import ConfigError
from xnf.core.errors import MapTypeError, ReaderClosedError
from xnf.core.kernel import syscall
from xnf.core.kernel.ringbuf import RingBuffer
from xnf.core.object import insn
from xnf.core.object.insn import Instruction as I

pytestmark = pytest.mark.root

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "bpf", "ringbuf.bpf.o")
EVENT = struct.Struct("<QIHBBQ")
EVENT_MAGIC = 0x786E662D65767400
PACKET = bytes(64)
XDP_PASS = 2
_GPL = ctypes.create_string_buffer(b"GPL")


@pytest.fixture
def fixture():
    with xnf.load(FIXTURE) as coll:
        yield coll


# --- programs from raw instructions ---------------------------------------------------------

def _load_xdp(body):
    code = insn.encode(body)
    buf = ctypes.create_string_buffer(code, len(code))
    attr = syscall.ProgLoadAttr(prog_type=uapi.BPF_PROG_TYPE_XDP, insn_cnt=len(code) // 8,
                                insns=ctypes.addressof(buf), license=ctypes.addressof(_GPL),
                                prog_name=b"xnf_rb_test")
    return syscall.prog_load(attr)


def _next_seq(counter_fd):
    """r7 = &counter[0]; r1 = counter[0]++ (atomically)."""
    return [I(insn.LDDW, 7, insn.BPF_PSEUDO_MAP_VALUE, 0, int(counter_fd)),
            I(0xB7, 1, 0, 0, 1),                      # r1 = 1
            I(0xDB, 7, 1, 0, 0x01)]                   # r1 = atomic_fetch_add(*(u64 *)(r7 + 0), r1)


def variable_size_program(rb_fd, counter_fd):
    """Outputs records of 8 + (seq & 31) bytes whose content is seq (u64) repeated."""
    body = _next_seq(counter_fd)
    body += [I(0x7B, 10, 1, off, 0) for off in (-40, -32, -24, -16, -8)]  # *(u64 *)(r10 + off) = r1
    body += [I(0xBF, 3, 1), I(0x57, 3, 0, 0, 31), I(0x07, 3, 0, 0, 8),    # r3 = (r1 & 31) + 8
             I(insn.LDDW, 1, insn.BPF_PSEUDO_MAP_FD, 0, int(rb_fd)),
             I(0xBF, 2, 10), I(0x07, 2, 0, 0, -40),                       # r2 = r10 - 40
             I(0xB7, 4, 0, 0, 0),
             I(0x85, 0, 0, 0, uapi.BPF_FUNC_ringbuf_output),
             I(0xB7, 0, 0, 0, XDP_PASS), I(0x95)]
    return _load_xdp(body)


def discarding_program(rb_fd, counter_fd):
    """Reserves a 16-byte record (seq, seq); submits it for even seq, discards it for odd."""
    body = [I(insn.LDDW, 1, insn.BPF_PSEUDO_MAP_FD, 0, int(rb_fd)),
            I(0xB7, 2, 0, 0, 16), I(0xB7, 3, 0, 0, 0),
            I(0x85, 0, 0, 0, uapi.BPF_FUNC_ringbuf_reserve),
            I(0x15, 0, 0, 15, 0),                     # if r0 == 0 goto out (lddw is 2 slots)
            I(0xBF, 6, 0)]                            # r6 = record
    body += _next_seq(counter_fd)
    body += [I(0x7B, 6, 1, 0, 0), I(0x7B, 6, 1, 8, 0),  # record = {seq, seq}
             I(0xBF, 8, 1), I(0x57, 8, 0, 0, 1),         # r8 = seq & 1
             I(0xBF, 1, 6), I(0xB7, 2, 0, 0, 0),
             I(0x55, 8, 0, 2, 0),                        # if r8 != 0 goto discard
             I(0x85, 0, 0, 0, uapi.BPF_FUNC_ringbuf_submit),
             I(0x05, 0, 0, 1, 0),                        # goto out
             I(0x85, 0, 0, 0, uapi.BPF_FUNC_ringbuf_discard),
             I(0xB7, 0, 0, 0, XDP_PASS), I(0x95)]        # out
    return _load_xdp(body)


@pytest.fixture
def raw_ring():
    """A 4 KiB ring buffer and a u64 counter, from map_create; closed at the end."""
    rb = syscall.map_create(uapi.BPF_MAP_TYPE_RINGBUF, 0, 0, 4096, name=b"xnf_test_rb")
    counter = syscall.map_create(uapi.BPF_MAP_TYPE_ARRAY, 4, 8, 1, name=b"xnf_test_seq")
    try:
        yield rb, counter
    finally:
        rb.close()
        counter.close()


def run(prog_fd, repeat):
    syscall.prog_test_run(int(prog_fd), PACKET, len(PACKET), repeat)


def expected_record(seq):
    return (struct.pack("<Q", seq) * 5)[:8 + (seq & 31)]


def _mappings():
    with open("/proc/self/maps") as f:
        return sum("bpf-map" in line or "bpf_ringbuf" in line for line in f)


def _open_fds():
    return len(os.listdir("/proc/self/fd"))


# --- tests -------------------------------------------------------------------------------

def test_fixture_records_complete_and_in_order(fixture):
    events = []
    with RingBuffer(fixture.maps["rb"], lambda data: events.append(EVENT.unpack(data))) as rb:
        fixture.programs["rb_submit"].test_run(PACKET, repeat=1000)
        assert rb.poll(1000) == 1000
        assert rb.pending() == 0
        assert rb.consume() == 0
    assert [e[0] for e in events] == list(range(1000))
    assert all(e[1:] == (len(PACKET), 0xFFFF, 1, 0, EVENT_MAGIC) for e in events)


def test_wraps_the_ring_many_times_with_unaligned_sizes(raw_ring):
    rb_fd, counter = raw_ring
    prog = variable_size_program(rb_fd, counter)
    records = []
    try:
        with RingBuffer(int(rb_fd), records.append) as rb:
            for _ in range(40):
                run(prog, 80)          # at most 80 * 48 bytes: fits the 4 KiB ring
                assert rb.consume() == 80
            assert rb.pending() == 0
    finally:
        prog.close()
    assert len(records) == 3200
    assert sum((len(r) + 8 + 7) & ~7 for r in records) > 25 * 4096  # went round 25+ times
    for seq, rec in enumerate(records):
        assert rec == expected_record(seq), f"record {seq} damaged"


def test_discarded_records_are_skipped_and_their_space_freed(raw_ring):
    rb_fd, counter = raw_ring
    prog = discarding_program(rb_fd, counter)
    records = []
    try:
        with RingBuffer(rb_fd, records.append) as rb:
            for _ in range(8):
                run(prog, 150)         # 150 * 24 bytes (discarded ones too) fit the 4 KiB ring
                assert rb.consume() == 75
                assert rb.pending() == 0
    finally:
        prog.close()
    assert [struct.unpack("<QQ", r) for r in records] == [(s, s) for s in range(0, 1200, 2)]


def test_iterator_mode(fixture):
    with RingBuffer(fixture.maps["rb"]) as rb:
        fixture.programs["rb_submit"].test_run(PACKET, repeat=10)
        seqs = []
        for rec in rb:
            seqs.append(EVENT.unpack(rec)[0])
            if len(seqs) == 10:
                break
        assert seqs == list(range(10))


def test_close_from_another_thread_ends_iteration(fixture):
    rb = RingBuffer(fixture.maps["rb"])
    seen = []
    reader = threading.Thread(target=lambda: seen.extend(EVENT.unpack(r)[0] for r in rb))
    reader.start()
    try:
        fixture.programs["rb_submit"].test_run(PACKET, repeat=300)
        deadline = time.monotonic() + 5
        while len(seen) < 300 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        rb.close()
        reader.join(5)
    assert not reader.is_alive(), "iteration did not end on close()"
    assert seen == list(range(300))
    assert rb.closed


def test_stop_event_ends_iteration(fixture):
    stop = threading.Event()
    with RingBuffer(fixture.maps["rb"]) as rb:
        seen = []
        reader = threading.Thread(target=lambda: seen.extend(rb.iterate(stop=stop)))
        reader.start()
        fixture.programs["rb_submit"].test_run(PACKET, repeat=5)
        deadline = time.monotonic() + 5
        while len(seen) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        stop.set()
        reader.join(5)
        assert not reader.is_alive(), "iteration did not end when the stop event was set"
        assert len(seen) == 5
        assert not rb.closed  # stopping is not closing: the reader can still poll
        fixture.programs["rb_submit"].test_run(PACKET, repeat=2)
        assert sum(1 for _ in zip(range(2), rb)) == 2


def test_close_wakes_a_blocked_poll(fixture):
    rb = RingBuffer(fixture.maps["rb"], lambda data: None)
    outcome = []

    def loop():
        try:
            while True:
                rb.poll(-1)
        except ReaderClosedError:
            outcome.append("closed")

    reader = threading.Thread(target=loop)
    reader.start()
    time.sleep(0.2)  # let it block in epoll
    rb.close()
    reader.join(5)
    assert not reader.is_alive() and outcome == ["closed"]


def test_close_from_a_callback(fixture):
    got = []

    def callback(data):
        got.append(data)
        rb.close()

    rb = RingBuffer(fixture.maps["rb"], callback)
    fixture.programs["rb_submit"].test_run(PACKET, repeat=3)
    rb.poll(1000)
    assert got and rb.closed
    with pytest.raises(ReaderClosedError):
        rb.poll(0)


def test_callback_error_keeps_the_position(fixture):
    got = []

    def callback(data):
        seq = EVENT.unpack(data)[0]
        got.append(seq)
        if seq == 2:
            raise RuntimeError("consumer failed")

    with RingBuffer(fixture.maps["rb"], callback) as rb:
        fixture.programs["rb_submit"].test_run(PACKET, repeat=6)
        with pytest.raises(RuntimeError):
            rb.consume()
        assert rb.consume() == 3
    assert got == [0, 1, 2, 3, 4, 5]


def test_several_rings_on_one_epoll(fixture, raw_ring):
    rb_fd, counter = raw_ring
    prog = variable_size_program(rb_fd, counter)
    fixture_events, raw_records = [], []
    try:
        with RingBuffer(fixture.maps["rb"], fixture_events.append).add(rb_fd, raw_records.append) as rb:
            fixture.programs["rb_submit"].test_run(PACKET, repeat=4)
            run(prog, 3)
            handled = 0
            deadline = time.monotonic() + 5
            while handled < 7 and time.monotonic() < deadline:
                handled += rb.poll(100)
            assert handled == 7
    finally:
        prog.close()
    assert [EVENT.unpack(e)[0] for e in fixture_events] == [0, 1, 2, 3]
    assert raw_records == [expected_record(s) for s in range(3)]


def test_close_is_idempotent_and_releases_everything(fixture):
    maps, fds = _mappings(), _open_fds()
    rb = RingBuffer(fixture.maps["rb"], lambda data: None)
    assert _mappings() > maps
    rb.close()
    rb.close()
    assert _mappings() == maps and _open_fds() == fds
    with pytest.raises(ReaderClosedError):
        rb.consume()
    with pytest.raises(ReaderClosedError):
        rb.add(fixture.maps["rb"])


def test_reader_outlives_the_callers_map_fd(raw_ring):
    rb_fd, counter = raw_ring
    prog = variable_size_program(rb_fd, counter)
    records = []
    try:
        with RingBuffer(rb_fd.dup(), records.append) as rb:  # the dup is closed right away
            run(prog, 5)
            assert rb.poll(1000) == 5
    finally:
        prog.close()


def test_wrong_map_type(fixture):
    with pytest.raises(MapTypeError, match="perf_event_array.*BPF_MAP_TYPE_RINGBUF"):
        RingBuffer(fixture.maps["perf_events"])
    with pytest.raises(ConfigError, match="needs a map"):
        RingBuffer("rb")


def test_poll_without_callback_is_a_config_error(fixture):
    with RingBuffer(fixture.maps["rb"]) as rb:
        fixture.programs["rb_submit"].test_run(PACKET)
        with pytest.raises(ConfigError, match="callback"):
            rb.poll(100)


def test_add_while_another_thread_waits_in_poll(fixture, raw_ring):
    rb_fd, counter = raw_ring
    prog = variable_size_program(rb_fd, counter)
    raw_records = []
    rb = RingBuffer(fixture.maps["rb"], lambda data: None)
    handled = []

    def wait_for_two():
        deadline = time.monotonic() + 5
        while sum(handled) < 2 and time.monotonic() < deadline:
            handled.append(rb.poll(5000))

    reader = threading.Thread(target=wait_for_two)
    reader.start()
    try:
        time.sleep(0.1)  # the reader is blocked in epoll on the first ring
        rb.add(rb_fd, raw_records.append)
        run(prog, 2)
        reader.join(5)
        assert sum(handled) == 2 and raw_records == [expected_record(0), expected_record(1)]
    finally:
        rb.close()
        reader.join(5)
        prog.close()


def slow_commit_program(rb_fd, counter_fd, spin=2000):
    """Reserves a 16-byte record, spins ``spin`` stores into it (a wide BUSY window), then
    fills it with (seq, seq) and submits; seq is only taken once the reserve succeeded."""
    body = [I(insn.LDDW, 1, insn.BPF_PSEUDO_MAP_FD, 0, int(rb_fd)),
            I(0xB7, 2, 0, 0, 16), I(0xB7, 3, 0, 0, 0),
            I(0x85, 0, 0, 0, uapi.BPF_FUNC_ringbuf_reserve),
            I(0x15, 0, 0, 15, 0),                     # if r0 == 0 goto out (lddw is 2 slots)
            I(0xBF, 6, 0)]                            # r6 = record
    body += _next_seq(counter_fd)
    body += [I(0xBF, 8, 1), I(0xB7, 9, 0, 0, 0),     # r8 = seq; r9 = 0
             I(0x7B, 6, 9, 0, 0), I(0x07, 9, 0, 0, 1), I(0xA5, 9, 0, -3, spin),  # do *r6 = r9++ while r9 < spin
             I(0x7B, 6, 8, 0, 0), I(0x7B, 6, 8, 8, 0),
             I(0xBF, 1, 6), I(0xB7, 2, 0, 0, 0),
             I(0x85, 0, 0, 0, uapi.BPF_FUNC_ringbuf_submit),
             I(0xB7, 0, 0, 0, XDP_PASS), I(0x95)]    # out
    return _load_xdp(body)


def test_reader_on_another_cpu_sees_only_committed_records():
    """A producer and a reader on different CPUs: the reader meets records still BUSY and
    must stop there; every committed record arrives whole and in order."""
    rb_fd = syscall.map_create(uapi.BPF_MAP_TYPE_RINGBUF, 0, 0, 64 * 1024, name=b"xnf_test_rb")
    counter = syscall.map_create(uapi.BPF_MAP_TYPE_ARRAY, 4, 8, 1, name=b"xnf_test_seq")
    cpus = sorted(os.sched_getaffinity(0))
    records, stop = [], threading.Event()
    try:
        prog = slow_commit_program(rb_fd, counter)
        rb = RingBuffer(rb_fd, records.append)

        def read():
            os.sched_setaffinity(0, {cpus[-1]})  # this thread only
            while not stop.is_set():
                rb.poll(20)

        reader = threading.Thread(target=read)
        reader.start()
        saved = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {cpus[0]})
        try:
            for _ in range(10):
                run(prog, 1000)
        finally:
            os.sched_setaffinity(0, saved)
            deadline = time.monotonic() + 5
            while rb.pending() and time.monotonic() < deadline:
                time.sleep(0.01)
            stop.set()
            reader.join(5)
            rb.close()
            prog.close()
    finally:
        rb_fd.close()
        counter.close()
    assert len(records) > 1000
    assert [struct.unpack("<QQ", r) for r in records] == [(s, s) for s in range(len(records))]
