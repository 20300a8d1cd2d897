"""What the examples share: the BPF object of a Debian libbpf-tools binary, its programs
attached as the tool's skeleton would attach them, and the tool's log2 histogram.

A libbpf-tools binary carries its object as a skeleton (a byte array inside the
executable). ``tool_object`` cuts it out with ``tools/extract-bpf-objects`` at run time,
so the examples ship no object they did not build; ``--object PATH`` gives one instead.
"""
import argparse
import importlib.machinery
import importlib.util
import os
import shutil
import signal
import tempfile
import threading

import xnf
from xnf.core.attach import links

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL_DIRS = "/usr/sbin:/usr/bin:/sbin"


def _extractor():
    path = os.path.join(REPO, "tools", "extract-bpf-objects")
    loader = importlib.machinery.SourceFileLoader("extract_bpf_objects", path)
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    return module


def tool_object(tool, path=None):
    """The parsed spec of ``tool``'s BPF object: ``path`` if given, else the one embedded
    in the libbpf-tools binary ``tool`` (``apt-get install libbpf-tools``)."""
    if path:
        return xnf.open_object(path)
    binary = shutil.which(tool, path=TOOL_DIRS)
    if binary is None:
        raise SystemExit(f"{tool}: no {tool} binary in {TOOL_DIRS} to take the BPF object from "
                         f"(apt-get install libbpf-tools, or give --object PATH)")
    with tempfile.TemporaryDirectory(prefix="xnf-example-") as tmp:
        written = _extractor().extract(tmp, [binary])
        if not written:
            raise SystemExit(f"{tool}: {binary} carries no BPF object")
        return xnf.open_object(written[0])


def arguments(description):
    """An argument parser with the options every example has."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--object", metavar="PATH",
                        help="the tool's BPF object (default: extracted from the libbpf-tools binary)")
    return parser


def attach_all(coll):
    """Attach every loaded program by its section, as the skeleton's ``__attach()`` does."""
    return [links.attach_auto(prog) for prog in coll.programs.values()]


def stop_on_signals():
    """A ``threading.Event`` set by SIGINT or SIGTERM (the tools stop on Ctrl-C)."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def stream_events(coll, stop, header, callback, page_count=64, lost_callback=None):
    """Attach every program, print ``header``, hand each record of the ``events`` perf
    buffer to ``callback`` until ``stop`` (from :func:`stop_on_signals`, set up before the
    load) is set, read what arrived meanwhile, detach."""
    # lazy: a histogram tool never needs the perf buffer
    from xnf.core.kernel.perfbuf import PerfBuffer

    attached = attach_all(coll)
    with PerfBuffer(coll.maps["events"], page_count=page_count, callback=callback,
                    lost_callback=lost_callback) as pb:
        print(header, flush=True)
        while not stop.is_set():
            pb.poll(100)
        pb.consume()  # what arrived meanwhile
    for link in attached:
        link.detach()


def log2_hist_lines(slots, unit):
    """The lines of libbpf-tools' ``print_log2_hist`` (trace_helpers.c), character for character."""
    idx_max = max((i for i, v in enumerate(slots) if v), default=-1)
    if idx_max < 0:
        return []
    val_max = max(slots)
    narrow = idx_max <= 32
    stars, width = (40, 10) if narrow else (20, 20)
    lines = [f"{'':{5 if narrow else 15}}{unit:<{19 if narrow else 29}} : count    distribution"]
    for i in range(idx_max + 1):
        low, high = (1 << (i + 1)) >> 1, (1 << (i + 1)) - 1
        if low == high:
            low -= 1
        val = slots[i]
        n = min(val, val_max) * stars // val_max
        bar = "*" * n + " " * (stars - n) + ("+" if val > val_max else "")
        lines.append(f"{low:>{width}} -> {high:<{width}} : {val:<8} |{bar}|")
    return lines
