"""A real Prometheus server scrapes `xnf run pping ... --prometheus` and gives back what
pping reported.

Debian's ``prometheus`` (tools/install) runs on a loopback port with a config
written here (the job of docs/examples/prometheus.yml, 1 s interval, our targets) and
a TSDB in a temporary directory. Two pping processes run on the middlebox of the
three-namespace topology: one per event on ``mid1`` (jsonl on stdout), one with
``--aggregate 1`` on ``mid0``. Both ``xnf run`` and Prometheus run in a namespace of
this test's own (``--netns`` only says where the interface is), so the exporters and
Prometheus listen on fixed ports of its 127.0.0.1, which no other process can take (a
port picked free in the initial namespace, released, then bound, could be). Ping and an
iperf3 TCP flow through a TBF bottleneck.

What is compared, exactly, once Prometheus has caught up with the stream (values are
scraped counters, nothing statistical): RTT and flow-event counters per label set
against the records pping printed; every bucket, the count and the sum of the RTT
histogram against the printed RTTs; ``histogram_quantile(0.5, ...)`` against the same
interpolation done here on the printed RTTs; the aggregated instance's prefix
counters and histogram counts against its reports. The stored metric names are
exactly the documented ones (no ``*_created`` series). Then every query of
docs/examples/grafana-pping.json (and its template variables) runs against this
Prometheus and must parse and return data.

No timing bound decides the outcome: each comparison is between two views of the same
events, and the waits allow 20-60 s for what takes 1-2 s (the one bound on a rate,
increase(), is derived beside it). Run time 20-27 s.
"""
import bisect
import collections
import ipaddress
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from pping_topology import Topology, sh
from xnf.core.kernel import netns
from xnf.plugins.pping.prometheus import RTT_BUCKETS
from xnf.testing import traffic

PROMETHEUS = shutil.which("prometheus")
pytestmark = [pytest.mark.root, pytest.mark.slow,
              pytest.mark.skipif(PROMETHEUS is None, reason="the prometheus server binary is not installed "
                                 "(Debian package prometheus, which tools/install installs)")]

XNF = [sys.executable, "-m", "xnf.cli.main"]
EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples"
TBF = ("rate", "10mbit", "burst", "16kb", "latency", "100ms")  # bottleneck on mid1: iperf3 at 20M queues
# Grafana's $__rate_interval is max(4 x scrape interval, $__interval + scrape interval);
# the test uses a fixed window that holds the whole run instead (its traffic lasts ~8 s).
RATE_INTERVAL = "1m"
# "All" in the dashboard's instance and protocol variables sends their allValue
ALL_VALUE = ".*"



class Stream:
    """The jsonl records a running `xnf run pping` prints, read on a thread as they come."""

    def __init__(self, proc):
        self.proc = proc
        self.records = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            if line.strip():
                rec = json.loads(line)
                with self.lock:
                    self.records.append(rec)

    def snapshot(self):
        with self.lock:
            return list(self.records)


class PromAPI:
    def __init__(self, ns, port):
        self.ns = ns
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path, **params):
        url = f"{self.base}{path}?{urllib.parse.urlencode(params, doseq=True)}"
        with netns.entered(self.ns), urllib.request.urlopen(url, timeout=10) as r:
            body = json.loads(r.read())
        assert body["status"] == "success", (path, params, body)
        return body["data"]

    def query(self, expr):
        data = self.get("/api/v1/query", query=expr)
        assert data["resultType"] == "vector", (expr, data)
        return data["result"]

    def values(self, expr, *labels):
        """{tuple of label values: float} for an instant vector."""
        return {tuple(r["metric"].get(k, "") for k in labels): float(r["value"][1]) for r in self.query(expr)}


def wait_for(what, check, timeout, interval=0.25):
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if last is True:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}: {last}")
        time.sleep(interval)


