"""pping as Python objects: ``for ev in xnf.pping("eth0", icmp=True): ...``.

:func:`stream` attaches the data path to an interface, yields
:class:`~xnf.plugins.pping.events.RttEvent` / :class:`FlowEvent` (or, with
``aggregate=S``, :class:`AggregateReport` every S seconds) and detaches when the
generator is closed or garbage collected. :func:`pump` is the loop the CLI runs: the
same events handed to callbacks until a stop event is set.
"""

from __future__ import annotations

import collections
import threading
import time

from xnf.plugins.pping.config import PpingConfig
from xnf.plugins.pping.datapath import Datapath


def stream(iface: str, netns: "str | None" = None, timeout: "float | None" = None, **config):
    """Attach pping to ``iface`` and yield its events until closed (or for ``timeout`` s).

    ``config`` takes :class:`PpingConfig` fields (``icmp=True``, ``rate_limit=10``, ...).
    Bad options and interfaces raise before anything is attached.
    """
    cfg = config.pop("config", None) or PpingConfig(**config)
    dp = Datapath(iface, cfg, netns).attach()
    return _events(dp, timeout)


def _events(dp, timeout):
    pending = collections.deque()
    stop = threading.Event()
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        for batch in _batches(dp, stop, pending):
            yield from batch
            if deadline is not None and time.monotonic() >= deadline:
                return
    finally:
        dp.detach()


def _batches(dp, stop, pending):
    decoder = dp.decoder()
    rb = dp.ring_buffer(lambda raw: pending.append(decoder.decode(raw)))
    interval = dp.config.aggregate
    next_report = time.monotonic() + interval if interval else None
    try:
        while not stop.is_set():
            rb.poll(100)
            if next_report is not None and time.monotonic() >= next_report:
                pending.extend(dp.collect_aggregates())
                next_report += interval
            if pending:
                batch = list(pending)
                pending.clear()
                yield batch
            else:
                yield ()
    finally:
        rb.close()


def pump(dp, on_events, stop: threading.Event, on_stats=None, stats_interval: float = 1.0):
    """Hand the events of an attached :class:`Datapath` to ``on_events(list)``, one batch
    per ring-buffer poll, until ``stop`` is set.

    Aggregation intervals are closed every ``config.aggregate`` seconds (and once more
    at the end); ``on_stats(Stats)`` is called about every ``stats_interval`` seconds.
    Returns the final :class:`Stats`.
    """
    decoder = dp.decoder()
    batch = []
    rb = dp.ring_buffer(lambda raw: batch.append(decoder.decode(raw)))
    interval = dp.config.aggregate
    next_report = time.monotonic() + interval if interval else None
    next_stats = time.monotonic() + stats_interval

    def flush():
        if batch:
            on_events(batch[:])
            batch.clear()

    try:
        while not stop.is_set():
            rb.poll(100)
            flush()
            now = time.monotonic()
            if next_report is not None and now >= next_report:
                on_events(dp.collect_aggregates())
                next_report += interval
            if on_stats is not None and now >= next_stats:
                on_stats(dp.stats())
                next_stats = now + stats_interval
        rb.consume()
        flush()
        if interval:
            on_events(dp.collect_aggregates())
    finally:
        rb.close()
    return dp.stats()
