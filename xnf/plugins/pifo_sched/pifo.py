"""PIFO queues: the bucketed PIFO of the BPF PIFO-map design, and an ideal one.

:class:`BucketedPifo` keeps one FIFO bucket per rank over a bounded window of
``rank_range`` ranks (a power of two) and finds the first non-empty bucket through a
tree of 64-bit bitmaps, so enqueue and dequeue cost O(log64 range), independent of the
number of queued elements. Two windows (primary and secondary) rotate so ranks that
keep growing, such as timestamps, stay in order over any span: a rank may be at most
one window ahead of the primary window. Ranks below the primary window raise
:class:`RankRangeError`; more than ``capacity`` elements raise :class:`QueueFullError`.

:class:`IdealPifo` is the reference: a stable sort by (rank, arrival) on a heap.
"""
import heapq
from collections import deque
from heapq import heappop, heappush, heapreplace

from xnf.plugins.pifo_sched.errors import QueueEmptyError, QueueFullError, RankRangeError

DEFAULT_RANGE = 1 << 16
DEFAULT_CAPACITY = 1 << 20


class _Window:
    """``range`` FIFO buckets for ranks ``base .. base+range-1`` and their bitmap tree.

    Only non-empty buckets exist (an emptied one is deleted, so a window that sweeps a
    wide range of ranks holds no garbage), and ``head`` caches the first one's index
    (-1: unknown), so the tree is walked only after the head bucket has emptied.
    """

    __slots__ = ("base", "buckets", "levels", "top_down", "count", "head")

    def __init__(self, rank_range, base):
        self.base = base
        self.buckets = {}  # index -> deque of a non-empty bucket
        self.levels = []  # levels[0]: one bit per bucket; levels[-1]: a single word
        words = rank_range
        while True:
            words = (words + 63) >> 6
            self.levels.append([0] * words)
            if words == 1:
                break
        self.top_down = self.levels[::-1]
        self.count = 0
        self.head = -1

    def first(self):
        """Index of the first non-empty bucket (the window must not be empty)."""
        if self.head < 0:
            index = 0
            for level in self.top_down:
                word = level[index]
                index = (index << 6) | ((word & -word).bit_length() - 1)
            self.head = index
        return self.head


# The errors every PIFO raises, built only when raised: enqueue stays one comparison per check.
def _full(capacity):
    return QueueFullError(f"PIFO is full ({capacity} elements)",
                          "dequeue first or create the queue with a larger capacity")


def _not_int(rank):
    return RankRangeError(f"rank must be an int, got {type(rank).__name__} {rank!r}",
                          "round the rank to an integer (scale it first to keep precision)")


def _below(rank, minimum):
    return RankRangeError(f"rank {rank} is below the current minimum rank {minimum}",
                          "ranks may not go back behind a rotated window; clamp to min_rank")


def _check_shape(rank_range, capacity):
    """The rank window and capacity both bounded PIFOs take."""
    if not isinstance(rank_range, int) or rank_range < 2 or rank_range & (rank_range - 1):
        raise RankRangeError(f"rank_range must be a power of two >= 2, got {rank_range!r}",
                             "use e.g. 1 << 16")
    if not isinstance(capacity, int) or capacity < 1:
        raise QueueFullError(f"capacity must be a positive integer, got {capacity!r}",
                             "give the largest number of elements the queue may hold")