def http_ok(ns, url):
    """True when ``url`` answers 200 in namespace ``ns``, else what went wrong (for wait_for's message)."""
    try:
        with netns.entered(ns), urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200 or f"HTTP {r.status}"
    except OSError as exc:
        return repr(exc)


def stop(proc):
    """Stop a process this test started (SIGTERM: xnf detaches and exits 0), killing it if stuck."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def nonzero(values):
    """Without the series the exporter serves at 0 before anything happened."""
    return {k: v for k, v in values.items() if v}


def prefix24(ip):
    return str(ipaddress.ip_network(f"{ip}/24", strict=False))


def bucket_quantile(q, bounds, cumulative):
    """Prometheus 2.x ``bucketQuantile`` (promql/quantile.go) on cumulative counts whose
    last bound is +Inf: linear interpolation inside the bucket holding rank q x total."""
    total = cumulative[-1]
    rank = q * total
    b = bisect.bisect_left(cumulative, rank)
    if b == len(bounds) - 1:
        return bounds[-2]
    start, count = 0.0, cumulative[b]
    if b > 0:
        start = bounds[b - 1]
        count -= cumulative[b - 1]
        rank -= cumulative[b - 1]
    return start + (bounds[b] - start) * (rank / count)


def scrape_config(targets):
    """The job of docs/examples/prometheus.yml with this test's interval and targets (JSON is
    YAML); the shipped file itself is checked with promtool."""
    return json.dumps({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "pping", "scrape_interval": "1s",
                            "static_configs": [{"targets": targets, "labels": {"iface": "mid"}}]}],
    })


def dashboard_queries(dashboard):
    """(panel title, expr) for every target of every panel, rows' nested panels included."""
    out = []
    for panel in dashboard["panels"]:
        for p in [panel, *panel.get("panels", [])]:
            for t in p.get("targets", []):
                out.append((p["title"], t["expr"]))
    return out


def substitute(expr):
    """Grafana's variables, as Grafana would send them with "All" selected."""
    out = (expr.replace("$__rate_interval", RATE_INTERVAL)
           .replace("$instance", ALL_VALUE).replace("$protocol", ALL_VALUE))
    assert "$" not in out, f"a Grafana variable this test does not know: {expr}"
    return out


@pytest.fixture
def topo():
    t = Topology(net=74)
    try:
        yield t.create()
    finally:
        t.destroy()


