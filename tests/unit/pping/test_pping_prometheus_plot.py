"""Prometheus export scraped over HTTP on 127.0.0.1, and the plot (optional extras)."""

import json
import socket
import subprocess
import sys
import urllib.request

import pytest

from xnf.plugins.pping.config import PpingConfig
from xnf.plugins.pping.events import AggregateReport, Flow, FlowEvent, RttEvent, Stats
from xnf.plugins.pping.plot import PlotError, plot

pytest.importorskip("prometheus_client", reason="prometheus-client (optional extra) is not installed")

TS = 1_700_000_000_000_000_000
FLOW = Flow("TCP", "10.0.1.2", 5201, "10.0.0.1", 40000)
ICMP = Flow("ICMP", "192.168.7.9", 3, "10.0.0.1", 3)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


def metric(text, line_start):
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{line_start} not in the scrape")


def test_scrape_histograms_counters_and_losses():
    from xnf.plugins.pping.prometheus import PrometheusExporter

    port = free_port()
    exp = PrometheusExporter(f"127.0.0.1:{port}", PpingConfig()).start()
    try:
        exp.observe(FlowEvent(TS, FLOW, "opening", "first observed packet", "dest"))
        for rtt in (3_000_000, 7_000_000, 20_000_000):
            exp.observe(RttEvent(TS, FLOW, rtt, 3_000_000, 1, 1, 1, 1, False, "tsval"))
        exp.observe(RttEvent(TS, ICMP, 400_000, 400_000, 1, 1, 1, 1, False, "icmp"))
        bins = [0] * 250
        bins[2] = 4
        exp.observe(AggregateReport(TS, "10.9.0.0/24", 5, 500, 6, 600, bins, 4_000_000))
        exp.update_stats(Stats(dropped_events=2, timestamp_map_full=1))
        exp.update_stats(Stats(dropped_events=5, timestamp_map_full=1, flow_map_full=3))
        text = scrape(port)
    finally:
        exp.close()
    assert metric(text, 'pping_rtt_seconds_count{prefix="10.0.1.0/24",protocol="TCP"}') == 3
    assert metric(text, 'pping_rtt_seconds_bucket{le="0.005",prefix="10.0.1.0/24",protocol="TCP"}') == 1
    assert metric(text, 'pping_rtt_seconds_sum{prefix="10.0.1.0/24",protocol="TCP"}') == pytest.approx(0.030)
    assert metric(text, 'pping_rtt_seconds_count{prefix="192.168.7.0/24",protocol="ICMP"}') == 1
    assert metric(text, 'pping_rtt_seconds_count{prefix="10.9.0.0/24",protocol="all"}') == 4
    assert metric(text, 'pping_rtt_events_total{protocol="TCP"}') == 3
    assert metric(text, 'pping_flow_events_total{event="opening",protocol="TCP",reason="first observed packet"}') == 1
    assert metric(text, 'pping_open_flows{protocol="TCP"}') == 1
    assert metric(text, 'pping_prefix_packets_total{direction="tx",prefix="10.9.0.0/24"}') == 6
    assert metric(text, "pping_dropped_events_total") == 5
    assert metric(text, 'pping_map_full_total{map="flow"}') == 3
    assert metric(text, 'pping_map_full_total{map="timestamp"}') == 1


def test_known_series_exist_at_zero_before_the_first_event():
    # Regression (found by a real Prometheus, tests/kernel/pping/test_pping_prometheus_real.py):
    # a counter series first scraped at 5 loses those 5 in rate()/increase(); so every series
    # whose labels the options determine is served at 0 from the start.
    from xnf.plugins.pping.prometheus import PrometheusExporter

    port = free_port()
    exp = PrometheusExporter(f"127.0.0.1:{port}", PpingConfig(icmp=True)).start()
    try:
        text = scrape(port)
    finally:
        exp.close()
    for proto in ("ICMP", "ICMPv6"):
        assert metric(text, f'pping_rtt_events_total{{protocol="{proto}"}}') == 0
        assert metric(text, f'pping_open_flows{{protocol="{proto}"}}') == 0
        assert metric(text, f'pping_flow_events_total{{event="opening",protocol="{proto}",'
                            'reason="first observed packet"}') == 0
        assert metric(text, f'pping_flow_events_total{{event="closing",protocol="{proto}",'
                            'reason="flow timeout"}') == 0
    assert 'protocol="TCP"' not in text  # not tracked with --icmp alone
    assert 'reason="SYN"' not in text  # no ICMP flow opens on a SYN
    for m in ("timestamp", "flow", "aggregate"):
        assert metric(text, f'pping_map_full_total{{map="{m}"}}') == 0
    assert metric(text, "pping_dropped_events_total") == 0


def test_no_created_samples_in_either_format():
    # Regression (real Prometheus 2.42): every *_created sample became a series of its own.
    from xnf.plugins.pping.prometheus import PrometheusExporter

    port = free_port()
    exp = PrometheusExporter(f"127.0.0.1:{port}", PpingConfig(icmp=True)).start()
    try:
        exp.observe(RttEvent(TS, ICMP, 400_000, 400_000, 1, 1, 1, 1, False, "icmp"))
        text = scrape(port)
        req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",  # what Prometheus asks for first
                                     headers={"Accept": "application/openmetrics-text;version=1.0.0"})
        with urllib.request.urlopen(req, timeout=5) as r:
            om = r.read().decode()
            om_type = r.headers["Content-Type"]
    finally:
        exp.close()
    assert om_type.startswith("application/openmetrics-text") and om.endswith("# EOF\n")
    for body in (text, om):
        assert "_created" not in body
        assert 'pping_rtt_events_total{protocol="ICMP"} 1.0' in body
        assert 'pping_rtt_seconds_count{prefix="192.168.7.0/24",protocol="ICMP"} 1.0' in body


