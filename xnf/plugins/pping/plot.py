"""``xnf pping plot RESULTS -o FILE.png``: RTT over time per flow, and the distribution.

Reads pping's ``json`` or ``jsonl`` output. With per-event results the top panel draws
every flow's RTT samples against time (the busiest flows get their own colour and
legend entry, the rest are grey) and the bottom panel the RTT histogram with its CDF;
with ``--aggregate`` results it draws each prefix's median and p95 per interval and
the summed histogram. matplotlib is an optional extra, imported only here, without
pyplot (no global state, no display needed).
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict

from xnf.core.errors import XnfError
from xnf.plugins.pping import aggregate
from xnf.plugins.pping.events import AggregateReport

NS_PER_MS = 1e6
NS_PER_S = 1e9


class PlotError(XnfError, RuntimeError):
    """The results cannot be plotted (missing extra, unreadable file, nothing to plot)."""


def read_results(path) -> list:
    """The objects of a ``json`` array or ``jsonl`` file."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise PlotError(f"{path}: cannot read results: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PlotError(f"{path}: not pping json output (binary data at byte {exc.start}); "
                        "plot reads --format json or jsonl output") from None
    stripped = text.lstrip()
    if stripped.startswith("["):
        # an array still being written (or cut by a crash) lacks its closing bracket
        for candidate in (stripped, stripped.rstrip().rstrip(",") + "]"):
            try:
                return _loads(candidate)
            except json.JSONDecodeError as exc:
                error = exc
        raise PlotError(f"{path}: not pping json output: {error.msg} at line {error.lineno}") from None
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(_loads(line))
        except json.JSONDecodeError:
            raise PlotError(f"{path}: line {n} is not json; plot reads --format json or jsonl output") from None
    return out


def _loads(text):
    try:
        return json.loads(text)
    except RecursionError:  # json nested deeper than the interpreter's stack: not pping's
        raise json.JSONDecodeError("nested too deeply", text, 0) from None


_NUMBER = (int, float)
_RTT_FIELDS = {"timestamp": _NUMBER, "rtt": _NUMBER, "protocol": str, "src_ip": str, "src_port": int,
               "dest_ip": str, "dest_port": int}
_REPORT_FIELDS = {"timestamp": _NUMBER, "ip_prefix": str}
_HISTOGRAM_FIELDS = {"bin_width_ns": _NUMBER, "median_rtt": _NUMBER, "p95_rtt": _NUMBER, "histogram": list}


def _checked(path, index, d, fields):
    """``d`` when it has ``fields`` with the right types (json numbers, finite), else a PlotError."""
    for name, kind in fields.items():
        v = d.get(name)
        if not isinstance(v, kind) or isinstance(v, bool) or (isinstance(v, float) and not math.isfinite(v)):
            raise PlotError(f"{path}: record {index} is not a pping result: field {name!r} is {v!r}")
    return d


def _results(path, objs):
    """The RTT samples and the aggregated reports among ``objs``, checked field by field."""
    rtts, reports = [], []
    for i, d in enumerate(objs, 1):
        if not isinstance(d, dict):
            continue
        if "rtt" in d:
            rtts.append(_checked(path, i, d, _RTT_FIELDS))
        elif "ip_prefix" in d:
            reports.append(_checked(path, i, d, _REPORT_FIELDS))
            if "histogram" in d:
                _checked(path, i, d, _HISTOGRAM_FIELDS)
                if d["bin_width_ns"] <= 0 or not all(type(n) is int and n >= 0 for n in d["histogram"]):
                    raise PlotError(f"{path}: record {i} is not a pping result: bad histogram")
    return rtts, reports