def test_real_prometheus_scrapes_pping(topo):
    promtool = shutil.which("promtool")
    if promtool:  # shipped with the server in Debian's package
        sh(promtool, "check", "config", str(EXAMPLES / "prometheus.yml"))
    dashboard = json.loads((EXAMPLES / "grafana-pping.json").read_text())

    # the kernel here has no netem; a TBF queue gives the TCP flow RTTs up to ~100 ms, ping's stay
    # at the veth's tens of microseconds: the histogram fills buckets from 0.1 ms to 0.25 s
    topo.ns(topo.mid, "tc", "qdisc", "add", "dev", "mid1", "root", "tbf", *TBF)
    tmp = tempfile.mkdtemp(prefix="xnf-prom-")
    procs = []
    try:
        own = topo.namespace("prom")  # removed with the topology
        ev_port, agg_port, prom_port = 9101, 9102, 9090  # fixed: nothing else listens in ``own``
        env = dict(os.environ, PYTHONUNBUFFERED="1")  # records reach the pipe as they are written
        # no flow times out while the test compares (the ping flow would after 30 s idle)
        lifetimes = ["--icmp-flow-lifetime", "600", "--unopened-flow-lifetime", "600"]
        ev = traffic.popen(own, XNF + ["run", "pping", "mid1", "--netns", topo.mid, "--tcp", "--icmp", "-F", "jsonl",
                                       *lifetimes, "--prometheus", f"127.0.0.1:{ev_port}"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        procs.append(ev)
        agg = traffic.popen(own, XNF + ["run", "pping", "mid0", "--netns", topo.mid, "--tcp", "--icmp", "-F", "jsonl",
                                        "--aggregate", "1", "--prometheus", f"127.0.0.1:{agg_port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        procs.append(agg)
        ev_stream, agg_stream = Stream(ev), Stream(agg)
        for port, proc in ((ev_port, ev), (agg_port, agg)):  # /metrics answers once pping is attached
            def exporter_up():
                if proc.poll() is not None:
                    return f"xnf exited: {proc.stderr.read()}"
                return http_ok(own, f"http://127.0.0.1:{port}/metrics")
            wait_for(f"the exporter on port {port}", exporter_up, 30)

        cfg = Path(tmp, "prometheus.yml")
        cfg.write_text(scrape_config([f"127.0.0.1:{ev_port}", f"127.0.0.1:{agg_port}"]))
        log = open(Path(tmp, "prometheus.log"), "w")
        prom = traffic.popen(own, [PROMETHEUS, f"--config.file={cfg}", f"--storage.tsdb.path={tmp}/data",
                                   f"--web.listen-address=127.0.0.1:{prom_port}"],
                             stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
        log.close()
        procs.append(prom)
        api = PromAPI(own, prom_port)

        def targets_up():
            if prom.poll() is not None:
                return "prometheus exited: " + Path(tmp, "prometheus.log").read_text()[-2000:]
            if http_ok(own, f"{api.base}/-/ready") is not True:
                return "not ready"
            active = api.get("/api/v1/targets")["activeTargets"]
            health = {t["scrapeUrl"]: (t["health"], t["lastError"]) for t in active}
            return (len(active) == 2 and all(h == "up" for h, _ in health.values())) or health
        wait_for("both targets up", targets_up, 60)
        ev_job = f'instance="127.0.0.1:{ev_port}"'
        agg_job = f'instance="127.0.0.1:{agg_port}"'
        # the exporter's known series are scraped at zero before any traffic, so rate() sees the start
        zeros = api.values(f"pping_rtt_events_total{{{ev_job}}}", "protocol")
        assert zeros == {("TCP",): 0.0, ("ICMP",): 0.0, ("ICMPv6",): 0.0}, zeros
        time.sleep(1.0)

        topo.spawn(topo.srv, "iperf3", "-s", "-1", "-B", topo.srv_ip, "-p", "5201")  # stopped by topo.destroy
        topo.wait_port(topo.srv, 5201)
        ping_out = topo.ns(topo.cli, "ping", "-c", "15", "-i", "0.2", "-q", topo.srv_ip, check=False)
        replies = int(ping_out.split(" received")[0].rsplit(",", 1)[1])
        topo.ns(topo.cli, "iperf3", "-c", topo.srv_ip, "-p", "5201", "-t", "3", "-b", "20M", timeout=30)

        # Prometheus catches up with what pping printed (a scrape a second)
        def expected_counters():
            recs = ev_stream.snapshot()
            rtt = collections.Counter(r["protocol"] for r in recs if "rtt" in r)
            flows = collections.Counter((r["protocol"], r["flow_event"], r["reason"])
                                        for r in recs if "flow_event" in r)
            return recs, rtt, flows

        def caught_up():
            _, rtt, flows = expected_counters()
            got_rtt = api.values(f"pping_rtt_events_total{{{ev_job}}}", "protocol")
            got_flows = api.values(f"pping_flow_events_total{{{ev_job}}}", "protocol", "event", "reason")
            want_rtt = {(p,): float(n) for p, n in rtt.items()}
            want_flows = {k: float(n) for k, n in flows.items()}
            return (nonzero(got_rtt) == want_rtt and nonzero(got_flows) == want_flows) or (got_rtt, want_rtt)
        time.sleep(1.0)
        wait_for("Prometheus to hold pping's counts", caught_up, 20)
        time.sleep(2.5)  # nothing more should come: the counts stay equal
        wait_for("Prometheus to hold pping's counts (settled)", caught_up, 20)
        recs, rtt_counts, flow_counts = expected_counters()

        # -- per-event instance: counters and histogram, exactly ---------------------------
        assert rtt_counts["ICMP"] == replies > 0, (rtt_counts, replies)  # echoes 0.2 s apart, rate limit 0.1 s
        assert rtt_counts["TCP"] > 0, rtt_counts
        rtts = [r for r in recs if "rtt" in r]
        want_buckets = collections.defaultdict(lambda: [0] * len(RTT_BUCKETS))
        want_sum, want_count = collections.defaultdict(float), collections.Counter()
        for r in rtts:
            key = (r["protocol"], prefix24(r["src_ip"]))
            seconds = r["rtt"] / 1e9  # as the exporter observes it
            for i, le in enumerate(RTT_BUCKETS):
                want_buckets[key][i] += seconds <= le
            want_sum[key] += seconds
            want_count[key] += 1
        got_buckets = api.values(f"pping_rtt_seconds_bucket{{{ev_job}}}", "protocol", "prefix", "le")
        for key, counts in want_buckets.items():
            for le, n in zip(RTT_BUCKETS, counts):
                assert got_buckets[(*key, str(le))] == n, (key, le)
            assert got_buckets[(*key, "+Inf")] == want_count[key], key
        assert {k[:2] for k in got_buckets} == set(want_buckets)
        got_count = api.values(f"pping_rtt_seconds_count{{{ev_job}}}", "protocol", "prefix")
        got_sum = api.values(f"pping_rtt_seconds_sum{{{ev_job}}}", "protocol", "prefix")
        assert got_count == {k: float(n) for k, n in want_count.items()}
        for key, s in want_sum.items():
            # float sums in a different order, then through Prometheus's text format (%g, 17 digits)
            assert math.isclose(got_sum[key], s, rel_tol=1e-9), key
        icmp_key = ("ICMP", prefix24(topo.srv_ip))
        assert icmp_key in want_count, want_count  # the pings' RTTs were measured to the server

        # histogram_quantile on the cumulative buckets = the same interpolation on the printed RTTs
        all_rtts = sorted(r["rtt"] / 1e9 for r in rtts)
        bounds = [*RTT_BUCKETS, math.inf]
        cumulative = [sum(1 for x in all_rtts if x <= le) for le in bounds]
        median = api.values(f"histogram_quantile(0.5, sum by (le) (pping_rtt_seconds_bucket{{{ev_job}}}))")[()]
        want_median = bucket_quantile(0.5, bounds, cumulative)
        assert math.isclose(median, want_median, rel_tol=1e-12), (median, want_median)
        true_median = all_rtts[(len(all_rtts) - 1) // 2]
        b = bisect.bisect_left(RTT_BUCKETS, true_median)
        assert (RTT_BUCKETS[b - 1] if b else 0) <= median <= RTT_BUCKETS[b], (median, true_median)

        # open flow directions: openings minus closings as printed
        open_want = collections.Counter()
        for (proto, event, _), n in flow_counts.items():
            open_want[proto] += n if event == "opening" else -n
        got_open = api.values(f"pping_open_flows{{{ev_job}}}", "protocol")
        for proto, n in open_want.items():
            assert got_open[(proto,)] == max(n, 0), (proto, got_open)
        assert api.values(f"pping_dropped_events_total{{{ev_job}}}") == {(): 0.0}
        assert set(api.values(f"pping_map_full_total{{{ev_job}}}", "map")) == {("timestamp",), ("flow",), ("aggregate",)}

        # increase() over the run sees every ping: the series was scraped at 0 before the first
        # (the window, 5 min, holds the whole life of the exporter)
        inc = api.values(f'increase(pping_rtt_events_total{{{ev_job}, protocol="ICMP"}}[5m])')[()]
        # increase() = (last - first) x (sampled range + extrapolation) / sampled range. Not below
        # `replies`: extrapolating backwards a counter that starts at 0 adds nothing. Above by at
        # most 1.1 scrape intervals (Prometheus extends to the window's end when the gap is under
        # 1.1 average intervals, else by half of one) over a sampled range of at least 8 s
        # (1 s before traffic, 3 s of ping, 3 s of iperf3, 1 s of waiting).
        assert replies - 1e-9 <= inc <= replies * (1 + 1.1 / 8), (inc, replies)

        # -- aggregated instance: prefix counters and RTT counts against its reports --------
        def agg_caught_up():
            reps = agg_stream.snapshot()
            pk, rc = collections.Counter(), collections.Counter()
            for r in reps:
                pk[(r["ip_prefix"], "rx")] += r["rx_packets"]
                pk[(r["ip_prefix"], "tx")] += r["tx_packets"]
                rc[(r["ip_prefix"],)] += r.get("count_rtt", 0)
            got_pk = api.values(f"pping_prefix_packets_total{{{agg_job}}}", "prefix", "direction")
            got_rc = api.values(f'pping_rtt_seconds_count{{{agg_job}, protocol="all"}}', "prefix")
            want_pk = {k: float(v) for k, v in pk.items()}
            want_rc = {k: float(v) for k, v in rc.items() if v}
            return (got_pk == want_pk and got_rc == want_rc and sum(rc.values()) > 0) or (got_pk, want_pk, got_rc, want_rc)
        wait_for("Prometheus to hold the aggregated reports", agg_caught_up, 20)
        # exactly the documented metrics, no *_created series beside them
        hist = {"pping_rtt_seconds_bucket", "pping_rtt_seconds_count", "pping_rtt_seconds_sum"}
        losses = {"pping_dropped_events_total", "pping_map_full_total"}
        for job, want in ((ev_job, hist | losses | {"pping_rtt_events_total", "pping_flow_events_total",
                                                    "pping_open_flows"}),
                          (agg_job, hist | losses | {"pping_prefix_packets_total", "pping_prefix_bytes_total"})):
            names = api.get("/api/v1/label/__name__/values", **{"match[]": f"{{{job}}}"})
            assert {n for n in names if n.startswith("pping_")} == want, (job, names)
        agg_prefixes = {k[0] for k in api.values(f"pping_prefix_packets_total{{{agg_job}}}", "prefix", "direction")}
        assert {prefix24(topo.cli_ip), prefix24(topo.srv_ip)} <= agg_prefixes

        # -- the dashboard: every query parses and returns data ----------------------------
        queries = dashboard_queries(dashboard)
        assert len(queries) >= 10
        for title, expr in queries:
            result = api.query(substitute(expr))
            assert result, f"panel {title!r}: no data for {substitute(expr)}"
            assert all(not math.isnan(float(r["value"][1])) or "histogram_quantile" in expr for r in result), (title, result)
        # template variables: Grafana's label_values(metric, label) is a series lookup
        for var in dashboard["templating"]["list"]:
            if var["type"] != "query":
                continue
            definition = var["definition"]
            assert definition.startswith("label_values(") and definition.endswith(")"), definition
            metric, label = (s.strip() for s in definition[len("label_values("):-1].split(","))
            values = set(api.get(f"/api/v1/label/{label}/values", **{"match[]": metric}))
            assert values, (var["name"], definition)
            if label == "instance":
                assert values == {f"127.0.0.1:{ev_port}", f"127.0.0.1:{agg_port}"}
            if label == "protocol":
                assert {"ICMP", "TCP", "all"} <= values
    finally:
        for p in reversed(procs):
            stop(p)
        for p in procs:
            for pipe in (p.stdout, p.stderr):
                if pipe is not None:
                    pipe.close()
        shutil.rmtree(tmp, ignore_errors=True)
    for p in procs[:2]:
        assert p.returncode == 0, p.args
    print(f"pping printed {dict(rtt_counts)} RTTs, flow events {dict(flow_counts)}; Prometheus: median "
          f"{median * 1e3:.3f} ms (printed RTTs' median {true_median * 1e3:.3f} ms), increase(ICMP) {inc:.3f}, "
          f"{len(queries)} dashboard queries with data")
