#!/usr/bin/env python3
"""Ring-buffer events decoded per second (target: 500,000/s or more), against a baseline.

Each round, the fixture program ``rb_submit`` (tests/bpf/ringbuf.bpf.o) fills the ring
buffer with N 24-byte events through BPF_PROG_TEST_RUN (repeat=N). Then we time only
the decoding, i.e. splitting the ring into records and ``struct.unpack``-ing each event:

* ring, callback: ``RingBuffer.consume()`` with a callback that unpacks each record;
* ring, iterator: ``for rec in ring`` and the same unpack;
* baseline: the same bytes, copied out of the ring before consuming, cut into records
  by ``memoryview`` slicing at a fixed 32-byte stride and unpacked: the decode with no
  ring protocol (no header reads, no BUSY/DISCARD checks, no position write-back).

The same is done for a perf event array (``perf_submit``, one CPU, PerfBuffer callback)
with its own baseline: the same events laid out as in the perf ring (40-byte stride).

Rates are per second of the decoding thread's CPU time (``time.thread_time``), the
median over the rounds: on a shared machine, wall-clock time mostly measures how long
other processes held the CPU. Wall-clock medians are printed beside them; on an idle
machine the two agree. The ratio is reader / baseline, CPU-time medians. Needs root.

Usage: python3 bench/ringbuf_bench.py [--events N] [--rounds R]
"""
import argparse
import itertools
import mmap
import os
import statistics
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import xnf  # noqa: E402
from xnf.core.kernel.perfbuf import PerfBuffer  # noqa: E402
from xnf.core.kernel.ringbuf import PAGE_SIZE, RingBuffer  # noqa: E402

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "bpf", "ringbuf.bpf.o")
EVENT = struct.Struct("<QIHBBQ")
PACKET = bytes(64)
RING_RECORD, PERF_RECORD = 32, 40  # 8-byte ring header + 24; perf header 8 + size 4 + 28
TARGET = 500_000


def ring_snapshot(rb_map):
    """The unconsumed bytes of the ring, copied through a mapping of our own."""
    fd, size = int(rb_map.fd), rb_map.max_entries
    with mmap.mmap(fd, PAGE_SIZE, mmap.MAP_SHARED, mmap.PROT_READ) as cons_page, \
            mmap.mmap(fd, PAGE_SIZE + 2 * size, mmap.MAP_SHARED, mmap.PROT_READ, offset=PAGE_SIZE) as data:
        cons = struct.unpack_from("<Q", cons_page)[0]
        prod = struct.unpack_from("<Q", data)[0]
        start = PAGE_SIZE + (cons & (size - 1))
        return data[start:start + prod - cons]


def baseline(blob, stride, skip):
    """Fixed-stride memoryview slicing and the same unpack: decode without any ring protocol."""
    unpack, out, view = EVENT.unpack, [], memoryview(blob)
    append = out.append
    for off in range(skip, len(blob), stride):
        append(unpack(view[off:off + 24]))
    return len(out)


def rate(fn, *args):
    """Events per second of one call of ``fn`` (which returns how many events it decoded),
    per second of this thread's CPU time and per second of wall-clock time."""
    cpu, wall = time.thread_time(), time.perf_counter()
    count = fn(*args)
    return count / (time.thread_time() - cpu), count / (time.perf_counter() - wall)


def interleaved(rates, round_no, first, second):
    """Time two decoders on the same data, alternating which goes first: on a busy machine
    the first measurement after the producer's syscall tends to run undisturbed."""
    for name, fn in (first, second) if round_no % 2 == 0 else (second, first):
        rates[name].append(fn())


def bench_ring(coll, n, rounds):
    prog, rb_map = coll.programs["rb_submit"], coll.maps["rb"]
    out = []
    unpack, append = EVENT.unpack, out.append
    rates = {"ring, callback": [], "ring, iterator": [], "baseline": []}

    def iterate(ring):
        for rec in itertools.islice(ring, n):
            append(unpack(rec))
        return n

    with RingBuffer(rb_map, lambda data: append(unpack(data))) as ring:
        for round_no in range(rounds):
            for mode, decode in (("ring, callback", ring.consume), ("ring, iterator", lambda: iterate(ring))):
                prog.test_run(PACKET, repeat=n)
                blob = ring_snapshot(rb_map)
                assert len(blob) == n * RING_RECORD, "the ring did not hold every event: lower --events"
                out.clear()
                interleaved(rates, round_no, (mode, lambda: rate(decode)),
                            ("baseline", lambda: rate(baseline, blob, RING_RECORD, 8)))
                assert len(out) == n and out[-1][0] - out[0][0] == n - 1
    return rates


def bench_perf(coll, n, rounds):
    prog, pe_map = coll.programs["perf_submit"], coll.maps["perf_events"]
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {0})  # BPF_F_CURRENT_CPU: keep every sample in CPU 0's ring
    pages = 1 << (n * PERF_RECORD // PAGE_SIZE).bit_length()
    out = []
    unpack, append = EVENT.unpack_from, out.append
    rates = {"perf, callback": [], "baseline": []}
    # the same events laid out as in the perf ring: header and raw size, event, padding
    blob = b"".join(bytes(PERF_RECORD - 28) + EVENT.pack(seq, 64, 0xFFFF, 2, 0, 0) + bytes(4) for seq in range(n))
    try:
        with PerfBuffer(pe_map, page_count=pages, callback=lambda cpu, data: append(unpack(data))) as pb:
            for round_no in range(rounds):
                prog.test_run(PACKET, repeat=n)
                out.clear()
                interleaved(rates, round_no, ("perf, callback", lambda: rate(pb.consume)),
                            ("baseline", lambda: rate(baseline, blob, PERF_RECORD, PERF_RECORD - 28)))
                assert len(out) == n and pb.lost == 0
    finally:
        os.sched_setaffinity(0, saved)
    return rates


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=8000, help="events per round (the ring holds 8192)")
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("ringbuf_bench: needs root (BPF maps, programs and perf events)")
    with xnf.load(FIXTURE) as coll:
        ring = bench_ring(coll, args.events, args.rounds)
        perf = bench_perf(coll, args.events, args.rounds)
    print(f"ring buffer: {args.events} events x {args.rounds} rounds, 24-byte events, decode = split + struct.unpack")
    print(f"  {'events/s':16s} {'CPU median':>12s} {'CPU best':>12s} {'wall median':>12s}  ratio (CPU medians)")
    report(ring, ("ring, callback", "ring, iterator", "baseline"))
    print("perf event array (one CPU):")
    report(perf, ("perf, callback", "baseline"))
    cpu = statistics.median(r[0] for r in ring["ring, callback"])
    wall = statistics.median(r[1] for r in ring["ring, callback"])
    print(f"ring-buffer events decoded per second: {cpu:,.0f} per CPU-second, {wall:,.0f} wall-clock "
          f"(target {TARGET:,}/s: {'met' if min(cpu, wall) >= TARGET else 'NOT met'}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")


def report(rates, names):
    base = statistics.median(r[0] for r in rates["baseline"])
    for name in names:
        cpu = [r[0] for r in rates[name]]
        wall = statistics.median(r[1] for r in rates[name])
        print(f"  {name:16s} {statistics.median(cpu):>12,.0f} {max(cpu):>12,.0f} {wall:>12,.0f}"
              f"  {statistics.median(cpu) / base:.2f}")


if __name__ == "__main__":
    main()
