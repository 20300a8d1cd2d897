"""Output formats against strict patterns and a JSON schema; the writer and SIGHUP."""

import json
import os
import re
import signal

import jsonschema
import pytest

from xnf.plugins.pping import aggregate, formats
from xnf.plugins.pping.events import AggregateReport, Flow, FlowEvent, RttEvent, Stats
from xnf.plugins.pping.writer import OutputError, Writer

TS = 1623420121_483727575
FLOW = Flow("TCP", "10.11.1.1", 5201, "10.11.1.2", 59528)
FLOW6 = Flow("ICMPv6", "2001:db8::1", 7, "2001:db8::2", 7)
RTT = RttEvent(TS, FLOW, 5_425_439, 5_298_909, 9393, 492457296, 5922, 37, False, "tsval")
RTT6 = RttEvent(TS + 1, FLOW6, 1_000_000, 1_000_000, 1, 64, 1, 64, True, "icmp")
OPEN = FlowEvent(TS - 5_000_000, FLOW, "opening", "SYN-ACK", "dest")
CLOSE = FlowEvent(TS + 9, FLOW, "closing", "flow timeout", "garbage collection")
BINS = [0] * 250
BINS[1], BINS[2], BINS[10] = 5, 3, 2
AGG = AggregateReport(TS, "10.0.0.0/24", 10, 1000, 12, 20000, BINS, 4_000_000, 4_100_000, 41_000_000)
AGG_EMPTY = AggregateReport(TS, "2001:db8::/48", 1, 60, 0, 0, [0] * 250, 4_000_000)
EVENTS = [OPEN, RTT, RTT6, CLOSE, AGG, AGG_EMPTY]

CLOCK = r"\d\d:\d\d:\d\d\.\d{9}"
MSEC = r"\d+(\.\d{1,6})?"
ADDR = r"[0-9a-fA-F.:]+"
FLOWRE = rf"{ADDR}:\d+\+{ADDR}:\d+"
STANDARD_RTT = re.compile(rf"^{CLOCK} {MSEC} ms {MSEC} ms (TCP|ICMP|ICMPv6|UDP|QUIC) {FLOWRE}$")
STANDARD_FLOW = re.compile(rf"^{CLOCK} (TCP|ICMP|ICMPv6|UDP|QUIC) {FLOWRE} (opening|closing) due to "
                           rf"(SYN|SYN-ACK|first observed packet|FIN|RST|flow timeout) "
                           rf"from (src|dest|garbage collection)$")
STANDARD_AGG = re.compile(rf"^{CLOCK}: [0-9a-fA-F.:]+/\d+ -> rxpkts=\d+, rxbytes=\d+, txpkts=\d+, txbytes=\d+"
                          rf"(, rtt-count=\d+, min={MSEC} ms, mean={MSEC} ms, median={MSEC} ms, "
                          rf"p95={MSEC} ms, max={MSEC} ms)?$")
PPVIZ = re.compile(rf"^\d+\.\d{{9}} \d+\.\d{{9}} \d+\.\d{{9}} {FLOWRE}$")

_common = {"timestamp": {"type": "integer", "minimum": 0},
           "src_ip": {"type": "string"}, "src_port": {"type": "integer", "minimum": 0, "maximum": 65535},
           "dest_ip": {"type": "string"}, "dest_port": {"type": "integer", "minimum": 0, "maximum": 65535},
           "protocol": {"enum": ["TCP", "ICMP", "ICMPv6", "UDP", "QUIC"]}}
_count = {"type": "integer", "minimum": 0}
EVENT_SCHEMA = {"oneOf": [
    {"type": "object", "additionalProperties": False,
     "required": list(_common) + ["rtt", "min_rtt", "sent_packets", "sent_bytes", "rec_packets",
                                  "rec_bytes", "match_on_egress"],
     "properties": dict(_common, rtt=_count, min_rtt=_count, sent_packets=_count, sent_bytes=_count,
                        rec_packets=_count, rec_bytes=_count, match_on_egress={"type": "boolean"})},
    {"type": "object", "additionalProperties": False,
     "required": list(_common) + ["flow_event", "reason", "triggered_by"],
     "properties": dict(_common, flow_event={"enum": ["opening", "closing"]},
                        reason={"enum": ["SYN", "SYN-ACK", "first observed packet", "FIN", "RST", "flow timeout"]},
                        triggered_by={"enum": ["src", "dest", "garbage collection"]})},
    {"type": "object", "additionalProperties": False,
     "required": ["timestamp", "ip_prefix", "rx_packets", "rx_bytes", "tx_packets", "tx_bytes"],
     "properties": {"timestamp": _count, "ip_prefix": {"type": "string", "pattern": r"^[0-9a-fA-F.:]+/\d+$"},
                    "rx_packets": _count, "rx_bytes": _count, "tx_packets": _count, "tx_bytes": _count,
                    "count_rtt": _count, "min_rtt": _count, "mean_rtt": _count, "median_rtt": _count,
                    "p95_rtt": _count, "max_rtt": _count, "bin_width_ns": _count,
                    "histogram": {"type": "array", "items": _count}}},
]}
ARRAY_SCHEMA = {"type": "array", "items": EVENT_SCHEMA}


def render(name, events=EVENTS):
    f = formats.formatter(name)
    return f.header() + "".join(t for t in map(f.format, events) if t) + f.footer()


