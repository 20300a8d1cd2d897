"""Least slack time first: the flow whose packets must leave soonest goes first.

A packet's deadline is its arrival plus its slack (``packet.slack``, else ``slack_ns``
by flow). Ranked per packet, a later packet with less slack would overtake its own
flow; here the PIFO holds one entry per backlogged flow (:class:`FlowOrderScheduler`)
ranked by the closest deadline among the flow's queued packets, as in deadline
scheduling with precedence constraints (Chetto, Silly and Bouchentouf 1990): the
packets ahead of an urgent one inherit its deadline, since they must leave first.
A packet's own deadline stays in ``packet.rank``, so the rank-inversion metric shows
what keeping the order costs against per-packet LSTF.
"""
from collections import deque

from xnf.plugins.pifo_sched.errors import SchedulerConfigError
from xnf.plugins.pifo_sched.scheduler import FlowOrderScheduler, weight_of

RANGE = 1 << 20


class Lstf(FlowOrderScheduler):
    """LSTF: deadline = arrival + slack (packet.slack, else `slack_ns` by flow); closest first, flows in order."""

    defaults = {"slack_ns": None, "default_slack_ns": 1_000_000, "resolution_ns": 1000}
    rank_range = RANGE

    def __init__(self, config=None):
        super().__init__(config)
        resolution = self.config["resolution_ns"]
        if not isinstance(resolution, int) or resolution < 1:
            raise SchedulerConfigError(f"resolution_ns must be a positive integer, got {resolution!r}",
                                       "e.g. resolution_ns=1000")
        self.resolution = resolution

    def joined(self, flow, pkt, now):
        slack = pkt.slack
        if slack is None:
            slack = weight_of(self.config["slack_ns"], pkt.flow, self.config["default_slack_ns"])
        if slack >= RANGE * self.resolution:
            raise SchedulerConfigError(f"slack {slack} ns exceeds the rank window of {RANGE * self.resolution} ns",
                                       "raise resolution_ns (the scheduler option) so that "
                                       f"{RANGE} x resolution_ns exceeds the largest slack")
        pkt.rank = (now + int(slack)) // self.resolution
        # the closest deadlines from the head on: increasing, one per packet still queued
        if flow.state is None:
            flow.state = deque()
        closest = flow.state
        while closest and closest[-1][0] > pkt.rank:
            closest.pop()
        closest.append((pkt.rank, pkt))

    def left(self, flow, pkt):
        if flow.state[0][1] is pkt:
            flow.state.popleft()

    def flow_rank(self, flow, now):
        return flow.state[0][0]

    def arrival_rank(self, flow, pkt, now):
        return pkt.rank
