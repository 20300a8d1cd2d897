"""Prometheus export (``--prometheus ADDR:PORT``): a fleet of hosts scraped centrally.

prometheus-client is an optional extra, imported only here and only when an exporter
is built. Metrics (all with the ``pping_`` prefix):

* ``pping_rtt_seconds{protocol,prefix}``: histogram of RTTs, per protocol and per
  prefix of the host the RTT was measured to (``--aggregate-subnets-v4/v6`` lengths;
  with ``--aggregate-reverse``, the prefix of the other end). Aggregated reports
  (``--aggregate``) feed it too, with ``protocol="all"`` (histograms are per prefix
  only), one observation per sample at its bin's middle.
* ``pping_rtt_events_total{protocol}``, ``pping_flow_events_total{protocol,event,reason}``
* ``pping_open_flows{protocol}``: flow directions opened and not yet closed.
* ``pping_prefix_packets_total{prefix,direction}``, ``pping_prefix_bytes_total{...}``
  from aggregated reports (``direction`` is ``rx`` or ``tx`` as seen by the prefix).
* ``pping_dropped_events_total`` and ``pping_map_full_total{map}``: what was lost.

Every counter and gauge series whose labels are known in advance (the protocols the
options track, their flow-event reasons, the three maps) exists at 0 from the start.
Prometheus computes ``rate()``/``increase()`` from the samples it scraped, so a series
that first appears already at 5 loses those 5: a real Prometheus showed
``increase(pping_rtt_events_total[1m])`` at 12.9 for 15 pings before this. Histogram
series are per prefix, unknown until a host answers; their first scrape's samples
are missing from rates (not from the cumulative buckets).

``*_created`` samples are not served: Prometheus 2.42 (Debian bookworm) stored each
as a series of its own, one per counter and histogram series, and uses them for
nothing; the zero series above give rates their start instead.
"""

from __future__ import annotations

import functools

from xnf.core.errors import XnfError
from xnf.plugins.pping.config import PpingConfig, parse_listen_address
from xnf.plugins.pping.events import (
    CLOSING, OPENING, REASON_FIN, REASON_FIRST_PACKET, REASON_RST, REASON_SYN, REASON_SYN_ACK,
    REASON_TIMEOUT, AggregateReport, FlowEvent, RttEvent, Stats,
)
from xnf.plugins.pping.packet import prefix_of

MAPS = ("timestamp", "flow", "aggregate")

RTT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
               0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class PrometheusError(XnfError, RuntimeError):
    """The exporter cannot run (missing extra, address in use); one-line message."""


def _client():
    try:
        # prometheus_client (optional extra): only with --prometheus
        import prometheus_client
    except ImportError:
        raise PrometheusError("--prometheus needs prometheus-client, which is not installed: "
                              "pip install xnf[prometheus]") from None
    return prometheus_client


