#!/usr/bin/env python3
"""Simulated packets per CPU-second of the reference runtime (issue 14, item 6).

Three bulk flows (64-1500 B packets, weights 1:2:3 where the scheduler takes weights)
on a 10 Gbit/s link, through ``sim.runner.simulate`` exactly as ``xnf sched simulate``
runs them, for FIFO, WFQ and DRR; about 1.1M packets per run (``--packets``). The
time is CPU time of this process (``time.process_time``), so other load on the machine
inflates it less than wall time; each scheduler runs ``--rounds`` times, interleaved
with the others, and the median round counts.

Baseline, measured in the same run: the cheapest discrete-event loop Python allows,
one ``heapq`` push and one pop of a (time, sequence, kind, data) event per packet
and nothing else. The ratio says how many such bare loops one simulated packet costs
(the simulator also builds the packet, runs both scheduler hooks and the metrics).

Target: at least 500,000 simulated packets per CPU-second for each scheduler; the exit
status is 1 when one misses it.

Usage: python3 bench/sim_speed.py [--rounds N] [--packets N] [--quick]
"""
import argparse
import heapq
import statistics
import sys
import time

from xnf.plugins.pifo_sched.sim.runner import simulate

TARGET = 500_000
LINK = "10gbit"
PACKETS_PER_SECOND = 10e9 / 8 / 782  # mean size of 64..1500 B packets on the wire
SCHEDULERS = (("fifo", None), ("wfq", {"weights": [1, 2, 3]}), ("drr", {"weights": [1, 2, 3]}))
TRAFFIC = [{"kind": "bulk", "flow": flow, "size": "mixed"} for flow in range(3)]


def simulator_rate(algorithm, config, duration):
    """(packets, packets per CPU-second, packets per wall second) of one run."""
    cpu, wall = time.process_time(), time.perf_counter()
    results, _ = simulate(algorithm, config, TRAFFIC, LINK, duration, seed=1)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return results["packets"], results["packets"] / cpu, results["packets"] / wall


def baseline_rate(packets):
    """Packets per CPU-second of a bare event loop: one heap push and pop per packet."""
    events = [(0, 0, 0, None)]
    pop, push = heapq.heappop, heapq.heappush
    start = time.process_time()
    for sequence in range(1, packets + 1):
        now, _, kind, data = pop(events)
        push(events, (now + 1000, sequence, kind, data))
    return packets / (time.process_time() - start)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--packets", type=int, default=1_100_000, help="simulated packets per run (about)")
    ap.add_argument("--quick", action="store_true", help="1 round of about 200k packets")
    args = ap.parse_args(argv)
    rounds, packets = (1, 200_000) if args.quick else (args.rounds, args.packets)
    duration = packets / PACKETS_PER_SECOND
    rates = {name: [] for name, _ in SCHEDULERS}
    walls = {name: [] for name, _ in SCHEDULERS}
    counts, baseline = {}, []
    for _ in range(rounds):  # interleaved, so a busy moment of the machine hits one round of each
        baseline.append(baseline_rate(packets))
        for name, config in SCHEDULERS:
            counts[name], cpu_rate, wall_rate = simulator_rate(name, config, duration)
            rates[name].append(cpu_rate)
            walls[name].append(wall_rate)
    base = statistics.median(baseline)
    print(f"3 bulk flows (64-1500 B) on {LINK}, median of {rounds} round(s) per scheduler;")
    print(f"baseline: a bare heapq event loop (one push + one pop per packet) runs {base:,.0f} packets per CPU-second")
    print(f"{'scheduler':<9} {'packets':>9} {'pkts/CPU-s':>11} {'pkts/wall-s':>12} {'x baseline cost':>16}  target")
    missed = []
    for name, _ in SCHEDULERS:
        rate, wall = statistics.median(rates[name]), statistics.median(walls[name])
        ok = rate >= TARGET
        if not ok:
            missed.append(name)
        print(f"{name:<9} {counts[name]:>9,} {rate:>11,.0f} {wall:>12,.0f} {base / rate:>16.1f}  "
              f"{'ok' if ok else 'MISSED'} (>= {TARGET:,})")
    print("RESULT simulator, simulated packets per CPU-second: "
          + ", ".join(f"{name} {statistics.median(rates[name]):,.0f}" for name, _ in SCHEDULERS)
          + f" (target {TARGET:,}: {'ok' if not missed else 'missed by ' + ', '.join(missed)})")
    print(f"RESULT baseline heapq loop {base:,.0f} packets per CPU-second; one simulated packet costs "
          + ", ".join(f"{name} {base / statistics.median(rates[name]):.1f}x" for name, _ in SCHEDULERS)
          + " a bare event-loop step")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
