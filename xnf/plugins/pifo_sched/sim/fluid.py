"""Fluid reference: the service a GPS server would give, to measure packet schedulers by.

Generalized processor sharing (Parekh and Gallager) serves every backlogged flow at
once, flow ``i`` at ``rate x w_i / sum of the weights of the backlogged flows``. It is
computed here by water-filling: between two events (an arrival, or a flow running
empty) the rates are constant, so the next event is the earlier of the next arrival
and the first flow to drain at its current rate.

Both :func:`gps` and :func:`packet_service` (what a packet scheduler actually sent,
each packet served at the link rate while it is on the wire) return
:class:`ServiceCurves`: cumulative bytes per flow, piecewise linear in time. The
difference of two such curves is linear between their joint breakpoints, so
:func:`lead_lag` finds its extremes exactly by looking only there. It lives in the
package, not in the tests, so that authors of scheduler plugins can check their own
schedulers against GPS the same way the built-in ones are checked.
"""
from bisect import bisect_right

from xnf.plugins.pifo_sched.scheduler import weight_of
from xnf.plugins.pifo_sched.shaping import NS


class ServiceCurves:
    """Cumulative bytes served per flow over time (ns), piecewise linear."""

    def __init__(self):
        self.points = {}  # flow -> ([times], [bytes])

    def add(self, flow, time, served):
        times, values = self.points.setdefault(flow, ([0.0], [0.0]))
        if time > times[-1]:
            times.append(time)
            values.append(served)
        else:
            values[-1] = served

    @property
    def flows(self):
        return list(self.points)

    def times(self, flow):
        return self.points.get(flow, ([0.0], [0.0]))[0]

    def served(self, flow, time):
        """Bytes of ``flow`` served in ``[0, time]``."""
        times, values = self.points.get(flow, ([0.0], [0.0]))
        index = bisect_right(times, time) - 1
        if index < 0:
            return 0.0
        if index == len(times) - 1:
            return values[-1]
        t0, t1 = times[index], times[index + 1]
        return values[index] + (values[index + 1] - values[index]) * (time - t0) / (t1 - t0)


def gps(arrivals, weights, link_rate):
    """GPS service curves for ``arrivals`` (``(time_ns, flow, size)``, any order) on a link
    of ``link_rate`` bit/s; ``weights`` by flow as the schedulers take them (default 1)."""
    pending = sorted(arrivals, key=lambda a: a[0])
    per_ns = link_rate / 8 / NS  # bytes per nanosecond
    curves = ServiceCurves()
    backlog, served, weight = {}, {}, {}
    for _, flow, _ in pending:
        if flow not in weight:
            weight[flow] = weight_of(weights, flow)
            backlog[flow] = served[flow] = 0.0
            curves.add(flow, 0.0, 0.0)
    now, index = 0.0, 0
    while index < len(pending) or any(backlog.values()):
        busy = [flow for flow, left in backlog.items() if left > 0]
        next_arrival = pending[index][0] if index < len(pending) else None
        if busy:
            total = sum(weight[flow] for flow in busy)
            rates = {flow: per_ns * weight[flow] / total for flow in busy}
            drain, first = min((backlog[flow] / rates[flow], flow) for flow in busy)
            step = drain if next_arrival is None else min(drain, next_arrival - now)
            for flow in busy:
                if flow == first and step == drain:
                    served[flow] += backlog[flow]
                    backlog[flow] = 0.0
                else:
                    served[flow] += rates[flow] * step
                    backlog[flow] = max(0.0, backlog[flow] - rates[flow] * step)
            now += step
            for flow in busy:
                curves.add(flow, now, served[flow])
        else:
            now = float(next_arrival)
            for flow in served:  # idle until now: flat curves
                curves.add(flow, now, served[flow])
        while index < len(pending) and pending[index][0] <= now:
            _, flow, size = pending[index]
            curves.add(flow, now, served[flow])
            backlog[flow] += size
            index += 1
    return curves


def packet_service(departures, link_rate):
    """Service curves of a packet schedule: ``departures`` are ``(start_ns, flow, size)``
    with each packet on the wire for ``size x 8 / link_rate`` from its start."""
    curves = ServiceCurves()
    served = {}
    for start, flow, size in sorted(departures, key=lambda d: d[0]):
        before = served.get(flow, 0.0)
        curves.add(flow, float(start), before)
        served[flow] = before + size
        curves.add(flow, start + size * 8 * NS / link_rate, served[flow])
    return curves


def lead_lag(system, reference, flow):
    """``(lead, lag)`` of ``flow``: the most bytes ``system`` was ever ahead of
    ``reference``, and the most it was ever behind (both >= 0)."""
    times = sorted(set(system.times(flow)) | set(reference.times(flow)))
    lead = lag = 0.0
    for time in times:
        diff = system.served(flow, time) - reference.served(flow, time)
        lead, lag = max(lead, diff), max(lag, -diff)
    return lead, lag
