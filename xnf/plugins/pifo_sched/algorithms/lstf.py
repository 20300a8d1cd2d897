"""Least slack time first: the rank is the time by which a packet must leave."""
from xnf.plugins.pifo_sched.errors import SchedulerConfigError
from xnf.plugins.pifo_sched.scheduler import RankScheduler, weight_of

RANGE = 1 << 20


class Lstf(RankScheduler):
    """LSTF: rank = arrival + slack (packet.slack, else `slack_ns` by flow), earliest first."""

    defaults = {"slack_ns": None, "default_slack_ns": 1_000_000, "resolution_ns": 1000}
    rank_range = RANGE

    def __init__(self, config=None):
        super().__init__(config)
        resolution = self.config["resolution_ns"]
        if not isinstance(resolution, int) or resolution < 1:
            raise SchedulerConfigError(f"resolution_ns must be a positive integer, got {resolution!r}",
                                       "e.g. resolution_ns=1000")
        self.resolution = resolution

    def rank(self, pkt, now):
        slack = pkt.slack
        if slack is None:
            slack = weight_of(self.config["slack_ns"], pkt.flow, self.config["default_slack_ns"])
        if slack >= RANGE * self.resolution:
            raise SchedulerConfigError(f"slack {slack} ns exceeds the rank window of {RANGE * self.resolution} ns",
                                       "raise resolution_ns")
        # a deadline already behind the queue's minimum goes first
        pkt.rank = max((now + int(slack)) // self.resolution, self.pifo.min_rank)
        return pkt.rank
