#!/usr/bin/env python3
"""Python bucketed PIFO against heapq (the runtime's speed: bench/sim_speed.py).

Hold model: the queue is filled with N elements, then each step dequeues the lowest
rank r and enqueues a new element of rank r + U(0, range/4), so the size stays N and
ranks keep growing through window rotations. heapq runs the same steps on
(rank, arrival, item) tuples, the usual stable priority queue in Python. Printed:
ns per enqueue+dequeue for both, their ratio, and the growth of the PIFO's cost per
operation from 10^3 to 10^6 queued elements (the acceptance bound is 2x).

Usage: python3 bench/pifo_bench.py [--quick]
"""
import heapq
import random
import sys
import time

from xnf.plugins.pifo_sched.pifo import BucketedPifo

RANGE = 1 << 16


def hold_pifo(size, increments):
    pifo = BucketedPifo(RANGE, capacity=size + 1)
    rng = random.Random(1)
    for i in range(size):
        pifo.enqueue(i, rng.randrange(RANGE // 4))
    enqueue, dequeue = pifo.enqueue, pifo.dequeue
    start = time.perf_counter_ns()
    for n, inc in enumerate(increments):
        rank, _ = dequeue()
        enqueue(n, rank + inc)
    return (time.perf_counter_ns() - start) / len(increments)


def hold_heapq(size, increments):
    heap = []
    rng = random.Random(1)
    for i in range(size):
        heap.append((rng.randrange(RANGE // 4), i, i))
    heapq.heapify(heap)
    push, pop = heapq.heappush, heapq.heappop
    seq = size
    start = time.perf_counter_ns()
    for n, inc in enumerate(increments):
        rank, _, _ = pop(heap)
        seq += 1
        push(heap, (rank + inc, seq, n))
    return (time.perf_counter_ns() - start) / len(increments)


def main(argv):
    quick = "--quick" in argv
    steps = 50_000 if quick else 200_000
    runs = 1 if quick else 5
    rng = random.Random(2)
    increments = [rng.randrange(RANGE // 4) for _ in range(steps)]
    sizes = (10**3, 10**4, 10**5, 10**6)
    costs, heap_costs = {}, {}
    for _ in range(runs):  # rounds over all sizes, so a noisy moment hits one size once
        for size in sizes:
            costs[size] = min(costs.get(size, float("inf")), hold_pifo(size, increments))
            heap_costs[size] = min(heap_costs.get(size, float("inf")), hold_heapq(size, increments))
    print(f"hold model, {steps} enqueue+dequeue pairs per size, best of {runs} rounds")
    print(f"{'queued':>9} {'PIFO ns/pair':>13} {'heapq ns/pair':>14} {'PIFO/heapq':>11}")
    for size in sizes:
        print(f"{size:>9} {costs[size]:>13.0f} {heap_costs[size]:>14.0f} {costs[size] / heap_costs[size]:>11.2f}")
    growth = costs[10**6] / costs[10**3]
    print(f"PIFO cost growth 10^3 -> 10^6 queued: {growth:.2f}x (bound 2x: {'ok' if growth <= 2 else 'EXCEEDED'})")
    return 0 if growth <= 2 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
