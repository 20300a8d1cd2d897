#!/usr/bin/env python3
"""execsnoop through xnf: every execve(2) on the machine, as libbpf-tools' execsnoop prints it.

The BPF side is the tool's own object (two tracepoints, syscalls/sys_{enter,exit}_execve);
xnf loads it, attaches it and reads its perf buffer; the events decode through the
``struct event`` the object's BTF describes.

    sudo examples/execsnoop.py [-x] [-u UID] [--object PATH]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import xnf  # noqa: E402
from xnf.core.object import btf as B  # noqa: E402
from xnf.core.object.codec import codec_for  # noqa: E402

from libbpf_tool import arguments, stop_on_signals, stream_events, tool_object  # noqa: E402


def main(argv=None):
    parser = arguments("Trace exec() syscalls")
    parser.add_argument("-x", "--fails", action="store_true", help="include failed exec()s")
    parser.add_argument("-u", "--uid", type=int, help="trace this UID only")
    parser.add_argument("--max-args", type=int, default=20, help="maximum number of arguments parsed")
    args = parser.parse_args(argv)

    spec = tool_object("execsnoop", args.object)
    spec.rodata["ignore_failed"] = not args.fails          # the tool's -x
    spec.rodata["max_args"] = args.max_args
    if args.uid is not None:
        spec.rodata["targ_uid"] = args.uid
    event = codec_for(spec.btf, spec.btf.find("event", B.KIND_STRUCT))

    def print_event(_cpu, data):
        # the program sends the fixed part and args_size bytes of arguments: pad to the struct
        e = event.decode(data[:event.size].ljust(event.size, b"\0"))
        argv_ = e.args[:e.args_size].split(b"\0")[:e.args_count]
        line = " ".join(a.decode(errors="replace") for a in argv_) + " "
        if e.args_count == args.max_args + 1:
            line += " ..."
        comm = e.comm.split(b"\0")[0].decode(errors="replace")
        print(f"{comm:<16} {e.pid:<6} {e.ppid:<6} {e.retval:>3} {line}", flush=True)

    stop = stop_on_signals()
    with xnf.load(spec) as coll:
        stream_events(coll, stop, f"{'PCOMM':<16} {'PID':<6} {'PPID':<6} {'RET':>3} ARGS", print_event)
    return 0


if __name__ == "__main__":
    sys.exit(main())
