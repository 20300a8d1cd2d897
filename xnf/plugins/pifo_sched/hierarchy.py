"""Scheduling trees: a PIFO whose elements are references to child queues.

:class:`FlowQueue` is a leaf FIFO of one flow's packets. :class:`FairNode` is an
inner node that orders its backlogged children in a PIFO by start-time fair queueing
tags (``order="start"``, STFQ) or by finish tags (``order="finish"``, self-clocked
WFQ). A child is in its parent's PIFO exactly while it is backlogged, so the PIFO holds
at most one element per child and ranks stay within one maximum packet of each other.

Virtual time advances on every dequeue to the tag of the packet served, which is what
keeps fairness right when dequeues interleave with enqueues; a child that comes back
from idle starts at the current virtual time, so it has banked no credit.
"""
from collections import deque

from xnf.plugins.pifo_sched.errors import SchedulerConfigError
from xnf.plugins.pifo_sched.pifo import HeapPifo

RANK_RANGE = 1 << 20


def tag_scale(max_packet, min_weight, rank_range=RANK_RANGE):
    """Virtual-time units per byte at weight 1, so a max-size packet at the smallest
    weight spans at most half the PIFO window."""
    per_byte = (rank_range // 2) // max_packet
    if per_byte < 1:
        raise SchedulerConfigError(f"max_packet {max_packet} does not fit a rank window of {rank_range}",
                                   "lower max_packet")
    return per_byte * min_weight


class FlowQueue:
    """Leaf: FIFO of one flow's packets; ``start``/``finish`` are its tags in the parent,
    ``costs`` the parent's :meth:`FairNode.cost` of its packets, by size."""

    __slots__ = ("key", "weight", "packets", "count", "parent", "start", "finish", "costs")

    def __init__(self, key, weight=1.0):
        self.key = key
        self.weight = weight
        self.packets = deque()
        self.count = 0
        self.parent = None
        self.start = 0
        self.finish = 0
        self.costs = {}

    def __len__(self):
        return self.count

    def push(self, pkt):
        self.packets.append(pkt)
        self.count += 1

    def pop(self):
        self.count -= 1
        return self.packets.popleft()

    def head_size(self):
        return self.packets[0].size


class FairNode:
    """Inner node: a PIFO of backlogged children ordered by fair-queueing tags.

    The PIFO holds one entry per backlogged child, so it is a :class:`HeapPifo`.
    """

    def __init__(self, key, weight=1.0, order="start", scale=1, rank_range=RANK_RANGE):
        if order not in ("start", "finish"):
            raise SchedulerConfigError(f"order must be 'start' or 'finish', got {order!r}",
                                       "use start (STFQ) or finish (WFQ)")
        self.key = key
        self.weight = weight
        self.order = order
        self.by_finish = order == "finish"
        self.scale = scale
        self.pifo = HeapPifo(rank_range)
        self.vtime = 0
        self.count = 0
        self.parent = None
        self.start = 0
        self.finish = 0
        self.costs = {}  # as a child: the parent's cost of its packets, by size

    def __len__(self):
        return self.count

    def cost(self, size, weight):
        """Virtual-time cost of ``size`` bytes at ``weight``; a child caches it by size in
        ``child.costs`` (a dict lookup is cheaper than the float arithmetic)."""
        return max(1, int(size * self.scale / weight + 0.5))

    def head_size(self):
        return self.pifo.peek()[1].head_size()

    def activate(self, child):
        """``child`` just became backlogged: it starts no earlier than virtual time now."""
        child.start = max(self.vtime, child.finish)
        self._push(child)

    def _push(self, child):
        rank = child.start
        if self.by_finish:
            size = child.head_size()
            cost = child.costs.get(size)
            if cost is None:
                cost = child.costs[size] = self.cost(size, child.weight)
            rank += cost
        pifo = self.pifo
        pifo.enqueue(child, rank if rank >= pifo.min_rank else pifo.min_rank)  # a past rank goes first

    def pop(self):
        """Serve the child with the lowest tag and return its packet."""
        child = self.pifo.dequeue()[1]
        pkt = child.pop()
        self.count -= 1
        cost = child.costs.get(pkt.size)
        if cost is None:
            cost = child.costs[pkt.size] = self.cost(pkt.size, child.weight)
        child.finish = finish = child.start + cost
        tag = finish if self.by_finish else child.start
        if tag > self.vtime:
            self.vtime = tag
        if child.count:
            child.start = finish
            self._push(child)
        return pkt


def push_packet(leaf, pkt):
    """Queue ``pkt`` at ``leaf`` and activate every ancestor that just became backlogged."""
    leaf.packets.append(pkt)
    leaf.count += 1
    child, parent = leaf, leaf.parent
    while parent is not None:
        parent.count += 1
        if child.count == 1:
            parent.activate(child)
        child, parent = parent, parent.parent
