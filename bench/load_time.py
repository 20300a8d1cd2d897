#!/usr/bin/env python3
"""Load time of an object with 20 programs and 20 maps: xnf against ``bpftool prog
loadall`` on the same object, in the same run (target: xnf at most 2x bpftool).

``bench/bpf/many.bpf.o`` (``xdp_0``..``xdp_9``, ``tc_10``..``tc_19``, maps
``m0``..``m19``) is loaded R times by each contender, alternating, and each load is
pinned (programs and maps, as ``loadall ... pinmaps`` does) then unpinned:

* ``bpftool``: ``bpftool prog loadall OBJ DIR pinmaps DIR/maps`` (a process: exec,
  libbpf open/load/pin);
* ``xnf library``: ``xnf.load(OBJ)`` in this process, every program and map pinned
  under DIR, then closed (parse + relocate + BTF + maps + programs + pins);
* ``xnf command``: ``xnf prog load OBJ --pin DIR`` as a process (interpreter start-up,
  imports and the same load; what a shell user waits for).

Times are medians of CPU time (user + system, so the kernel's verification counts; for
the processes, their rusage): on a shared machine wall-clock time mostly measures how
long other processes held the CPU. Wall-clock medians are printed beside them. Ratios
are against bpftool's CPU-time median. With
``--profile`` the library load is also run under cProfile and the top functions are
printed. Needs root and a bpf filesystem.

Usage: python3 bench/load_time.py [--rounds R] [--profile]
"""
import argparse
import cProfile
import os
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import xnf  # noqa: E402
from xnf.core.kernel.pin import ensure_bpffs  # noqa: E402

OBJ = os.path.join(ROOT, "bench", "bpf", "many.bpf.o")
ENV = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))


def unpin(path):
    shutil.rmtree(path, ignore_errors=True)


def children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def timed_process(cmd, **kwargs):
    """(CPU seconds, wall seconds) of a child process."""
    t, c = time.perf_counter(), children_cpu()
    r = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if r.returncode:
        raise RuntimeError(r.stderr.strip())
    return children_cpu() - c, time.perf_counter() - t


def run_bpftool(pin_dir):
    os.makedirs(os.path.join(pin_dir, "maps"), exist_ok=True)
    return timed_process(["bpftool", "prog", "loadall", OBJ, pin_dir, "pinmaps", os.path.join(pin_dir, "maps")])


def run_library(pin_dir):
    t, c = time.perf_counter(), time.thread_time()
    with xnf.load(OBJ) as coll:
        for kind, objs in (("progs", coll.programs), ("maps", coll.maps)):
            for name, obj in objs.items():
                obj.pin(os.path.join(pin_dir, kind, name))
    return time.thread_time() - c, time.perf_counter() - t


def run_command(pin_dir):
    return timed_process([sys.executable, "-m", "xnf.cli.main", "prog", "load", OBJ, "--pin", pin_dir],
                         env=ENV, cwd=ROOT)


def counts():
    spec = xnf.open_object(OBJ)
    return len(spec.programs), len(spec.maps)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--profile", action="store_true", help="also profile one library load with cProfile")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("load_time: needs root (CAP_BPF, CAP_SYS_ADMIN)")
    if shutil.which("bpftool") is None:
        sys.exit("load_time: bpftool is not installed (it is the baseline)")
    bpffs = ensure_bpffs()
    base = os.path.join(bpffs, f"xnf-bench-{os.getpid()}")
    contenders = {"bpftool prog loadall": run_bpftool, "xnf library": run_library, "xnf command": run_command}
    results = {name: [] for name in contenders}
    failed = {}
    nprogs, nmaps = counts()
    try:
        run_library(base + "-warm")  # page cache, vmlinux BTF, imports
        unpin(base + "-warm")
        for i in range(args.rounds):
            for name, fn in contenders.items():
                pin_dir = f"{base}-{i}-{name.split()[1]}"
                try:
                    results[name].append(fn(pin_dir))
                except RuntimeError as e:
                    failed[name] = str(e)
                finally:
                    unpin(pin_dir)
        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
            run_library(base + "-prof")
            prof.disable()
            unpin(base + "-prof")
    finally:
        for entry in os.listdir(bpffs):
            if entry.startswith(os.path.basename(base)):
                unpin(os.path.join(bpffs, entry))
    wall = {k: [w for _c, w in v] for k, v in results.items()}
    results = {k: [c for c, _w in v] for k, v in results.items()}
    ref = statistics.median(results["bpftool prog loadall"])
    print(f"load {os.path.relpath(OBJ, ROOT)}: {nprogs} programs, {nmaps} maps, pinned and unpinned; "
          f"median of {args.rounds}")
    for name, times in results.items():
        if not times:
            print(f"  {name:<22} failed: {failed.get(name)}")
            continue
        med = statistics.median(times)
        print(f"  {name:<22} {med * 1e3:8.1f} ms CPU  [wall {statistics.median(wall[name]) * 1e3:6.1f} ms]  "
              f"ratio {med / ref:5.2f}x bpftool")
    lib = statistics.median(results["xnf library"]) / ref
    command = results["xnf command"]
    print(f"RESULT load time: xnf library {lib:.2f}x bpftool (target <= 2x: {'met' if lib <= 2 else 'MISSED'}), "
          + (f"xnf command {statistics.median(command) / ref:.2f}x" if command else "xnf command failed"))
    if args.profile:
        print("\ncProfile of one library load (top 20 by cumulative time):")
        pstats.Stats(prof, stream=sys.stdout).sort_stats("cumulative").print_stats(20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
