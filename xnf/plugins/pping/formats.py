"""pping's output formats: ``standard``, ``ppviz``, ``json`` (one array) and ``jsonl``.

Every format keeps full nanosecond resolution: times are printed from integers, never
through a float. ``json``/``jsonl`` use ePPing's keys, with RTTs and timestamps as
integer nanoseconds. Lines are built with string formatting rather than
``json.dumps``: the values are numbers and address strings that need no escaping, and
the output path has to keep up with 150,000 events per second.

A :class:`Formatter` is stateful only for ``json``: it opens the array in
:meth:`~Formatter.header`, puts a ``,`` before every element but the first, and
closes it in :meth:`~Formatter.footer`, so a file is a valid prefix of an array at
any moment and a complete array once closed.
"""

from __future__ import annotations

import json
import time

from xnf.plugins.pping import aggregate
from xnf.plugins.pping.config import FORMATS
from xnf.plugins.pping.events import (AggregateReport, Flow, FlowEvent, RttEvent, Stats)

NS = 1_000_000_000


def clock_time(ts_ns: int) -> str:
    """Local wall-clock time of day with nanoseconds: ``16:00:46.147705205``.

    A time the C library cannot convert (beyond its year range, from a corrupt capture
    or a caller's arithmetic) is shown as the UTC time of day rather than raising.
    """
    sec, ns = divmod(ts_ns, NS)
    if sec != _last_second[0]:
        try:
            hms = time.strftime('%H:%M:%S', time.localtime(sec))
        except (OverflowError, OSError, ValueError):
            hms = "%02d:%02d:%02d" % (sec // 3600 % 24, sec // 60 % 60, sec % 60)
        _last_second[:] = sec, hms
    return f"{_last_second[1]}.{ns:09d}"


# The time of day of the last second formatted: events come in time order, thousands
# per second, and localtime + strftime were most of a standard line's cost.
_last_second = [None, ""]


def seconds(ns: int) -> str:
    """Integer nanoseconds as exact decimal seconds: ``1623420121.483727575``."""
    s, frac = divmod(ns, NS)
    return f"{s}.{frac:09d}"


def milliseconds(ns) -> str:
    """Nanoseconds as milliseconds, exact to the nanosecond, trailing zeros dropped."""
    if isinstance(ns, float):
        ns = round(ns)
    whole, frac = divmod(ns, 1_000_000)
    if not frac:
        return str(whole)
    return f"{whole}.{frac:06d}".rstrip("0")


# Dictionaries (json objects) ---------------------------------------------------------

def to_dict(event) -> dict:
    """The json object of an event, with ePPing's keys."""
    if isinstance(event, RttEvent):
        f = event.flow
        return {"timestamp": event.timestamp_ns, "src_ip": f.src_ip, "src_port": f.src_port,
                "dest_ip": f.dst_ip, "dest_port": f.dst_port, "protocol": f.proto,
                "rtt": event.rtt_ns, "min_rtt": event.min_rtt_ns,
                "sent_packets": event.sent_packets, "sent_bytes": event.sent_bytes,
                "rec_packets": event.rec_packets, "rec_bytes": event.rec_bytes,
                "match_on_egress": event.match_on_egress}
    if isinstance(event, FlowEvent):
        f = event.flow
        return {"timestamp": event.timestamp_ns, "src_ip": f.src_ip, "src_port": f.src_port,
                "dest_ip": f.dst_ip, "dest_port": f.dst_port, "protocol": f.proto,
                "flow_event": event.event, "reason": event.reason,
                "triggered_by": event.triggered_by}
    if isinstance(event, AggregateReport):
        d = {"timestamp": event.timestamp_ns, "ip_prefix": event.prefix,
             "rx_packets": event.rx_packets, "rx_bytes": event.rx_bytes,
             "tx_packets": event.tx_packets, "tx_bytes": event.tx_bytes}
        s = aggregate.summarize(event)
        if s.count:
            d.update(count_rtt=s.count, min_rtt=round(s.min_ns), mean_rtt=round(s.mean_ns),
                     median_rtt=round(s.median_ns), p95_rtt=round(s.p95_ns), max_rtt=round(s.max_ns),
                     bin_width_ns=event.bin_width_ns, histogram=aggregate.trimmed(event.histogram))
        return d
    raise TypeError(f"not a pping event: {event!r}")


def from_dict(d: dict):
    """Rebuild an event from its json object (RTT and flow events).

    ``identifier_kind`` is not in ePPing's schema; it is inferred from the protocol
    (TCP results read back as ``tsval``).
    """
    flow = Flow(d["protocol"], d["src_ip"], d["src_port"], d["dest_ip"], d["dest_port"])
    if "rtt" in d:
        kind = {"TCP": "tsval", "ICMP": "icmp", "ICMPv6": "icmp", "UDP": "dns", "QUIC": "spin"}[flow.proto]
        return RttEvent(d["timestamp"], flow, d["rtt"], d["min_rtt"], d["sent_packets"], d["sent_bytes"],
                        d["rec_packets"], d["rec_bytes"], d["match_on_egress"], kind)
    if "flow_event" in d:
        return FlowEvent(d["timestamp"], flow, d["flow_event"], d["reason"], d["triggered_by"])
    raise ValueError(f"not a pping RTT or flow event: {sorted(d)}")


# Formatters ---------------------------------------------------------------------------

class Formatter:
    """Turns events into text; ``format`` returns ``None`` for events it does not show."""

    name = ""

    def header(self) -> str:
        return ""

    def format(self, event) -> "str | None":
        raise NotImplementedError

    def format_many(self, events) -> str:
        """The text of a batch (formats may do this faster than event by event)."""
        return "".join(t for t in map(self.format, events) if t is not None)

    def footer(self) -> str:
        return ""


class StandardFormatter(Formatter):
    """One human-readable line per event (ePPing's default)."""

    name = "standard"

    def format(self, event):
        if isinstance(event, RttEvent):
            return (f"{clock_time(event.timestamp_ns)} {milliseconds(event.rtt_ns)} ms "
                    f"{milliseconds(event.min_rtt_ns)} ms {event.flow.proto} {event.flow}\n")
        if isinstance(event, FlowEvent):
            return (f"{clock_time(event.timestamp_ns)} {event.flow.proto} {event.flow} "
                    f"{event.event} due to {event.reason} from {event.triggered_by}\n")
        if isinstance(event, AggregateReport):
            line = (f"{clock_time(event.timestamp_ns)}: {event.prefix} -> rxpkts={event.rx_packets}, "
                    f"rxbytes={event.rx_bytes}, txpkts={event.tx_packets}, txbytes={event.tx_bytes}")
            s = aggregate.summarize(event)
            if s.count:
                line += (f", rtt-count={s.count}, min={milliseconds(s.min_ns)} ms, "
                         f"mean={milliseconds(s.mean_ns)} ms, median={milliseconds(s.median_ns)} ms, "
                         f"p95={milliseconds(s.p95_ns)} ms, max={milliseconds(s.max_ns)} ms")
            return line + "\n"
        return None


class PpvizFormatter(Formatter):
    """``epoch rtt min_rtt flow`` in seconds for Kathleen Nichols' ppviz; RTT events only."""

    name = "ppviz"

    def format(self, event):
        if isinstance(event, RttEvent):
            return (f"{seconds(event.timestamp_ns)} {seconds(event.rtt_ns)} "
                    f"{seconds(event.min_rtt_ns)} {event.flow}\n")
        return None


_FLOW_JSON = {}  # Flow -> its json members; flows repeat, so each is formatted once


def _flow_json(f) -> str:
    text = _FLOW_JSON.get(f)
    if text is None:
        if len(_FLOW_JSON) > 100_000:
            _FLOW_JSON.clear()
        text = _FLOW_JSON[f] = (f'"src_ip":"{f.src_ip}","src_port":{f.src_port},"dest_ip":"{f.dst_ip}",'
                                f'"dest_port":{f.dst_port},"protocol":"{f.proto}"')
    return text


def _json_object(event) -> str:
    if type(event) is RttEvent:
        return (f'{{"timestamp":{event.timestamp_ns},{_flow_json(event.flow)},'
                f'"rtt":{event.rtt_ns},"min_rtt":{event.min_rtt_ns},'
                f'"sent_packets":{event.sent_packets},"sent_bytes":{event.sent_bytes},'
                f'"rec_packets":{event.rec_packets},"rec_bytes":{event.rec_bytes},'
                f'"match_on_egress":{"true" if event.match_on_egress else "false"}}}')
    if isinstance(event, FlowEvent):
        return (f'{{"timestamp":{event.timestamp_ns},{_flow_json(event.flow)},'
                f'"flow_event":"{event.event}","reason":"{event.reason}",'
                f'"triggered_by":"{event.triggered_by}"}}')
    if isinstance(event, AggregateReport):
        return json.dumps(to_dict(event), separators=(",", ":"))
    return None


class JsonlFormatter(Formatter):
    """One json object per line."""

    name = "jsonl"

    def format(self, event):
        obj = _json_object(event)
        return None if obj is None else obj + "\n"

    def format_many(self, events) -> str:
        return "".join(o + "\n" for o in map(_json_object, events) if o is not None)


class JsonFormatter(Formatter):
    """One json array, written as it grows."""

    name = "json"

    def __init__(self):
        self._first = True

    def header(self):
        self._first = True
        return "["

    def format(self, event):
        obj = _json_object(event)
        if obj is None:
            return None
        if self._first:
            self._first = False
            return "\n" + obj
        return ",\n" + obj

    def footer(self):
        return "\n]\n"


_FORMATTERS = {c.name: c for c in (StandardFormatter, PpvizFormatter, JsonFormatter, JsonlFormatter)}


def formatter(name: str) -> Formatter:
    """A fresh formatter for ``--format NAME``."""
    try:
        return _FORMATTERS[name]()
    except KeyError:
        raise ValueError(f"unknown format {name!r}; choose one of {', '.join(FORMATS)}") from None


def stats_line(stats: Stats) -> str:
    """One line saying what could not be recorded (for stderr at exit)."""
    return (f"pping: {stats.rtt_events} RTT events, {stats.flow_events} flow events; "
            f"{stats.dropped_events} events dropped; not stored for lack of map room: "
            f"{stats.timestamp_map_full} timestamps, {stats.flow_map_full} flows, "
            f"{stats.aggregate_map_full} prefixes")
