"""Strict priority: the rank is the band, lower bands always go first."""
from xnf.plugins.pifo_sched.errors import SchedulerConfigError
from xnf.plugins.pifo_sched.scheduler import RankScheduler, weight_of


class StrictPriority(RankScheduler):
    """Strict priority bands (0 first); band from `priorities` by flow, else packet.priority."""

    defaults = {"bands": 8, "priorities": None}

    def pifo_range(self):
        bands = self.config["bands"]
        if not isinstance(bands, int) or not 1 <= bands <= 1 << 16:
            raise SchedulerConfigError(f"bands must be an integer 1..65536, got {bands!r}", "e.g. bands=8")
        self.bands = bands
        return max(2, 1 << (bands - 1).bit_length())

    def band_of(self, pkt):
        band = weight_of(self.config["priorities"], pkt.flow, None)
        if band is None:
            band = pkt.priority or 0
        return min(max(int(band), 0), self.bands - 1)

    def rank(self, pkt, now):
        pkt.rank = self.band_of(pkt)
        return pkt.rank
