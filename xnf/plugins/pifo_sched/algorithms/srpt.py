"""Shortest remaining processing time: the flow with the fewest bytes left goes first.

The PIFO holds one entry per backlogged flow (:class:`FlowOrderScheduler`), ranked by
what is left of the flow as its head packet says (``packet.remaining``: the bytes left
in the flow counting from that packet). After each packet the flow is ranked again,
so a shorter flow that arrives takes over at the next packet (preemptive SRPT at
packet granularity) and a flow's own packets never overtake each other.
"""
from xnf.plugins.pifo_sched.errors import SchedulerConfigError
from xnf.plugins.pifo_sched.scheduler import FlowOrderScheduler

RANGE = 1 << 16


class Srpt(FlowOrderScheduler):
    """SRPT: the flow with the fewest remaining bytes first, its packets in order (packet.remaining)."""

    defaults = {"granularity": 64}
    rank_range = RANGE

    def __init__(self, config=None):
        super().__init__(config)
        granularity = self.config["granularity"]
        if not isinstance(granularity, int) or granularity < 1:
            raise SchedulerConfigError(f"granularity must be a positive integer of bytes, got {granularity!r}",
                                       "e.g. granularity=64")
        self.granularity = granularity

    def joined(self, flow, pkt, now):
        pkt.rank = None  # the rank belongs to the flow, not to the packet (no per-packet inversions)

    def flow_rank(self, flow, now):
        # flows of unknown size, and flows larger than the range, share the last bucket
        remaining = flow.packets[0].remaining
        if remaining is None:
            return RANGE - 1
        return min(remaining // self.granularity, RANGE - 1)
