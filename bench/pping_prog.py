#!/usr/bin/env python3
"""Per-packet cost of pping's BPF programs, beside an empty program of the same hook.

BPF_PROG_TEST_RUN runs each program on a representative frame ``repeat`` times and
reports the mean time per run; the baseline is bench/bpf/pping_empty.bpf.o (pass the
packet, nothing else), measured the same way in the same run, so the ratio says what
pping adds to a hook. A repeated frame exercises the common path: a TSval already
seen (most data packets: first instance only), a reply that matches nothing (most
ACKs). The rows marked "stored" and "matched" (with ``--rate-limit 0`` only, where every
new TSval is stored) change the identifier on every run (one run per syscall, medians) to
show the cost of a map insert and of a match; the benchmark counts the stores and matches
and fails if any run took another path.

Usage: python3 bench/pping_prog.py [--repeat N]   (root)
"""
import argparse
import os
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import xnf  # noqa: E402
from xnf.plugins.pping import datapath  # noqa: E402
from xnf.plugins.pping.config import PpingConfig  # noqa: E402
from xnf.testing.frames import dns, ether, icmp_echo, ipv4, ipv6, udp, v4_tcp, v6_tcp  # noqa: E402

A, B, A6, B6 = "10.1.0.1", "10.2.0.2", "2001:db8:1::1", "2001:db8:2::2"
DATA = b"x" * 1200


def frames():
    return [
        ("TCP data, TSval seen", "egress", v4_tcp(A, B, 1, 2, ts=(100, 5), payload=DATA)),
        ("TCP ACK, no match", "ingress", v4_tcp(B, A, 2, 1, ts=(9, 77))),
        ("TCP ACK, no match", "xdp", v4_tcp(B, A, 2, 1, ts=(9, 77))),
        ("TCP/IPv6 data, TSval seen", "egress", v6_tcp(A6, B6, 1, 2, ts=(100, 5), payload=DATA)),
        ("TCP in 2 VLAN tags", "egress", v4_tcp(A, B, 1, 2, ts=(100, 0), payload=DATA,
                                                vlans=[(0x88A8, 1), (0x8100, 2)])),
        ("ICMP echo request", "egress", ether(ipv4(A, B, 1, icmp_echo(True, 7, 1)), 0x0800)),
        ("DNS query", "egress", ether(ipv4(A, B, 17, udp(5353, 53, dns(1, False))), 0x0800)),
        ("UDP, not tracked", "egress", ether(ipv4(A, B, 17, udp(1, 2, DATA)), 0x0800)),
        ("IPv6 UDP, not tracked", "egress", ether(ipv6(A6, B6, 17, udp(1, 2, DATA)), 0x86DD)),
    ]


PROGS = {"egress": "pping_tc_egress", "ingress": "pping_tc_ingress", "xdp": "pping_xdp_ingress"}
EMPTY = {"egress": "empty_tc", "ingress": "empty_tc", "xdp": "empty_xdp"}


def per_packet(prog, frame, repeat):
    return prog.test_run(frame, repeat=repeat).duration_ns


def one_by_one(prog, make, n):
    """Median duration of single runs on frames that differ each time."""
    return statistics.median(prog.test_run(make(i)).duration_ns for i in range(n))


def single_runs(coll, empty, n=3000):
    """Medians of single runs that store a new TSval and that match one, checked by counting.

    Only meaningful without the rate limit: with it, all but the first of ``n`` new TSvals
    would take the rate-limited path and the rows would time that instead.
    """
    eg, ing = coll.programs["pping_tc_egress"], coll.programs["pping_tc_ingress"]
    before = len(coll.maps["pping_ts"])
    stored = one_by_one(eg, lambda i: v4_tcp(A, B, 1, 2, ts=(1000 + 2 * i, 0), payload=DATA), n)
    n_stored = len(coll.maps["pping_ts"]) - before
    rtts = counter(coll, "rtt_events")
    matched = one_by_one(ing, lambda i: v4_tcp(B, A, 2, 1, ts=(9, 1000 + 2 * i)), n)
    n_matched = counter(coll, "rtt_events") - rtts
    base = one_by_one(empty.programs["empty_tc"], lambda i: v4_tcp(A, B, 1, 2, ts=(i, 0)), n)
    print(f"{'TCP data, TSval stored':28} {'egress':8} {stored:9.0f} {base:9.0f} {stored / max(base, 1):6.1f}"
          f"  (single runs; {n_stored} of {n} stored)")
    print(f"{'TCP ACK, matched':28} {'ingress':8} {matched:9.0f} {base:9.0f} {matched / max(base, 1):6.1f}"
          f"  (single runs; {n_matched} of {n} matched)")
    if n_stored < n or n_matched < n:
        raise SystemExit(f"the stored/matched rows did not store and match every packet "
                         f"({n_stored}, {n_matched} of {n}): they would time another path")


def counter(coll, name):
    from xnf.plugins.pping import bpf_events

    m = coll.maps["pping_counters"]
    return bpf_events.counters([m[i] for i in range(len(bpf_events.COUNTERS))])[name]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=200000)
    args = ap.parse_args(argv)
    empty = xnf.load(os.path.join(ROOT, "bench", "bpf", "pping_empty.bpf.o"))
    results = []
    for label, config in (("default (rate limit 100 ms)", PpingConfig(tcp=True, icmp=True, dns=True)),
                          ("--rate-limit 0", PpingConfig(tcp=True, icmp=True, dns=True, rate_limit=0))):
        coll = datapath.load(config)
        try:
            # the flow exists and is open, as on a busy link
            for i in range(3):
                coll.programs["pping_tc_egress"].test_run(v4_tcp(A, B, 1, 2, ts=(90 + i, 0), payload=DATA))
                coll.programs["pping_tc_ingress"].test_run(v4_tcp(B, A, 2, 1, ts=(5 + i, 90 + i),
                                                                  payload=DATA))
            print(f"\n{label}")
            print(f"{'packet':28} {'hook':8} {'pping ns':>9} {'empty ns':>9} {'ratio':>6}")
            for name, hook, frame in frames():
                p = per_packet(coll.programs[PROGS[hook]], frame, args.repeat)
                e = per_packet(empty.programs[EMPTY[hook]], frame, args.repeat)
                results.append((label, name, hook, p, e))
                print(f"{name:28} {hook:8} {p:9d} {e:9d} {p / max(e, 1):6.1f}")
            if config.rate_limit == 0:
                single_runs(coll, empty)
            else:
                print("(TSval stores and matches: see --rate-limit 0; under the 100 ms rate limit a "
                      "flow stores at most one TSval per 100 ms)")
        finally:
            coll.close()
    empty.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