class BucketedPifo:
    """Push-in first-out queue over a bounded, rotating rank window (see module doc).

    ``count`` is the number of queued elements (``len()`` without a call). The bucket
    operations are written out in :meth:`enqueue` and :meth:`dequeue`, which every
    scheduler calls once per packet.
    """

    def __init__(self, rank_range=DEFAULT_RANGE, capacity=DEFAULT_CAPACITY):
        _check_shape(rank_range, capacity)
        self.rank_range = rank_range
        self.capacity = capacity
        self.count = 0
        self._primary = _Window(rank_range, 0)
        self._secondary = _Window(rank_range, rank_range)

    def __len__(self):
        return self.count

    def __bool__(self):
        return self.count > 0

    @property
    def min_rank(self):
        """The lowest rank the queue accepts now (start of the primary window)."""
        return self._primary.base

    @property
    def max_rank(self):
        """The highest rank the queue accepts now (end of the secondary window)."""
        return self._secondary.base + self.rank_range - 1

    def _rotate(self):
        """Primary is empty: the secondary becomes primary, a fresh window follows it."""
        old = self._primary
        self._primary = self._secondary
        old.base = self._primary.base + self.rank_range
        old.head = -1
        self._secondary = old

    def _beyond_primary(self, rank):
        """The window for a rank past the primary one: the secondary (rotating first when
        the primary is empty and the rank is past the secondary too), or the primary
        moved forward to the rank when the queue is empty."""
        rank_range = self.rank_range
        offset = rank - self._primary.base
        if offset >= 2 * rank_range:
            if not self.count:
                base = rank - rank % rank_range  # empty queue: jump forward to the rank
                self._primary.base = base
                self._secondary.base = base + rank_range
                return self._primary
            if self._primary.count or offset >= 3 * rank_range:
                raise RankRangeError(
                    f"rank {rank} is above the highest rank {self.max_rank} the queue can order now",
                    f"keep ranks within {rank_range} of the lowest queued rank, or use a larger rank_range")
            self._rotate()  # primary empty: move the window on to make room
        return self._secondary

    def enqueue(self, item, rank):
        """Queue ``item`` behind every element of rank <= ``rank``."""
        if self.count >= self.capacity:
            raise _full(self.capacity)
        if type(rank) is not int:
            raise _not_int(rank)
        window = self._primary
        index = rank - window.base
        if index < 0:
            raise _below(rank, window.base)
        if index >= self.rank_range:
            window = self._beyond_primary(rank)
            index = rank - window.base
        bucket = window.buckets.get(index)
        if bucket is None:
            window.buckets[index] = deque((item,))
            if not window.count or index < window.head:
                window.head = index
            for level in window.levels:  # mark the bucket up the tree
                word = index >> 6
                old = level[word]
                level[word] = old | (1 << (index & 63))
                if old:
                    break
                index = word
        else:
            bucket.append(item)
        window.count += 1
        self.count += 1

    def dequeue(self):
        """Remove and return ``(rank, item)`` of the lowest rank, earliest arrival."""
        window = self._primary
        if not window.count:
            if not self.count:
                raise QueueEmptyError("dequeue from an empty PIFO", "check len() first")
            self._rotate()
            window = self._primary
        index = window.head
        if index < 0:
            index = window.first()
        buckets = window.buckets
        bucket = buckets[index]
        item = bucket.popleft()
        window.count -= 1
        self.count -= 1
        if not bucket:
            del buckets[index]
            # the next rank, when queued, is the new head (dense ranks such as DRR's
            # rounds): no walk of the tree; else unknown until first() is asked
            window.head = index + 1 if index + 1 in buckets else -1
            i = index
            for level in window.levels:  # clear the bucket's bit, and its word's if empty
                word = i >> 6
                level[word] &= ~(1 << (i & 63))
                if level[word]:
                    break
                i = word
        return window.base + index, item

    def peek(self):
        """``(rank, item)`` that :meth:`dequeue` would return, without removing it."""
        window = self._primary if self._primary.count else self._secondary
        if not window.count:
            raise QueueEmptyError("peek at an empty PIFO", "check len() first")
        index = window.first()
        return window.base + index, window.buckets[index][0]