def test_standard_format():
    lines = render("standard").splitlines()
    assert len(lines) == 6
    assert STANDARD_FLOW.match(lines[0]) and lines[0].endswith(
        " TCP 10.11.1.1:5201+10.11.1.2:59528 opening due to SYN-ACK from dest")
    assert STANDARD_RTT.match(lines[1]) and lines[1].endswith(
        " 5.425439 ms 5.298909 ms TCP 10.11.1.1:5201+10.11.1.2:59528")
    assert STANDARD_RTT.match(lines[2]) and lines[2].endswith(" 1 ms 1 ms ICMPv6 2001:db8::1:7+2001:db8::2:7")
    assert STANDARD_FLOW.match(lines[3])
    assert STANDARD_AGG.match(lines[4]) and "rtt-count=10, min=4.1 ms" in lines[4] and "max=41 ms" in lines[4]
    assert STANDARD_AGG.match(lines[5]) and "rtt-count" not in lines[5]
    assert lines[1][9:18] == "483727575"  # full nanoseconds of the timestamp


def test_ppviz_keeps_full_resolution_and_only_rtts():
    lines = render("ppviz").splitlines()
    assert lines == ["1623420121.483727575 0.005425439 0.005298909 10.11.1.1:5201+10.11.1.2:59528",
                     "1623420121.483727576 0.001000000 0.001000000 2001:db8::1:7+2001:db8::2:7"]
    assert all(PPVIZ.match(line) for line in lines)


def test_json_is_one_array_matching_the_schema():
    text = render("json")
    doc = json.loads(text)
    jsonschema.validate(doc, ARRAY_SCHEMA)
    assert doc[1]["rtt"] == 5_425_439 and doc[1]["timestamp"] == TS
    assert doc[4]["histogram"] == BINS[:11] and doc[4]["median_rtt"] == 8_000_000
    assert [formats.from_dict(d) for d in doc[:4]] == [OPEN, RTT, RTT6, CLOSE]


def test_json_is_a_valid_prefix_while_streaming():
    f = formats.formatter("json")
    text = f.header()
    for ev in EVENTS[:3]:
        text += f.format(ev)
        assert len(json.loads(text + f.footer())) >= 1
    assert json.loads(formats.formatter("json").header() + formats.formatter("json").footer()) == []


def test_jsonl_lines_match_schema_and_json_dumps():
    lines = render("jsonl").splitlines()
    assert len(lines) == 6
    for line, ev in zip(lines, EVENTS):
        obj = json.loads(line)
        jsonschema.validate(obj, EVENT_SCHEMA)
        assert obj == formats.to_dict(ev)


def test_milliseconds_exact():
    assert formats.milliseconds(5_425_440) == "5.42544"
    assert formats.milliseconds(1) == "0.000001"
    assert formats.milliseconds(7_000_000) == "7"


def test_unknown_format():
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        formats.formatter("xml")


def test_stats_line():
    assert "3 events dropped" in formats.stats_line(Stats(dropped_events=3))


def test_histogram_figures():
    s = aggregate.summarize(AGG)
    assert s.count == 10 and s.min_ns == 4_100_000 and s.max_ns == 41_000_000
    assert s.mean_ns == pytest.approx((5 * 6 + 3 * 10 + 2 * 42) / 10 * 1e6)
    # median: rank 4.5 lies between the last sample of bin 1 (6 ms) and the first of bin 2 (10 ms)
    assert s.median_ns == 8_000_000
    # p95: rank 8.55 falls inside bin 10 (ranks 8 and 9): its middle
    assert s.p95_ns == 42_000_000
    # interpolation spans the empty bin between two occupied ones
    assert aggregate.percentile([0, 2, 0, 2], 50, 4_000_000) == 10_000_000
    merged = aggregate.merge([AGG, AGG])
    assert sum(merged.histogram) == 20 and merged.rx_packets == 20
    assert "10.0.0.0/24: 10 RTT samples" in aggregate.render(AGG)
    assert aggregate.summarize(AGG_EMPTY).count == 0


def test_writer_to_file_and_sighup_reopen(tmp_path):
    path = tmp_path / "out.json"
    w = Writer("json", path)
    old = w.install_sighup()
    try:
        w.write(RTT)
        w.flush()
        os.rename(path, tmp_path / "out.json.1")
        os.kill(os.getpid(), signal.SIGHUP)
        w.write_many([OPEN, RTT6])
        w.close()
    finally:
        signal.signal(signal.SIGHUP, old)
    first = json.loads((tmp_path / "out.json.1").read_text())
    second = json.loads(path.read_text())
    assert len(first) == 1 and len(second) == 2
    jsonschema.validate(first + second, ARRAY_SCHEMA)


def test_writer_json_refuses_existing_file_and_jsonl_appends(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("old")
    with pytest.raises(OutputError, match="file exists"):
        Writer("json", path)
    with Writer("jsonl", path) as w:
        w.write(RTT)
    assert path.read_text().startswith("old{")


def test_writer_reopen_failure_keeps_the_old_file(tmp_path, capsys):
    path = tmp_path / "y.json"
    with Writer("json", path) as w:
        w.write(RTT)
        w.request_reopen()          # nobody moved the file away
        w.write(RTT6)
    assert len(json.loads(path.read_text())) == 2
    assert "output continues in the old file" in capsys.readouterr().err


def test_writer_bad_directory(tmp_path):
    with pytest.raises(OutputError, match="cannot open for writing"):
        Writer("standard", tmp_path / "missing" / "f.txt")