def test_tcp_series_and_aggregate_mode_series():
    from xnf.plugins.pping.prometheus import PrometheusExporter

    port = free_port()
    exp = PrometheusExporter(f"127.0.0.1:{port}", PpingConfig()).start()
    try:
        text = scrape(port)
    finally:
        exp.close()
    for reason in ("SYN", "SYN-ACK", "first observed packet"):
        assert metric(text, f'pping_flow_events_total{{event="opening",protocol="TCP",reason="{reason}"}}') == 0
    for reason in ("FIN", "RST", "flow timeout"):
        assert metric(text, f'pping_flow_events_total{{event="closing",protocol="TCP",reason="{reason}"}}') == 0
    # --aggregate reports per prefix only: no event series to pre-create
    port = free_port()
    exp = PrometheusExporter(f"127.0.0.1:{port}", PpingConfig(aggregate=1)).start()
    try:
        text = scrape(port)
    finally:
        exp.close()
    assert "pping_rtt_events_total{" not in text and "pping_flow_events_total{" not in text


def test_report_without_rtts_makes_no_histogram_series():
    # Regression (real Prometheus): a prefix that only carried packets (ICMPv6 neighbour
    # discovery in the catch-all ::/0) got 19 histogram series of zeros.
    from xnf.plugins.pping.prometheus import PrometheusExporter

    port = free_port()
    exp = PrometheusExporter(f"127.0.0.1:{port}", PpingConfig(aggregate=1)).start()
    try:
        exp.observe(AggregateReport(TS, "::/0", 8, 640, 8, 640, [], 4_000_000))
        exp.observe(AggregateReport(TS, "10.9.0.0/24", 5, 500, 6, 600, [0, 0, 0], 4_000_000))
        text = scrape(port)
    finally:
        exp.close()
    assert metric(text, 'pping_prefix_packets_total{direction="rx",prefix="::/0"}') == 8
    assert "pping_rtt_seconds_count{" not in text


def test_address_in_use_is_a_typed_error():
    from xnf.plugins.pping.prometheus import PrometheusError, PrometheusExporter

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(PrometheusError, match="cannot listen"):
            PrometheusExporter(f"127.0.0.1:{s.getsockname()[1]}").start()


def test_missing_extra_names_the_install_command():
    # a child interpreter where the package cannot be imported (sys.modules entry None)
    code = ("import sys; sys.modules['prometheus_client'] = None\n"
            "from xnf.plugins.pping.prometheus import PrometheusExporter, PrometheusError\n"
            "try:\n    PrometheusExporter('127.0.0.1:9')\n"
            "except PrometheusError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install xnf[prometheus]" in out


def test_plot_png(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib (optional extra) is not installed")
    results = tmp_path / "r.json"
    objs = []
    for i in range(50):
        for f in range(12):
            objs.append({"timestamp": TS + i * 10**8, "src_ip": "10.0.1.2", "src_port": 5201,
                         "dest_ip": "10.0.0.1", "dest_port": 40000 + f, "protocol": "TCP",
                         "rtt": (5 + f + i % 7) * 10**6, "min_rtt": 5 * 10**6, "sent_packets": 1,
                         "sent_bytes": 1, "rec_packets": 1, "rec_bytes": 1, "match_on_egress": False})
    # an array cut before its closing bracket (pping still running) is still read
    results.write_text("[\n" + ",\n".join(json.dumps(o) for o in objs))
    out = tmp_path / "p.png"
    assert plot(results, out) == {"samples": 600, "flows": 12}
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000


def test_plot_nothing_to_plot(tmp_path):
    results = tmp_path / "r.jsonl"
    results.write_text('{"timestamp": 1, "src_ip": "1.1.1.1", "src_port": 1, "dest_ip": "2.2.2.2", '
                       '"dest_port": 2, "protocol": "TCP", "flow_event": "opening", "reason": "SYN", '
                       '"triggered_by": "dest"}\n')
    with pytest.raises(PlotError, match="no RTT samples"):
        plot(results, tmp_path / "p.png")
    with pytest.raises(PlotError, match="cannot read results"):
        plot(tmp_path / "missing.json", tmp_path / "p.png")


def test_output_writes_and_feeds_prometheus(tmp_path):
    from xnf.plugins.pping.writer import Output

    port = free_port()
    path = tmp_path / "o.jsonl"
    cfg = PpingConfig(format="jsonl", write=str(path), prometheus=f"127.0.0.1:{port}")
    with Output(cfg) as out:
        out.emit([RttEvent(TS, FLOW, 3_000_000, 3_000_000, 1, 1, 1, 1, False, "tsval")])
        out.update_stats(Stats(dropped_events=4))
        text = scrape(port)
    assert metric(text, 'pping_rtt_events_total{protocol="TCP"}') == 1
    assert metric(text, "pping_dropped_events_total") == 4
    assert json.loads(path.read_text())["rtt"] == 3_000_000
    with pytest.raises(OSError):
        scrape(port)  # the exporter stopped with the output
