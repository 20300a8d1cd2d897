#!/usr/bin/env python3
"""The README's example: open examples/xdp_count.bpf.o, configure it, load it, run it.

Frames go through the program with BPF_PROG_TEST_RUN, so no interface is touched: the
first ``--limit`` pass (XDP_PASS), the rest are dropped (XDP_DROP), and the ``counters``
map counts every one.

    sudo examples/xdp_count.py [--limit N] [--frames N]
"""
import argparse
import os
import sys

import xnf

OBJECT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "xdp_count.bpf.o")
VERDICTS = {1: "XDP_DROP", 2: "XDP_PASS"}


def main(argv=None):
    parser = argparse.ArgumentParser(description="Count frames at XDP, drop those over a limit")
    parser.add_argument("--limit", type=int, default=3, help="frames to pass before dropping (0: pass all)")
    parser.add_argument("--frames", type=int, default=5, help="frames to run through the program")
    args = parser.parse_args(argv)

    spec = xnf.open_object(OBJECT)            # parse: an editable spec, no file descriptors
    spec.rodata["limit"] = args.limit         # configure before loading (const volatile)
    with xnf.load(spec) as coll:              # load: live programs and maps, closed on exit
        frame = bytes(64)
        for n in range(args.frames):
            verdict = coll.programs["xdp_count"].test_run(frame).retval
            print(f"frame {n + 1}: {VERDICTS.get(verdict, verdict)}")
        print(f"counters[0] = {coll.maps['counters'][0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
