#!/usr/bin/env python3
"""How long ``import xnf`` takes in a fresh interpreter, against ``python -c pass``.

Two figures, each the median over N fresh subprocesses:

* wall time of ``python -c "import xnf"`` and of the baseline ``python -c pass``
  (interpreter start-up included; the difference is what xnf adds to any script);
* the import alone, timed inside the subprocess with ``time.perf_counter``.

Also times ``import xnf.cli.main`` (what every `xnf` command pays before doing
anything) and checks that no heavy dependency (pyroute2, pyelftools, stevedore,
matplotlib, prometheus_client) is imported by ``import xnf``. No privileges needed.

And where a process's first ``xnf.open_object`` goes (issue 14 item 3: first open at most
10 ms, checked against bpftool by ``bench/load_real.py``): the CPU time of opening
``tests/bpf/xdp_counter.bpf.o`` after ``import xnf`` in fresh interpreters (importing
from cached bytecode, as an installed copy does), and of the same open after its
imports were done beforehand, one part at a time: pyelftools (``elftools.elf.elffile``,
which the reader uses to identify the ELF), attrs (the spec classes), xnf's object
modules (``xnf.core.object.elf`` and what it imports, their classes made), and what is
left, the parse itself.

Usage: python3 bench/import_time.py [-n N]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
HEAVY = ("pyroute2", "elftools", "stevedore", "matplotlib", "prometheus_client")
OBJ = os.path.join(ROOT, "tests", "bpf", "xdp_counter.bpf.o")
# first-open runs import from cached bytecode, as an installed copy would (a prefix of our
# own, so none lands in the tree), even where PYTHONDONTWRITEBYTECODE is set
OPEN_ENV = {k: v for k, v in ENV.items() if k != "PYTHONDONTWRITEBYTECODE"}
OPEN_ENV["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), "xnf-import-time-pyc")
FIRST_OPEN_PARTS = [("pyelftools", "elftools.elf.elffile"), ("attrs", "attrs"),
                    ("xnf's object modules", "xnf.core.object.elf")]


def wall(code, n):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=ENV, cwd=ROOT)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def inside(module, n):
    code = (f"import time; t = time.perf_counter(); import {module}; d = time.perf_counter() - t\n"
            f"import sys, json; print(json.dumps([d, sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})]))")
    times, heavy = [], set()
    for _ in range(n):
        out = subprocess.run([sys.executable, "-c", code], check=True, env=ENV, cwd=ROOT, capture_output=True,
                             text=True).stdout
        d, mods = json.loads(out)
        times.append(d)
        heavy.update(mods)
    return statistics.median(times), sorted(heavy)


def first_open(pre, n):
    """Median thread CPU seconds of the first ``xnf.open_object(OBJ)`` in a fresh
    interpreter, after ``import xnf`` and the modules ``pre`` (untimed)."""
    code = ("import time, xnf\n" + "".join(f"import {m}\n" for m in pre)
            + f"t = time.thread_time(); xnf.open_object({OBJ!r}); print(time.thread_time() - t)")
    subprocess.run([sys.executable, "-c", code], check=True, env=OPEN_ENV, cwd=ROOT, capture_output=True)
    return statistics.median(float(subprocess.run([sys.executable, "-c", code], check=True, env=OPEN_ENV, cwd=ROOT,
                                                  capture_output=True, text=True).stdout) for _ in range(n))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=20, help="subprocesses per measurement (default 20)")
    args = ap.parse_args(argv)

    base = wall("pass", args.n)
    with_xnf = wall("import xnf", args.n)
    own, heavy = inside("xnf", args.n)
    cli, cli_heavy = inside("xnf.cli.main", args.n)
    print(f"import time, median of {args.n} fresh interpreters ({sys.version.split()[0]})")
    print(f"  python -c pass         {base * 1e3:8.1f} ms   (baseline)")
    print(f"  python -c 'import xnf' {with_xnf * 1e3:8.1f} ms   ratio {with_xnf / base:.2f}x baseline, "
          f"+{(with_xnf - base) * 1e3:.1f} ms")
    print(f"  import xnf alone       {own * 1e3:8.2f} ms   heavy modules imported: {', '.join(heavy) or 'none'}")
    print(f"  import xnf.cli.main    {cli * 1e3:8.2f} ms   heavy modules imported: {', '.join(cli_heavy) or 'none'}")
    total = first_open([], args.n)
    print(f"  first xnf.open_object  {total * 1e3:8.1f} ms CPU (xdp_counter, after import xnf), of which:")
    done, before = [], total
    for part, module in FIRST_OPEN_PARTS:
        done.append(module)
        after = first_open(done, args.n)
        print(f"    {part:<24} {(before - after) * 1e3:6.1f} ms")
        before = after
    print(f"    {'the parse itself':<24} {before * 1e3:6.1f} ms")
    print(f"RESULT import xnf: {own * 1e3:.2f} ms; interpreter+import {with_xnf / base:.2f}x `python -c pass`; "
          f"first open {total * 1e3:.1f} ms CPU, {before * 1e3:.1f} ms of it the parse")
    return 1 if heavy else 0


if __name__ == "__main__":
    sys.exit(main())
