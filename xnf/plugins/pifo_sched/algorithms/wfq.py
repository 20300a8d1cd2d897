"""Weighted fair queueing (self-clocked: virtual time is the finish tag in service)."""
from xnf.plugins.pifo_sched.fair_queueing import FairQueueing


class Wfq(FairQueueing):
    """Weighted fair queueing: flows ordered by virtual finish time, weights per flow."""

    order = "finish"
