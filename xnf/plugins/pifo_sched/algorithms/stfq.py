"""Start-time fair queueing."""
from xnf.plugins.pifo_sched.fair_queueing import FairQueueing


class Stfq(FairQueueing):
    """Start-time fair queueing: flows ordered by start tag, weights per flow."""

    order = "start"
