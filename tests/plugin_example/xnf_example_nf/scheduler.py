"""Two pifo_sched scheduler plugins: ``example_fifo`` (first in, first out, Python only) and
``example_smallest`` (smallest packet first, which also runs in the BPF qdisc)."""
import collections

from xnf.plugins.pifo_sched.scheduler import RankScheduler, Scheduler


class ExampleFifo(Scheduler):
    """Example third-party FIFO: one queue, tail drop at capacity."""

    def __init__(self, config=None):
        super().__init__(config)
        self.queue = collections.deque()

    def __len__(self):
        return len(self.queue)

    def enqueue(self, pkt, now):
        if self.full():
            self.drop(pkt, now, "overflow")
            return False
        self.queue.append(pkt)
        return True

    def dequeue(self, now):
        return self.queue.popleft() if self.queue else None


class ExampleSmallestFirst(RankScheduler):
    """Example third-party rank function: smallest packet first (also in the BPF qdisc)."""

    rank_range = 1 << 17  # a GSO packet's length fits
    rank_object = "example_smallest.bpf.o"  # built from example_smallest.bpf.c (xnf_rank.h)

    def rank(self, pkt, now):
        return pkt.size