class HeapPifo:
    """:class:`BucketedPifo`'s queue (the same windows, rotations, errors and order) for
    queues that hold few elements, such as a fair-queueing node's one entry per
    backlogged child: the elements sit on a binary heap on (rank, arrival), which
    heapq orders in C, instead of in buckets found by a walk of the bitmap tree in
    Python (4 levels for a range of 2**20, where the heap holds a handful of entries).
    The primary window's ranks are all below the secondary's, so the heap's order is
    the buckets' order; the windows are tracked by their base and counts alone.

    ``heap[0][2]`` is the head element (:meth:`peek` without a call), for
    :meth:`requeue_head`.
    """

    def __init__(self, rank_range=DEFAULT_RANGE, capacity=DEFAULT_CAPACITY):
        _check_shape(rank_range, capacity)
        self.rank_range = rank_range
        self.capacity = capacity
        self.count = 0
        self.min_rank = 0  # the primary window's base
        self._in_primary = 0
        self.heap = []  # (rank, arrival, item); read only outside this class
        self._arrivals = 0

    def __len__(self):
        return self.count

    def __bool__(self):
        return self.count > 0

    @property
    def max_rank(self):
        return self.min_rank + 2 * self.rank_range - 1

    def enqueue(self, item, rank):
        """Queue ``item`` behind every element of rank <= ``rank``."""
        if self.count >= self.capacity:
            raise _full(self.capacity)
        if type(rank) is not int:
            raise _not_int(rank)
        offset = rank - self.min_rank
        if offset < 0:
            raise _below(rank, self.min_rank)
        rank_range = self.rank_range
        if offset < rank_range:
            self._in_primary += 1
        elif offset >= 2 * rank_range and not self.count:
            self.min_rank = rank - rank % rank_range  # empty queue: jump forward to the rank
            self._in_primary = 1
        elif offset >= 2 * rank_range and (self._in_primary or offset >= 3 * rank_range):
            raise RankRangeError(
                f"rank {rank} is above the highest rank {self.max_rank} the queue can order now",
                f"keep ranks within {rank_range} of the lowest queued rank, or use a larger rank_range")
        elif offset >= 2 * rank_range:  # primary empty: move the window on to make room
            self.min_rank += rank_range
            self._in_primary = self.count
        self._arrivals += 1
        heappush(self.heap, (rank, self._arrivals, item))
        self.count += 1

    def dequeue(self):
        """Remove and return ``(rank, item)`` of the lowest rank, earliest arrival."""
        if not self._in_primary:
            if not self.count:
                raise QueueEmptyError("dequeue from an empty PIFO", "check len() first")
            self.min_rank += self.rank_range  # the secondary becomes primary
            self._in_primary = self.count
        self._in_primary -= 1
        self.count -= 1
        rank, _, item = heappop(self.heap)
        return rank, item

    def requeue_head(self, rank):
        """``dequeue()`` the head and ``enqueue()`` it again at ``rank``, raised to the
        lowest rank the queue then accepts (a past rank goes first); returns the rank.

        A fair-queueing node does this once per packet for a child that stays
        backlogged: when the head is in the primary window and comes back into it
        (nearly always), the step is one ``heapreplace``, which leaves the heap in the
        same order as the pop and push would (the arrival numbers make every entry
        distinct); otherwise it is those two calls.
        """
        min_rank = self.min_rank
        if self._in_primary and type(rank) is int and rank < min_rank + self.rank_range:
            if rank < min_rank:
                rank = min_rank
            self._arrivals += 1
            heapreplace(self.heap, (rank, self._arrivals, self.heap[0][2]))
            return rank
        item = self.dequeue()[1]
        if rank < self.min_rank:
            rank = self.min_rank
        self.enqueue(item, rank)
        return rank

    def peek(self):
        """``(rank, item)`` that :meth:`dequeue` would return, without removing it."""
        if not self.count:
            raise QueueEmptyError("peek at an empty PIFO", "check len() first")
        rank, _, item = self.heap[0]
        return rank, item


class IdealPifo:
    """Reference PIFO: any integer or float rank, stable among equal ranks."""

    def __init__(self, capacity=None):
        self.capacity = capacity
        self._heap = []
        self._seq = 0

    def __len__(self):
        return len(self._heap)

    def __bool__(self):
        return bool(self._heap)

    @property
    def count(self):
        """Queued elements, as the other PIFOs' ``count``."""
        return len(self._heap)

    def enqueue(self, item, rank):
        if self.capacity is not None and len(self._heap) >= self.capacity:
            raise _full(self.capacity)
        self._seq += 1
        heapq.heappush(self._heap, (rank, self._seq, item))

    def dequeue(self):
        if not self._heap:
            raise QueueEmptyError("dequeue from an empty PIFO", "check len() first")
        rank, _, item = heapq.heappop(self._heap)
        return rank, item

    def peek(self):
        if not self._heap:
            raise QueueEmptyError("peek at an empty PIFO", "check len() first")
        rank, _, item = self._heap[0]
        return rank, item
