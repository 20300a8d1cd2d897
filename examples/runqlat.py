#!/usr/bin/env python3
"""runqlat through xnf: run-queue (scheduler) latency as a log2 histogram, as libbpf-tools'
runqlat prints it.

The BPF side is the tool's own object: sched_wakeup, sched_wakeup_new and sched_switch
as ``tp_btf`` programs (``raw_tp`` where the kernel has no BTF tracepoints, as the tool
chooses). The histograms are a hash map of ``struct hist`` read from Python through the
object's BTF when the interval ends or on Ctrl-C.

    sudo examples/runqlat.py [-m] [-p PID] [-P|-L] [interval [count]] [--object PATH]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import xnf  # noqa: E402
from xnf.core.errors import XnfError  # noqa: E402

from libbpf_tool import arguments, attach_all, log2_hist_lines, stop_on_signals, tool_object  # noqa: E402

TP_BTF = ["sched_wakeup", "sched_wakeup_new", "sched_switch"]
RAW_TP = ["handle_sched_wakeup", "handle_sched_wakeup_new", "handle_sched_switch"]


def main(argv=None):
    parser = arguments("Summarize run queue (scheduler) latency as a histogram")
    parser.add_argument("-m", "--milliseconds", action="store_true", help="millisecond histogram")
    parser.add_argument("-p", "--pid", type=int, default=0, help="trace this PID only")
    per = parser.add_mutually_exclusive_group()
    per.add_argument("-P", "--pids", action="store_true", help="print a histogram per process ID")
    per.add_argument("-L", "--tids", action="store_true", help="print a histogram per thread ID")
    parser.add_argument("interval", nargs="?", type=float, default=99999999)
    parser.add_argument("count", nargs="?", type=int, default=99999999)
    args = parser.parse_args(argv)

    spec = tool_object("runqlat", args.object)
    spec.rodata["targ_per_process"] = args.pids
    spec.rodata["targ_per_thread"] = args.tids
    spec.rodata["targ_ms"] = args.milliseconds
    spec.rodata["targ_tgid"] = args.pid
    unit = "msecs" if args.milliseconds else "usecs"

    try:
        coll = xnf.load(spec, programs=TP_BTF)
    except XnfError:
        coll = xnf.load(spec, programs=RAW_TP)  # no BTF tracepoints: the tool's fallback too
    stop = stop_on_signals()
    with coll:
        links = attach_all(coll)
        print("Tracing run queue latency... Hit Ctrl-C to end.", flush=True)
        hists = coll.maps["hists"]
        for _ in range(args.count):
            stop.wait(args.interval)
            print()
            for key, hist in hists.items():
                comm = hist.comm.split(b"\0")[0].decode(errors="replace")
                if args.pids:
                    print(f"\npid = {key} {comm}")
                elif args.tids:
                    print(f"\ntid = {key} {comm}")
                print("\n".join(log2_hist_lines(hist.slots, unit)))
            hists.clear()
            sys.stdout.flush()
            if stop.is_set():
                break
        for link in links:
            link.detach()
    return 0


if __name__ == "__main__":
    sys.exit(main())
