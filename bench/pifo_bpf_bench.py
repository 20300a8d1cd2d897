#!/usr/bin/env python3
"""ns per enqueue+dequeue of the BPF PIFO (bpf/pifo.h) with BPF_PROG_TEST_RUN.

``pifo_bench`` does one enqueue and one dequeue per run on a queue pre-filled with N
elements; ``pifo_empty`` is the same program without the PIFO calls, measured in the
same run as the baseline, so "net" is the PIFO's own cost. The Python PIFO's cost on
the same hold pattern is printed beside it for the ratio. Needs root.

Usage: python3 bench/pifo_bpf_bench.py [--quick]
"""
import random
import sys
import time

from xnf.plugins.pifo_sched.bpf_pifo import CAPACITY, RANGE, BpfPifo
from xnf.plugins.pifo_sched.pifo import BucketedPifo


def python_pair_ns(size, steps=100_000):
    pifo, rng = BucketedPifo(RANGE, CAPACITY), random.Random(1)
    for i in range(size):
        pifo.enqueue(i, (i * max(1, (RANGE // 2) // size)) % (RANGE // 2))
    incs = [rng.randrange(RANGE // 2) for _ in range(steps)]
    start = time.perf_counter_ns()
    for n, inc in enumerate(incs):
        pifo.enqueue(n, pifo.min_rank + inc)
        pifo.dequeue()
    return (time.perf_counter_ns() - start) / steps


def main(argv):
    repeat = 200_000 if "--quick" in argv else 2_000_000
    print(f"BPF PIFO (range {RANGE}, capacity {CAPACITY}), {repeat} runs per size via BPF_PROG_TEST_RUN")
    print(f"{'queued':>7} {'run ns':>7} {'empty ns':>9} {'net ns/pair':>12} {'Python ns/pair':>15} {'Python/BPF':>11}")
    with BpfPifo() as pifo:
        for size in (10, 100, 1000, CAPACITY // 2):
            best = min((pifo.bench(size, repeat) for _ in range(3)), key=lambda r: r[0] - r[1])
            net = max(best[0] - best[1], 1)
            py = python_pair_ns(size)
            print(f"{size:>7} {best[0]:>7} {best[1]:>9} {net:>12} {py:>15.0f} {py / net:>11.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
