#!/usr/bin/env python3
"""tcpstates through xnf: every TCP state change, as libbpf-tools' tcpstates prints it.

The BPF side is the tool's own object (tracepoint sock/inet_sock_set_state); xnf loads it,
attaches it and reads its perf buffer. Its ``struct event`` (tcpstates.h) is not in the
object's BTF, so it is unpacked with ``struct`` field by field.

    sudo examples/tcpstates.py [-4|-6] [-L PORTS] [-D PORTS] [--object PATH]
"""
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import xnf  # noqa: E402

from libbpf_tool import arguments, stop_on_signals, stream_events, tool_object  # noqa: E402

# struct event { u128 saddr, daddr; u64 skaddr, ts_us, delta_us; u32 pid; int oldstate, newstate;
#                u16 family, sport, dport; char task[16]; }
EVENT = struct.Struct("<16s16sQQQIiiHHH16s")
TCP_STATES = ["", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE",
              "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV", "UNKNOWN"]


def address(family, raw):
    return socket.inet_ntop(family, raw[:4] if family == socket.AF_INET else raw)


def state(n):
    return TCP_STATES[n] if 0 <= n < len(TCP_STATES) else "UNKNOWN"


def ports(text):
    return [int(p) for p in text.split(",")]


def main(argv=None):
    parser = arguments("Trace TCP state changes")
    family = parser.add_mutually_exclusive_group()
    family.add_argument("-4", "--ipv4", action="store_const", dest="family", const=socket.AF_INET)
    family.add_argument("-6", "--ipv6", action="store_const", dest="family", const=socket.AF_INET6)
    parser.add_argument("-L", "--sport", type=ports, help="local ports to trace (comma separated)")
    parser.add_argument("-D", "--dport", type=ports, help="remote ports to trace (comma separated)")
    args = parser.parse_args(argv)

    spec = tool_object("tcpstates", args.object)
    spec.rodata["filter_by_sport"] = bool(args.sport)
    spec.rodata["filter_by_dport"] = bool(args.dport)
    spec.rodata["target_family"] = args.family or 0

    def print_event(_cpu, data):
        (saddr, daddr, skaddr, _ts, delta_us, pid, old, new, fam, sport, dport,
         task) = EVENT.unpack_from(data)
        comm = task.split(b"\0")[0].decode(errors="replace")[:10]
        print(f"{skaddr:<16x} {pid:<7} {comm:<10} {address(fam, saddr):<15} {sport:<5} "
              f"{address(fam, daddr):<15} {dport:<5} {state(old):<11} -> {state(new):<11} "
              f"{delta_us / 1000:.3f}", flush=True)

    stop = stop_on_signals()
    with xnf.load(spec) as coll:
        for map_name, chosen in (("sports", args.sport), ("dports", args.dport)):
            for port in chosen or ():
                coll.maps[map_name][port] = port
        header = (f"{'SKADDR':<16} {'PID':<7} {'COMM':<10} {'LADDR':<15} {'LPORT':<5} {'RADDR':<15} "
                  f"{'RPORT':<5} {'OLDSTATE':<11} -> {'NEWSTATE':<11} MS")
        stream_events(coll, stop, header, print_event, page_count=16)
    return 0


if __name__ == "__main__":
    sys.exit(main())
