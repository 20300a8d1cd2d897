"""The bucketed PIFO against a stable sort, its errors, and window rotation; the heap
PIFO against the bucketed one."""
import random

import pytest
from hypothesis import given, settings, strategies as st

from xnf.plugins.pifo_sched.errors import QueueEmptyError, QueueFullError, RankRangeError
from xnf.plugins.pifo_sched.pifo import BucketedPifo, HeapPifo, IdealPifo


def replay(ops, rank_range=1 << 10, capacity=1 << 20):
    """Apply ('enq', rank) / ('deq',) to both queues; return both dequeue orders."""
    bucketed, ideal = BucketedPifo(rank_range, capacity), IdealPifo()
    got, want = [], []
    for n, op in enumerate(ops):
        if op[0] == "enq":
            bucketed.enqueue(n, op[1])
            ideal.enqueue(n, op[1])
        elif ideal:
            got.append(bucketed.dequeue())
            want.append(ideal.dequeue())
    while ideal:
        got.append(bucketed.dequeue())
        want.append(ideal.dequeue())
    return got, want


def test_100k_random_operations_equal_stable_sort():
    rng = random.Random(4)
    ops = [("enq", rng.randrange(1 << 10)) if rng.random() < 0.52 else ("deq",) for _ in range(100_000)]
    got, want = replay(ops)
    assert len(got) == sum(op[0] == "enq" for op in ops)
    assert got == want


def test_stable_sort_by_rank_then_arrival():
    pifo = BucketedPifo(64)
    for item, rank in enumerate([5, 3, 5, 0, 3, 63]):
        pifo.enqueue(item, rank)
    assert [pifo.dequeue() for _ in range(6)] == [(0, 3), (3, 1), (3, 4), (5, 0), (5, 2), (63, 5)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.tuples(st.just("enq"), st.integers(0, 255)), st.just(("deq",))), max_size=300))
def test_any_sequence_within_range_matches(ops):
    got, want = replay(ops, rank_range=256)
    assert got == want


def test_rotation_keeps_growing_timestamps_in_order_over_twice_the_range():
    rank_range = 1 << 8
    pifo, ideal, rng = BucketedPifo(rank_range), IdealPifo(), random.Random(1)
    now, out, want = 0, [], []
    while now < 5 * rank_range:
        now += rng.randrange(4)
        rank = now + rng.randrange(rank_range // 4)  # timestamps a little in the future
        pifo.enqueue(now, rank)
        ideal.enqueue(now, rank)
        if len(ideal) > 20 or rng.random() < 0.4:
            out.append(pifo.dequeue())
            want.append(ideal.dequeue())
    while ideal:
        out.append(pifo.dequeue())
        want.append(ideal.dequeue())
    assert out == want
    assert out[-1][0] > 4 * rank_range
    assert pifo.min_rank >= 4 * rank_range


def test_rank_below_current_minimum_is_refused():
    pifo = BucketedPifo(16)
    pifo.enqueue("a", 20)  # secondary window
    assert pifo.dequeue() == (20, "a")  # rotates: the minimum is now 16
    with pytest.raises(RankRangeError, match="below the current minimum rank 16"):
        pifo.enqueue("b", 15)
    pifo.enqueue("c", 16)
    assert len(pifo) == 1


def test_rank_beyond_both_windows_is_refused_while_queued():
    pifo = BucketedPifo(16)
    pifo.enqueue("a", 0)
    with pytest.raises(RankRangeError, match="above the highest rank 31"):
        pifo.enqueue("b", 32)
    assert len(pifo) == 1 and pifo.dequeue() == (0, "a")


def test_empty_queue_moves_forward_to_a_far_rank_and_never_back():
    pifo = BucketedPifo(16)
    pifo.enqueue("a", 1000)
    assert pifo.min_rank == 992
    pifo.dequeue()
    with pytest.raises(RankRangeError):
        pifo.enqueue("b", 10)


def test_full_queue():
    pifo = BucketedPifo(16, capacity=2)
    pifo.enqueue("a", 1)
    pifo.enqueue("b", 1)
    with pytest.raises(QueueFullError, match="full"):
        pifo.enqueue("c", 1)
    assert len(pifo) == 2
    pifo.dequeue()
    pifo.enqueue("c", 1)


def test_empty_and_bad_arguments():
    pifo = BucketedPifo(16)
    with pytest.raises(QueueEmptyError):
        pifo.dequeue()
    with pytest.raises(QueueEmptyError):
        pifo.peek()
    with pytest.raises(RankRangeError, match="power of two"):
        BucketedPifo(100)
    with pytest.raises(QueueFullError):
        BucketedPifo(16, capacity=0)
    with pytest.raises(RankRangeError, match="must be an int"):
        pifo.enqueue("x", 1.5)
    with pytest.raises(QueueEmptyError):
        IdealPifo().dequeue()


def test_peek_matches_dequeue_across_windows():
    pifo = BucketedPifo(16)
    pifo.enqueue("late", 20)
    assert pifo.peek() == (20, "late")
    pifo.enqueue("early", 3)
    assert pifo.peek() == (3, "early") == pifo.dequeue()


def test_large_range_and_levels():
    pifo = BucketedPifo(1 << 20)
    ranks = [(1 << 20) - 1, 0, 4095, 4096, 262143, 262144]
    for r in ranks:
        pifo.enqueue(r, r)
    assert [pifo.dequeue()[0] for _ in ranks] == sorted(ranks)


def outcome(call):
    try:
        return call()
    except (QueueEmptyError, QueueFullError, RankRangeError) as e:
        return type(e).__name__, str(e)


def heap_and_bucketed_agree(ops, rank_range, capacity):
    """Apply the ops to both queues; every result, error message and window bound equal."""
    heap, bucketed = HeapPifo(rank_range, capacity), BucketedPifo(rank_range, capacity)
    for n, (op, rank) in enumerate(ops):
        if op == "enq":
            calls = [lambda q=q: q.enqueue(n, rank) for q in (heap, bucketed)]
        else:
            calls = [getattr(q, op) for q in (heap, bucketed)]
        assert outcome(calls[0]) == outcome(calls[1]), (n, op, rank)
        assert (len(heap), heap.min_rank, heap.max_rank) == (len(bucketed), bucketed.min_rank, bucketed.max_rank)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["enq", "enq", "dequeue", "peek"]), st.integers(0, 40)), max_size=200))
