"""Shortest remaining processing time: the rank is what is left of the flow."""
from xnf.plugins.pifo_sched.errors import SchedulerConfigError
from xnf.plugins.pifo_sched.scheduler import RankScheduler

RANGE = 1 << 16


class Srpt(RankScheduler):
    """SRPT: packets of the flow with the fewest remaining bytes first (packet.remaining)."""

    defaults = {"granularity": 64}
    rank_range = RANGE

    def __init__(self, config=None):
        super().__init__(config)
        granularity = self.config["granularity"]
        if not isinstance(granularity, int) or granularity < 1:
            raise SchedulerConfigError(f"granularity must be a positive integer of bytes, got {granularity!r}",
                                       "e.g. granularity=64")
        self.granularity = granularity

    def rank(self, pkt, now):
        # flows of unknown size, and flows larger than the range, share the last bucket
        remaining = pkt.remaining if pkt.remaining is not None else RANGE * self.granularity
        pkt.rank = min(remaining // self.granularity, RANGE - 1)
        return pkt.rank
