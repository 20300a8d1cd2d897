#!/usr/bin/env python3
"""opensnoop through xnf: every open(2)/openat(2), as libbpf-tools' opensnoop prints it.

The BPF side is the tool's own object (tracepoints syscalls/sys_{enter,exit}_open{,at});
xnf loads it, attaches it and reads its perf buffer. Its ``struct event`` is not in the
object's BTF, so it is unpacked with ``struct`` as libbpf-tools 0.26's opensnoop.h lays it out.

    sudo examples/opensnoop.py [-x] [-p PID] [-t TID] [-u UID] [-n NAME] [--object PATH]
"""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import xnf  # noqa: E402

from libbpf_tool import arguments, stop_on_signals, stream_events, tool_object  # noqa: E402

# struct event { u64 ts; pid_t pid; uid_t uid; int ret; int flags; u64 callers[2];
#                char comm[16]; char fname[255]; }
EVENT = struct.Struct("<QIIii16x16s255s")
INVALID_UID = 0xFFFFFFFF


def main(argv=None):
    parser = arguments("Trace open family syscalls")
    parser.add_argument("-x", "--failed", action="store_true", help="failed opens only")
    parser.add_argument("-p", "--pid", type=int, default=0, help="process ID to trace")
    parser.add_argument("-t", "--tid", type=int, default=0, help="thread ID to trace")
    parser.add_argument("-u", "--uid", type=int, default=INVALID_UID, help="user ID to trace")
    parser.add_argument("-n", "--name", help="trace process names containing this")
    args = parser.parse_args(argv)

    spec = tool_object("opensnoop", args.object)
    spec.rodata["targ_tgid"] = args.pid
    spec.rodata["targ_pid"] = args.tid
    spec.rodata["targ_uid"] = args.uid          # (uid_t)-1: every user, as the tool's default
    spec.rodata["targ_failed"] = args.failed

    def print_event(_cpu, data):
        _ts, pid, _uid, ret, _flags, comm, fname = EVENT.unpack_from(data)
        comm = comm.split(b"\0")[0].decode(errors="replace")
        if args.name and args.name not in comm:
            return
        fd, err = (-1, -ret) if ret < 0 else (ret, 0)
        path = fname.split(b"\0")[0].decode(errors="replace")
        print(f"{pid:<6} {comm:<16} {fd:>3} {err:>3} {path}", flush=True)

    def lost(cpu, count):
        print(f"Lost {count} events on CPU #{cpu}!", flush=True)

    stop = stop_on_signals()
    with xnf.load(spec) as coll:
        stream_events(coll, stop, f"{'PID':<6} {'COMM':<16} {'FD':>3} {'ERR':>3} PATH", print_event,
                      lost_callback=lost)
    return 0


if __name__ == "__main__":
    sys.exit(main())