def _figure():
    try:
        # matplotlib (optional extra): only for plots
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotError("plotting needs matplotlib, which is not installed: pip install xnf[plot]") from None
    fig = Figure(figsize=(11, 8), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _flow_name(d):
    return f"{d['protocol']} {d['src_ip']}:{d['src_port']}+{d['dest_ip']}:{d['dest_port']}"


def plot(results, output, max_flows: int = 10) -> dict:
    """Draw ``results`` (a path) into ``output`` (PNG, SVG or PDF by extension).

    Returns what was drawn: ``{"samples": n, "flows": n}`` or ``{"reports": n, "prefixes": n}``.
    """
    rtts, reports = _results(results, read_results(results))
    if rtts:
        fig, drawn = _figure(), {"samples": len(rtts)}
        drawn["flows"] = _plot_samples(fig, rtts, max_flows, os.path.basename(str(results)))
    elif reports:
        fig, drawn = _figure(), {"reports": len(reports)}
        drawn["prefixes"] = _plot_reports(fig, reports, max_flows, os.path.basename(str(results)))
    else:
        raise PlotError(f"{results}: no RTT samples or aggregated reports to plot")
    try:
        fig.savefig(output)
    except (OSError, ValueError) as exc:
        raise PlotError(f"{output}: cannot write the plot: {exc}") from None
    return drawn


def _plot_samples(fig, rtts, max_flows, title):
    t0 = min(d["timestamp"] for d in rtts)
    by_flow = defaultdict(list)
    for d in rtts:
        by_flow[_flow_name(d)].append(((d["timestamp"] - t0) / NS_PER_S, d["rtt"] / NS_PER_MS))
    ranked = sorted(by_flow, key=lambda k: -len(by_flow[k]))
    top, rest = ranked[:max_flows], ranked[max_flows:]
    ax, hx = fig.subplots(2, 1, height_ratios=[3, 2])
    for name in rest:
        xs, ys = zip(*by_flow[name])
        ax.plot(xs, ys, ".", color="0.75", markersize=3)
    for name in top:
        pts = sorted(by_flow[name])
        xs, ys = zip(*pts)
        ax.plot(xs, ys, ".-", linewidth=0.8, markersize=3, label=f"{name} ({len(pts)})")
    if rest:
        ax.plot([], [], ".", color="0.75", label=f"{len(rest)} other flows")
    ax.set_title(f"pping RTTs: {title}")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("RTT (ms)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", loc="upper left")
    values = sorted(d["rtt"] / NS_PER_MS for d in rtts)
    hx.hist(values, bins=min(100, max(10, len(values) // 20)), color="tab:blue", alpha=0.7)
    hx.set_xlabel("RTT (ms)")
    hx.set_ylabel("samples")
    hx.grid(True, alpha=0.3)
    cdf = hx.twinx()
    cdf.plot(values, [(i + 1) / len(values) for i in range(len(values))], color="tab:red")
    cdf.set_ylabel("CDF")
    cdf.set_ylim(0, 1.02)
    n = len(values)
    hx.set_title(f"{n} samples: min {values[0]:.3f} ms, median {values[n // 2]:.3f} ms, "
                 f"p95 {values[min(n - 1, int(n * 0.95))]:.3f} ms, max {values[-1]:.3f} ms")
    return len(by_flow)


def _plot_reports(fig, reports, max_prefixes, title):
    t0 = min(d["timestamp"] for d in reports)
    series = defaultdict(list)
    total = []
    width = None
    for d in reports:
        if "histogram" not in d:
            continue
        width = d["bin_width_ns"]
        series[d["ip_prefix"]].append(((d["timestamp"] - t0) / NS_PER_S, d["median_rtt"] / NS_PER_MS,
                                       d["p95_rtt"] / NS_PER_MS))
        total = [a + b for a, b in zip(total + [0] * (len(d["histogram"]) - len(total)),
                                       d["histogram"] + [0] * (len(total) - len(d["histogram"])))]
    if width is None:
        raise PlotError(f"{title}: the aggregated reports hold no RTT samples")
    ax, hx = fig.subplots(2, 1, height_ratios=[3, 2])
    for prefix in sorted(series, key=lambda k: -len(series[k]))[:max_prefixes]:
        xs, med, p95 = zip(*series[prefix])
        line, = ax.plot(xs, med, ".-", label=f"{prefix} median")
        ax.plot(xs, p95, ":", color=line.get_color(), label=f"{prefix} p95")
    ax.set_title(f"pping aggregated RTTs: {title}")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("RTT (ms)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", loc="upper left")
    w = width / NS_PER_MS
    hx.bar([(i + 0.5) * w for i in range(len(total))], total, width=w, color="tab:blue", alpha=0.7)
    summary = aggregate.summarize(AggregateReport(0, "all", 0, 0, 0, 0, total, width))
    hx.set_title(f"{summary.count} samples: median {summary.median_ns / NS_PER_MS:.1f} ms, "
                 f"p95 {summary.p95_ns / NS_PER_MS:.1f} ms ({w:g} ms bins)")
    hx.set_xlabel("RTT (ms)")
    hx.set_ylabel("samples")
    hx.grid(True, alpha=0.3)
    return len(series)