def test_heap_pifo_is_the_bucketed_pifo_for_any_sequence(ops):
    # ranks up to 40 on a range of 8: rotations, jumps forward and both range errors
    heap_and_bucketed_agree(ops, 8, 12)


def test_heap_pifo_is_the_bucketed_pifo_for_growing_tags():
    rng, ops, now = random.Random(3), [], 0
    for _ in range(20_000):  # virtual-time tags: growing, a little ahead of the last one served
        now += rng.randrange(50)
        ops.append(("enq", now + rng.randrange(300)) if rng.random() < 0.5 else ("dequeue", 0))
    heap_and_bucketed_agree(ops, 256, 1 << 20)


def requeue_by_two_calls(pifo, rank):
    """What HeapPifo.requeue_head promises to equal: dequeue, then enqueue clamped."""
    item = pifo.dequeue()[1]
    if rank < pifo.min_rank:
        rank = pifo.min_rank
    pifo.enqueue(item, rank)
    return rank


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["enq", "requeue", "requeue", "dequeue"]),
                          st.one_of(st.integers(-5, 40), st.just(3.5))), max_size=200))
def test_heap_pifo_requeue_head_is_dequeue_then_clamped_enqueue(ops):
    # ranks below the window (clamped), past both windows, rotations, a float, an empty queue
    fast, slow = HeapPifo(8, 12), HeapPifo(8, 12)
    for n, (op, rank) in enumerate(ops):
        if op == "enq":
            calls = [lambda q=q: q.enqueue(n, rank) for q in (fast, slow)]
        elif op == "requeue":
            calls = [lambda: fast.requeue_head(rank), lambda: requeue_by_two_calls(slow, rank)]
        else:
            calls = [fast.dequeue, slow.dequeue]
        assert outcome(calls[0]) == outcome(calls[1]), (n, op, rank)
        assert (len(fast), fast.min_rank, fast.max_rank) == (len(slow), slow.min_rank, slow.max_rank)
    assert [fast.dequeue() for _ in range(len(fast))] == [slow.dequeue() for _ in range(len(slow))]
