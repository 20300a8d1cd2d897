"""User-side reading of per-prefix RTT histograms (``--aggregate``).

The kernel keeps linear histograms (``AggregateReport.histogram``, equal-width bins);
this module turns them into the figures the outputs print: count, mean, median, p95,
and an ASCII rendering for terminals. Values inside a bin are taken to sit at the
bin's middle, and percentiles are interpolated between occupied bins (as
``numpy.percentile`` does between samples), the way ePPing reports them.
"""

from __future__ import annotations

import attrs

from xnf.plugins.pping.events import AggregateReport


@attrs.frozen
class Summary:
    """Figures of one histogram, in nanoseconds (``None`` without samples)."""

    count: int
    min_ns: "float | None"
    mean_ns: "float | None"
    median_ns: "float | None"
    p95_ns: "float | None"
    max_ns: "float | None"


def _mid(i, width):
    return width * i + width / 2


def mean(bins, width):
    n = sum(bins)
    if not n:
        return None
    return sum(c * _mid(i, width) for i, c in enumerate(bins)) / n


def percentile(bins, pct, width):
    """The ``pct``-th percentile, interpolated between the middles of occupied bins."""
    n = sum(bins)
    if not n:
        return None
    occupied = [i for i, c in enumerate(bins) if c]
    rank = pct / 100 * (n - 1)
    if rank <= 0:
        return _mid(occupied[0], width)
    if rank >= n - 1:
        return _mid(occupied[-1], width)
    seen = 0
    for pos, i in enumerate(occupied):
        seen += bins[i]
        if seen > rank:
            # rank falls in bin i, or between its last sample and the next occupied bin
            if rank > seen - 1:
                nxt = occupied[pos + 1]
                return _mid(i, width) + (rank - (seen - 1)) * (nxt - i) * width
            return _mid(i, width)
    return _mid(occupied[-1], width)


def summarize(report: AggregateReport) -> Summary:
    """Count, min, mean, median, p95, max of a report (exact min/max when present)."""
    bins, width = report.histogram, report.bin_width_ns
    n = sum(bins)
    if not n:
        return Summary(0, None, None, None, None, None)
    lo = report.min_rtt_ns if report.min_rtt_ns is not None else percentile(bins, 0, width)
    hi = report.max_rtt_ns if report.max_rtt_ns is not None else percentile(bins, 100, width)
    return Summary(n, lo, mean(bins, width), percentile(bins, 50, width), percentile(bins, 95, width), hi)


def merge(reports) -> AggregateReport:
    """Add up reports of one prefix (per-CPU copies, or consecutive intervals)."""
    reports = list(reports)
    if not reports:
        raise ValueError("merge() needs at least one report")
    first = reports[0]
    widths = {r.bin_width_ns for r in reports}
    if len(widths) != 1 or {r.prefix for r in reports} != {first.prefix}:
        raise ValueError("merge() needs reports of one prefix with one bin width")
    size = max(len(r.histogram) for r in reports)
    bins = [0] * size
    for r in reports:
        for i, c in enumerate(r.histogram):
            bins[i] += c
    mins = [r.min_rtt_ns for r in reports if r.min_rtt_ns]
    maxs = [r.max_rtt_ns for r in reports if r.max_rtt_ns]
    return AggregateReport(
        max(r.timestamp_ns for r in reports), first.prefix,
        sum(r.rx_packets for r in reports), sum(r.rx_bytes for r in reports),
        sum(r.tx_packets for r in reports), sum(r.tx_bytes for r in reports),
        bins, first.bin_width_ns, min(mins) if mins else None, max(maxs) if maxs else None)


def trimmed(bins):
    """The bins up to the last occupied one (what the outputs print)."""
    last = max((i for i, c in enumerate(bins) if c), default=-1)
    return list(bins[:last + 1])


def render(report: AggregateReport, width: int = 40) -> str:
    """An ASCII histogram: one line per occupied bin range, bar scaled to ``width``."""
    bins = trimmed(report.histogram)
    if not bins:
        return f"{report.prefix}: no RTT samples"
    peak = max(bins)
    w = report.bin_width_ns / 1e6
    lines = [f"{report.prefix}: {sum(bins)} RTT samples"]
    for i, c in enumerate(bins):
        if c:
            bar = "#" * max(1, round(c / peak * width))
            lines.append(f"{i * w:8.1f}-{(i + 1) * w:<8.1f} ms {c:>8} {bar}")
    return "\n".join(lines)
