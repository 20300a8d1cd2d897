"""PerfBuffer against the real kernel: samples from bpf_perf_event_output in the committed
fixture, read per CPU; lost samples on overflow; wrap-around; shutdown."""
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
from xnf.core.kernel.perfbuf import PerfBuffer, online_cpus

pytestmark = pytest.mark.root

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "bpf", "ringbuf.bpf.o")
EVENT = struct.Struct("<QIHBBQ")
EVENT_MAGIC = 0x786E662D65767400
PACKET = bytes(64)
SAMPLE_BYTES = 8 + 4 + 28  # perf header, raw size, event padded to keep 8-byte alignment


@pytest.fixture
def fixture():
    with xnf.load(FIXTURE) as coll:
        yield coll


@pytest.fixture
def on_cpu():
    """Pin the test to one CPU, so BPF_F_CURRENT_CPU is known; restores the affinity after."""
    saved = os.sched_getaffinity(0)
    cpu = max(online_cpus())
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, saved)


def submit(coll, repeat=1):
    coll.programs["perf_submit"].test_run(PACKET, repeat=repeat)


def decode(data):
    assert len(data) == 28
    return EVENT.unpack_from(data)


def poll_until(reader, count, timeout=5):
    handled, deadline = 0, time.monotonic() + timeout
    while handled < count and time.monotonic() < deadline:
        handled += reader.poll(100)
    return handled


def test_samples_complete_and_in_order(fixture, on_cpu):
    got = []
    with PerfBuffer(fixture.maps["perf_events"], callback=lambda cpu, data: got.append((cpu, decode(data)))) as pb:
        assert pb.cpus == [c for c in online_cpus() if c < fixture.maps["perf_events"].max_entries]
        submit(fixture, 500)
        assert poll_until(pb, 500) == 500
        assert pb.lost == 0
    assert [cpu for cpu, _ in got] == [on_cpu] * 500
    assert [e[0] for _, e in got] == list(range(500))
    assert all(e[1:] == (len(PACKET), 0xFFFF, 2, 0, EVENT_MAGIC) for _, e in got)


def test_records_wrapping_past_the_end_are_copied_whole(fixture, on_cpu):
    got = []
    with PerfBuffer(fixture.maps["perf_events"], page_count=1,
                    callback=lambda cpu, data: got.append(decode(data)[0])) as pb:
        for _ in range(30):
            submit(fixture, 90)  # 90 * 40 bytes fit one 4 KiB page; 4096 / 40 is not whole: records straddle
            assert poll_until(pb, 90) == 90
        assert pb.lost == 0
    assert got == list(range(30 * 90))
    assert 30 * 90 * SAMPLE_BYTES > 25 * 4096


def test_lost_samples_are_counted(fixture, on_cpu):
    got, lost = [], []
    with PerfBuffer(fixture.maps["perf_events"], page_count=1, callback=lambda cpu, data: got.append(decode(data)[0]),
                    lost_callback=lambda cpu, n: lost.append((cpu, n))) as pb:
        submit(fixture, 1000)  # one page holds about 100 samples
        kept = pb.consume()
        assert 0 < kept < 1000
        submit(fixture)        # the kernel reports the loss with the next sample that fits
        assert pb.poll(1000) == 1
        assert lost == [(on_cpu, 1000 - kept)]
        assert pb.lost == 1000 - kept
    assert got == list(range(kept)) + [1000]


def test_iterator_and_close_from_another_thread(fixture, on_cpu):
    pb = PerfBuffer(fixture.maps["perf_events"])
    seen = []
    reader = threading.Thread(target=lambda: seen.extend(decode(d)[0] for d in pb))
    reader.start()
    try:
        submit(fixture, 200)
        deadline = time.monotonic() + 5
        while len(seen) < 200 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        pb.close()
        reader.join(5)
    assert not reader.is_alive(), "iteration did not end on close()"
    assert seen == list(range(200))
    with pytest.raises(ReaderClosedError):
        pb.poll(0)


def test_close_releases_and_a_new_reader_takes_over(fixture, on_cpu):
    def mappings():
        with open("/proc/self/maps") as f:
            return sum("perf_event" in line for line in f)

    fds, maps = len(os.listdir("/proc/self/fd")), mappings()
    first = []
    pb = PerfBuffer(fixture.maps["perf_events"], callback=lambda cpu, data: first.append(data))
    assert mappings() == maps + len(pb.cpus)
    pb.close()
    pb.close()
    assert mappings() == maps and len(os.listdir("/proc/self/fd")) == fds
    submit(fixture, 3)                     # no reader: the helper finds empty slots
    second = []
    with PerfBuffer(fixture.maps["perf_events"], callback=lambda cpu, data: second.append(decode(data)[0])) as pb2:
        submit(fixture, 2)
        assert poll_until(pb2, 2) == 2
    assert first == [] and second == [3, 4]


def test_raw_fd_and_explicit_cpus(on_cpu):
    array = syscall.map_create(uapi.BPF_MAP_TYPE_PERF_EVENT_ARRAY, 4, 4, 1, name=b"xnf_test_pea")
    try:
        with PerfBuffer(int(array), cpus=[0]) as pb:
            assert pb.cpus == [0]
        with pytest.raises(ConfigError, match="CPU 1 has no slot"):
            PerfBuffer(array, cpus=[0, 1])
        with PerfBuffer(array) as pb:      # only the CPUs the map has slots for
            assert pb.cpus == [0]
    finally:
        array.close()


def test_bad_arguments(fixture):
    with pytest.raises(MapTypeError, match="ringbuf.*BPF_MAP_TYPE_PERF_EVENT_ARRAY"):
        PerfBuffer(fixture.maps["rb"])
    with pytest.raises(ConfigError, match="power of two"):
        PerfBuffer(fixture.maps["perf_events"], page_count=3)