class PrometheusExporter:
    """Turns pping events into metrics and serves them over HTTP."""

    def __init__(self, listen: str, config: "PpingConfig | None" = None):
        pc = _client()
        self.config = config or PpingConfig()
        self.address, self.port = parse_listen_address(listen)
        self.registry = pc.CollectorRegistry()
        r = self.registry
        self.rtt = pc.Histogram("pping_rtt_seconds", "Round-trip times measured passively",
                                ["protocol", "prefix"], buckets=RTT_BUCKETS, registry=r)
        self.rtt_events = pc.Counter("pping_rtt_events", "RTT samples reported", ["protocol"], registry=r)
        self.flow_events = pc.Counter("pping_flow_events", "Flow directions opened or closed",
                                      ["protocol", "event", "reason"], registry=r)
        self.open_flows = pc.Gauge("pping_open_flows", "Flow directions currently open", ["protocol"], registry=r)
        self.prefix_packets = pc.Counter("pping_prefix_packets", "Packets per prefix (aggregated mode)",
                                         ["prefix", "direction"], registry=r)
        self.prefix_bytes = pc.Counter("pping_prefix_bytes", "Bytes per prefix (aggregated mode)",
                                       ["prefix", "direction"], registry=r)
        self.dropped = pc.Counter("pping_dropped_events", "Events lost before user space read them", registry=r)
        self.map_full = pc.Counter("pping_map_full", "Entries not stored because a map was full", ["map"], registry=r)
        self._open = {}
        self._last_stats = Stats()
        self._server = None
        c = self.config
        self._prefix = functools.lru_cache(maxsize=65536)(
            lambda ip: prefix_of(ip, c.aggregate_subnets_v4, c.aggregate_subnets_v6))
        self._create_known_series()

    def _create_known_series(self):
        """Series at 0 before the first event, so that rate() counts from the start."""
        for m in MAPS:
            self.map_full.labels(m)
        if self.config.aggregate:  # per-prefix reports only: no RTT or flow events
            return
        for proto, events in known_flow_events(self.config).items():
            self.rtt_events.labels(proto)
            self.open_flows.labels(proto).set(0)
            for event, reason in events:
                self.flow_events.labels(proto, event, reason)

    def start(self) -> "PrometheusExporter":
        """Serve ``/metrics`` on a background thread."""
        pc = _client()
        served = pc.CollectorRegistry(auto_describe=False)
        served.register(_WithoutCreated(self.registry))
        try:
            self._server, _thread = pc.start_http_server(self.port, self.address, served)
        except OSError as exc:
            raise PrometheusError(f"--prometheus {self.address}:{self.port}: cannot listen: {exc.strerror}") from None
        return self

    def observe(self, event) -> None:
        if isinstance(event, RttEvent):
            f = event.flow
            ip = f.dst_ip if self.config.aggregate_reverse else f.src_ip
            self.rtt.labels(f.proto, self._prefix(ip)).observe(event.rtt_ns / 1e9)
            self.rtt_events.labels(f.proto).inc()
        elif isinstance(event, FlowEvent):
            proto = event.flow.proto
            self.flow_events.labels(proto, event.event, event.reason).inc()
            n = self._open.get(proto, 0) + (1 if event.event == "opening" else -1)
            self._open[proto] = max(n, 0)
            self.open_flows.labels(proto).set(self._open[proto])
        elif isinstance(event, AggregateReport):
            self._observe_report(event)

    def _observe_report(self, rep):
        for direction, pkts, nbytes in (("rx", rep.rx_packets, rep.rx_bytes), ("tx", rep.tx_packets, rep.tx_bytes)):
            self.prefix_packets.labels(rep.prefix, direction).inc(pkts)
            self.prefix_bytes.labels(rep.prefix, direction).inc(nbytes)
        if not any(rep.histogram):
            return  # a prefix with packets and no RTT: no histogram series of zeros (19 per prefix)
        hist = self.rtt.labels("all", rep.prefix)
        for i, count in enumerate(rep.histogram):
            mid = (i + 0.5) * rep.bin_width_ns / 1e9
            for _ in range(count):
                hist.observe(mid)

    def update_stats(self, stats: Stats) -> None:
        """Advance the loss counters to a new cumulative :class:`Stats` snapshot."""
        last = self._last_stats
        self.dropped.inc(max(stats.dropped_events - last.dropped_events, 0))
        for name in MAPS:
            delta = getattr(stats, f"{name}_map_full") - getattr(last, f"{name}_map_full")
            self.map_full.labels(name).inc(max(delta, 0))
        self._last_stats = stats

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class _WithoutCreated:
    """A registry's metrics without their ``*_created`` samples (a collector of its own
    rather than prometheus_client's process-wide switch, which would change every
    other registry of an embedding program)."""

    def __init__(self, registry):
        self._registry = registry

    def describe(self):
        return []

    def collect(self):
        for metric in self._registry.collect():
            metric.samples = [s for s in metric.samples if not s.name.endswith("_created")]
            yield metric


def known_flow_events(config: PpingConfig) -> "dict[str, list[tuple[str, str]]]":
    """Protocol -> the (event, reason) pairs its flows can report, for the tracked protocols."""
    common = [(OPENING, REASON_FIRST_PACKET), (CLOSING, REASON_TIMEOUT)]
    tcp = [(OPENING, REASON_SYN), (OPENING, REASON_SYN_ACK), (CLOSING, REASON_FIN), (CLOSING, REASON_RST)]
    out = {}
    if config.track_tcp:
        out["TCP"] = common + tcp
    if config.icmp:
        out["ICMP"] = out["ICMPv6"] = common
    if config.dns:
        out["UDP"] = common
    if config.quic:
        out["QUIC"] = common
    return out
