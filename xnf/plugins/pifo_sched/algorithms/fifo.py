"""FIFO: the PIFO with every rank equal."""
from xnf.plugins.pifo_sched.scheduler import RankScheduler


class Fifo(RankScheduler):
    """First in, first out with tail drop (one PIFO, constant rank)."""

    def rank(self, pkt, now):
        return 0
