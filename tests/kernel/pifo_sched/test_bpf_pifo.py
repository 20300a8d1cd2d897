"""The BPF PIFO (bpf/pifo.h) against the Python bucketed PIFO, through BPF_PROG_TEST_RUN."""
import random

import pytest

from xnf.plugins.pifo_sched.bpf_pifo import CAPACITY, RANGE, BpfPifo, reference_results
from xnf.plugins.pifo_sched.pifo import IdealPifo

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def bpf_pifo():
    pifo = BpfPifo()
    try:
        yield pifo
    finally:
        pifo.close()


def test_100k_random_operations_same_order_as_python_and_stable_sort(bpf_pifo):
    rng = random.Random(11)
    ops = [("enq", rng.randrange(RANGE), n) if rng.random() < 0.5 else ("deq",) for n in range(100_000)]
    bpf_pifo.reset()
    got = bpf_pifo.run(ops)
    assert got == reference_results(ops)
    # and, independently of the Python bucketed PIFO, every dequeue takes the queued entry
    # that is first by (rank, arrival): an ideal PIFO (a heap) replayed on the same ops
    ideal, want = IdealPifo(), []
    for op in ops:
        if op[0] == "enq":
            ideal.enqueue(op[2], op[1])
            want.append((0, op[1], op[2]))
        elif ideal:
            want.append((0,) + ideal.dequeue())
        else:
            want.append((-2, None, None))
    deq = [(g, w) for op, g, w in zip(ops, got, want) if op[0] == "deq"]
    assert sum(w[0] == 0 for _, w in deq) > 40_000  # most dequeues find a queue to take from
    assert [g for g, _ in deq if g[0] == 0] == [w for _, w in deq if w[0] == 0]
    assert [g[0] for g, _ in deq] == [w[0] for _, w in deq]


def test_errors_full_below_minimum_above_window_and_empty(bpf_pifo):
    ops = [("deq",)] + [("enq", 5, n) for n in range(CAPACITY + 1)]
    ops += [("deq",)] * (CAPACITY + 1)
    ops += [("enq", 2 * RANGE + 3, 1), ("deq",),      # jump ahead while empty, then rotate
            ("enq", RANGE + 1, 2),                    # below the new minimum
            ("enq", 2 * RANGE, 3), ("enq", 4 * RANGE, 4), ("deq",)]
    bpf_pifo.reset()
    got = bpf_pifo.run(ops)
    assert got == reference_results(ops)
    errors = [r[0] for r in got if r[0]]
    assert errors.count(-75) == 1 and errors.count(-2) == 2 and errors.count(-34) == 2


def test_rotation_with_growing_timestamps_over_many_windows(bpf_pifo):
    rng = random.Random(3)
    ops, now, queued = [], 0, 0
    while now < 6 * RANGE:
        now += rng.randrange(8)
        ops.append(("enq", now, len(ops)))  # monotonically growing ranks, some equal
        queued += 1
        if queued > 200 or rng.random() < 0.45:
            ops.append(("deq",))
            queued -= 1
    ops += [("deq",)] * queued
    bpf_pifo.reset()
    got = bpf_pifo.run(ops)
    assert got == reference_results(ops)
    assert all(r[0] == 0 for r in got) and max(r[1] for r in got) > 5 * RANGE
