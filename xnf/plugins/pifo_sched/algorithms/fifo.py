"""FIFO: the PIFO with every rank equal."""
from xnf.plugins.pifo_sched.scheduler import RankScheduler


class Fifo(RankScheduler):
    """First in, first out with tail drop (one PIFO, constant rank)."""

    def rank(self, pkt, now):
        return 0

    def enqueue(self, pkt, now):
        pifo = self.pifo  # RankScheduler.enqueue with full() and rank() written out: per packet
        if pifo.count >= self.capacity:
            self.drop(pkt, now, "overflow")
            return False
        pifo.enqueue(pkt, 0)
        return True
