#!/usr/bin/env python3
"""Map access rates from Python: single-element lookup and update on a hash map (targets:
300,000 ops per CPU-second or more each, and at least 0.7x the bare syscall measured in
the same run) and batch lookup (target: 3,000,000 entries per CPU-second or more).
Exits 1 when a target is missed.

The map is ``proto_count`` of ``tests/bpf/xdp_counter.bpf.o`` (HASH, u32 -> u64, BTF
typed), resized before load to hold N entries. Contenders:

* ``m[k]`` / ``m[k] = v``: the dict-like API, keys and values coded from BTF;
* ``m.lookup_batch()`` and ``m.lookup_batch_raw()``: all N entries, decoded or as bytes;
* baseline ``bare bpf(2)``: the same lookup (or update) through a hand-written ctypes
  call of ``syscall(SYS_bpf, ...)`` with one prepared ``bpf_attr`` and no coding at all,
  the floor for any Python code doing one syscall per element;
* baseline ``os.getppid()``: the cheapest system call Python can make, for scale.

Each rate is the median over R rounds of N operations, per second of the thread's CPU
time (``time.thread_time``: user + system, so the syscalls count): on a shared machine
wall-clock time mostly measures how long other processes held the CPU. Wall-clock
medians are printed beside them; on an idle machine the two agree. Ratios are
xnf / bare bpf(2), CPU time. Needs root.

Usage: python3 bench/map_ops.py [--entries N] [--rounds R]
"""
import argparse
import ctypes
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import xnf  # noqa: E402

OBJ = os.path.join(ROOT, "tests", "bpf", "xdp_counter.bpf.o")
SYS_BPF = {"x86_64": 321, "aarch64": 280}.get(os.uname().machine, 321)
BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM = 1, 2


class ElemAttr(ctypes.Structure):
    """The map-element part of ``union bpf_attr``."""
    _fields_ = [("map_fd", ctypes.c_uint32), ("pad", ctypes.c_uint32), ("key", ctypes.c_uint64),
                ("value", ctypes.c_uint64), ("flags", ctypes.c_uint64)]


def rate(fn, n, rounds):
    """Median operations per second of ``fn(n)`` (which performs n operations): per second
    of this thread's CPU time (user + system), and per second of wall time."""
    cpu, wall = [], []
    for _ in range(rounds):
        t, c = time.perf_counter(), time.thread_time()
        fn(n)
        cpu.append(n / (time.thread_time() - c))
        wall.append(n / (time.perf_counter() - t))
    return statistics.median(cpu), statistics.median(wall)


LOOKUP_TARGET, RATIO_TARGET, BATCH_TARGET = 300_000, 0.7, 3_000_000


def verdict(ok):
    return "met" if ok else "MISSED"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("map_ops: needs root (CAP_BPF)")
    n = args.entries
    spec = xnf.open_object(OBJ)
    spec.maps["proto_count"].max_entries = n
    with xnf.load(spec) as coll:
        m = coll.maps["proto_count"]
        m.update_batch((k, k) for k in range(n))

        def get(count):
            for k in range(count):
                m[k]

        def put(count):
            for k in range(count):
                m[k] = k

        libc = ctypes.CDLL(None, use_errno=True)
        syscall = libc.syscall
        syscall.restype = ctypes.c_long
        syscall.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_ulong]
        key, value = ctypes.c_uint32(), ctypes.c_uint64()
        attr = ElemAttr(map_fd=int(m.fd), key=ctypes.addressof(key), value=ctypes.addressof(value))
        attr_p, attr_size = ctypes.addressof(attr), ctypes.sizeof(attr)

        def bare(cmd):
            def run(count):
                for k in range(count):
                    key.value = k
                    if syscall(SYS_BPF, cmd, attr_p, attr_size) < 0:
                        raise OSError(ctypes.get_errno(), "bpf")
            return run

        def getppid(count):
            for _ in range(count):
                os.getppid()

        def batch(count):
            assert len(m.lookup_batch()) == count

        def batch_raw(count):
            assert len(m.lookup_batch_raw()) == count

        rounds = args.rounds
        r = {
            "getppid": rate(getppid, n, rounds),
            "bare lookup": rate(bare(BPF_MAP_LOOKUP_ELEM), n, rounds),
            "lookup": rate(get, n, rounds),
            "bare update": rate(bare(BPF_MAP_UPDATE_ELEM), n, rounds),
            "update": rate(put, n, rounds),
            "batch": rate(batch, n, rounds),
            "batch raw": rate(batch_raw, n, rounds),
        }
    wall = {k: v[1] for k, v in r.items()}
    r = {k: v[0] for k, v in r.items()}
    print(f"hash map u32 -> u64 (BTF), {n} entries, median of {rounds} rounds, per CPU second "
          f"(wall-clock rate in brackets)")
    print(f"  os.getppid()           {r['getppid']:>12,.0f} [{wall['getppid']:>10,.0f}] calls/s   (baseline: cheapest syscall)")
    print(f"  bare bpf(2) lookup     {r['bare lookup']:>12,.0f} [{wall['bare lookup']:>10,.0f}] ops/s     (baseline)")
    ok = {}
    for op, label in (("lookup", "m[k]            "), ("update", "m[k] = v        ")):
        ratio = r[op] / r["bare " + op]
        ok[op] = r[op] >= LOOKUP_TARGET and ratio >= RATIO_TARGET
        if op == "update":
            print(f"  bare bpf(2) update     {r['bare update']:>12,.0f} [{wall['bare update']:>10,.0f}] ops/s     (baseline)")
        print(f"  {label}       {r[op]:>12,.0f} [{wall[op]:>10,.0f}] ops/s     {ratio:.2f}x bare  "
              f"(target {LOOKUP_TARGET:,} and {RATIO_TARGET}x: {verdict(ok[op])})")
    ok["batch"] = r["batch"] >= BATCH_TARGET
    print(f"  m.lookup_batch()       {r['batch']:>12,.0f} [{wall['batch']:>10,.0f}] entries/s {r['batch'] / r['bare lookup']:.1f}x bare lookups  "
          f"(target {BATCH_TARGET:,}: {verdict(ok['batch'])})")
    print(f"  m.lookup_batch_raw()   {r['batch raw']:>12,.0f} [{wall['batch raw']:>10,.0f}] entries/s {r['batch raw'] / r['bare lookup']:.1f}x bare lookups")
    print(f"RESULT map ops: lookup {r['lookup']:,.0f}/s ({r['lookup'] / r['bare lookup']:.2f}x bare bpf(2)), "
          f"update {r['update']:,.0f}/s ({r['update'] / r['bare update']:.2f}x bare bpf(2)), "
          f"batch lookup {r['batch']:,.0f} entries/s; targets {'met' if all(ok.values()) else 'MISSED: ' + ', '.join(k for k, v in ok.items() if not v)}")
    return 0 if all(ok.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
