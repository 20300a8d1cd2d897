#!/usr/bin/env python3
"""Throughput shares of weighted iperf3 flows on the kernel data path, against FIFO.

One iperf3 cubic flow per weight (ports 5201, 5202, ...) crosses a veth pair between
two throwaway namespaces (``xnf.testing.topology.VethPair``; iperf3 through
``xnf.testing.traffic.iperf3_shares``). Each round runs the flows
through the same HTB bands three times: with WFQ ranks, with STFQ ranks, and, as the
baseline, without the ranking program (every packet in the default band: one FIFO at
the same rate). Printed per run: the byte shares after the warm-up and the largest
relative error against weight / sum; at the end, per scheduler, the largest and the
median of those errors and their ratio to the FIFO baseline's.

Usage: python3 bench/sched_shares.py [--runs N] [--seconds S] [--rate R] [--weights 1,2,3]   (root)
"""
import argparse
import os
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from xnf.plugins.pifo_sched.demo import BASE_PORT  # noqa: E402
from xnf.plugins.pifo_sched.kernel import EgressDataPath, HtbBands  # noqa: E402
from xnf.plugins.pifo_sched.shaping import parse_rate  # noqa: E402
from xnf.testing.topology import VethPair  # noqa: E402
from xnf.testing.traffic import iperf3_shares  # noqa: E402

WARMUP = 5


def run(topo, scheduler, weights, rate, seconds):
    ports = [BASE_PORT + i for i in range(len(weights))]
    if scheduler == "fifo":
        bands = HtbBands(topo.if_a, parse_rate(rate), topo.ns_a).build()
        try:
            return iperf3_shares(topo.ns_a, topo.ns_b, topo.ip_b, ports, seconds, WARMUP)[0]
        finally:
            bands.remove()
    path = EgressDataPath(topo.if_a, rate, dict(zip(ports, weights)), netns=topo.ns_a, scheduler=scheduler)
    path.attach()
    try:
        return iperf3_shares(topo.ns_a, topo.ns_b, topo.ip_b, ports, seconds, WARMUP)[0]
    finally:
        path.detach()


def largest_error(shares, weights):
    return max(abs(s - w / sum(weights)) / (w / sum(weights)) for s, w in zip(shares, weights))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=20, help="measured seconds per run, after a 5 s warm-up")
    ap.add_argument("--rate", default="20mbit")
    ap.add_argument("--weights", default="1,2,3")
    args = ap.parse_args(argv)
    weights = [float(w) for w in args.weights.split(",")]
    errors = {"wfq": [], "stfq": [], "fifo": []}
    with VethPair("10.77.0.1", "10.77.0.2") as topo:
        for n in range(args.runs):
            for scheduler in errors:
                shares = run(topo, scheduler, weights, args.rate, args.seconds)
                errors[scheduler].append(largest_error(shares, weights))
                print(f"run {n + 1} {scheduler:>4}: shares {' '.join(f'{s:.3f}' for s in shares)}, "
                      f"largest error {errors[scheduler][-1]:.1%}", flush=True)
    fifo = max(errors["fifo"])
    for scheduler in ("wfq", "stfq"):
        worst = max(errors[scheduler])
        print(f"RESULT {scheduler}: largest share error {worst:.1%} (median {statistics.median(errors[scheduler]):.1%}) "
              f"over {args.runs} runs of {args.seconds} s at {args.rate}; FIFO baseline {fifo:.0%}, "
              f"ratio {worst / fifo:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
