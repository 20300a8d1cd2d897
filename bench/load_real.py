#!/usr/bin/env python3
"""Load time of real objects: ``xnf.open_object`` + ``xnf.load`` in a process against
``bpftool prog loadall`` as a whole process, per object, in the same run (issue 14, item 3).

Objects, in three groups:

* ``many``: ``tests/bpf/many_progs.bpf.o``, 26 small sk_lookup/xdp/tc/sk_skb/sk_msg
  programs with a sockmap, a sockhash and a prog array filled with tail-call targets
  (shaped like the kernel's sk_lookup and tunnel selftests);
* ``fixtures``: a few committed fixtures (counters, tail calls, subprograms, map-in-map,
  global data, CO-RE);
* ``corpus``: the libbpf-tools objects (extracted from the installed tools with
  ``tools/extract-bpf-objects``; skipped, saying so, when libbpf-tools is missing).

For each object: ``bpftool prog loadall OBJ /sys/fs/bpf/<unique>`` (``--rounds`` times,
pins removed after each) is the baseline; xnf runs in a fresh interpreter per object
(``import xnf`` first, untimed): the *first* open + load in that process, then
``--rounds`` *warm* ones (median). Times are CPU time (user + system: the kernel's
verification counts; rusage for bpftool, the thread's CPU time for xnf), wall time beside
it. Children import xnf from cached bytecode, as an installed copy does (a cache under
$TMPDIR/xnf-load-real-pyc, written by a first untimed run). An object the kernel refuses
to bpftool too is listed and excluded; one that bpftool loads and xnf does not is listed
and fails the run.

First-open cost: ``xnf.open_object`` of ``tests/bpf/xdp_counter.bpf.o`` and of
``many_progs`` in fresh interpreters (after ``import xnf``), median of ``--rounds``.

Targets: first and warm load each at most 2x bpftool (median of each group), first open
at most 10 ms. Prints RESULT lines; exit status 1 if a target is missed. Needs root.

Usage: python3 bench/load_real.py [--rounds R] [--no-corpus] [--only NAME ...]
"""
import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BPF = os.path.join(ROOT, "tests", "bpf")
MANY = os.path.join(BPF, "many_progs.bpf.o")
FIXTURES = ["xdp_counter", "tail_call", "subprog", "map_in_map", "global_data", "core_relo"]
# Children import xnf as an installed copy would: from cached bytecode (written under a
# prefix of our own, so none lands in the tree), even where PYTHONDONTWRITEBYTECODE is set.
PYC = os.path.join(tempfile.gettempdir(), "xnf-load-real-pyc")
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV.update(PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), PYTHONPYCACHEPREFIX=PYC)
TARGET_RATIO, TARGET_OPEN_MS = 2.0, 10.0

# Runs in a fresh interpreter: the first open + load of OBJ, then R warm ones.
CHILD = r"""
import json, sys, time
import xnf
obj, rounds = sys.argv[1], int(sys.argv[2])
def once():
    c, w = time.thread_time(), time.perf_counter()
    with xnf.load(xnf.open_object(obj)):
        pass
    return time.thread_time() - c, time.perf_counter() - w
try:
    first = once()
    warm = [once() for _ in range(rounds)]
except Exception as e:
    print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
else:
    print(json.dumps({"first": first, "warm": warm}))
"""

FIRST_OPEN = r"""
import json, sys, time
import xnf
c, w = time.thread_time(), time.perf_counter()
xnf.open_object(sys.argv[1])
print(json.dumps([time.thread_time() - c, time.perf_counter() - w]))
"""


def children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def bpftool_load(obj, pin_dir):
    """(CPU s, wall s) of one ``bpftool prog loadall``, or the error it printed."""
    t, c = time.perf_counter(), children_cpu()
    try:
        r = subprocess.run(["bpftool", "prog", "loadall", obj, pin_dir], capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(pin_dir, ignore_errors=True)
    cpu, wall = children_cpu() - c, time.perf_counter() - t
    if r.returncode:
        lines = [l for l in r.stderr.splitlines() if l.strip() and not l.startswith(("Warning", "If it used"))]
        failed = [l for l in lines if "fail" in l and "Retrying" not in l]
        return None, ((failed or lines)[0][:200] if lines else f"exit status {r.returncode}")
    return (cpu, wall), None


def xnf_load(obj, rounds):
    r = subprocess.run([sys.executable, "-c", CHILD, obj, str(rounds)], capture_output=True, text=True,
                       env=ENV, cwd=ROOT, timeout=600)
    if r.returncode:
        return {"error": (r.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def first_open(obj, rounds):
    out = []
    for _ in range(rounds):
        r = subprocess.run([sys.executable, "-c", FIRST_OPEN, obj], capture_output=True, text=True,
                           env=ENV, cwd=ROOT, timeout=120, check=True)
        out.append(json.loads(r.stdout.strip().splitlines()[-1]))
    return statistics.median(c for c, _ in out), statistics.median(w for _, w in out)


def corpus_objects(tmp):
    """The libbpf-tools objects extracted into ``tmp``, or (None, reason)."""
    r = subprocess.run(["dpkg", "-L", "libbpf-tools"], capture_output=True, text=True)
    if r.returncode:
        return None, "libbpf-tools is not installed (apt-get install libbpf-tools)"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "extract-bpf-objects"), tmp],
                       capture_output=True, text=True)
    objs = sorted(os.path.join(tmp, f) for f in os.listdir(tmp) if f.endswith(".bpf.o"))
    if not objs:
        return None, f"tools/extract-bpf-objects found no object ({r.stderr.strip()[-200:]})"
    return objs, None


def measure(obj, rounds, pin_base):
    """One object's figures, or (None, reason) when bpftool or xnf could not load it."""
    runs = []
    for i in range(rounds):
        res, err = bpftool_load(obj, f"{pin_base}-{i}")
        if err:
            return None, f"refused to bpftool too: {err}"
        runs.append(res)
    x = xnf_load(obj, rounds)
    if "error" in x:
        return None, f"bpftool loads it, xnf does not: {x['error']}"
    return {"bpftool": statistics.median(c for c, _ in runs), "bpftool_wall": statistics.median(w for _, w in runs),
            "first": x["first"][0], "first_wall": x["first"][1],
            "warm": statistics.median(c for c, _ in x["warm"]),
            "warm_wall": statistics.median(w for _, w in x["warm"])}, None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-corpus", action="store_true", help="skip the libbpf-tools corpus")
    ap.add_argument("--only", nargs="*", help="only objects whose file name contains one of these")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("load_real: needs root (CAP_BPF, CAP_SYS_ADMIN)")
    if shutil.which("bpftool") is None:
        sys.exit("load_real: bpftool is not installed (it is the baseline)")
    from xnf.core.kernel.pin import ensure_bpffs
    pin_base = os.path.join(ensure_bpffs(), f"xnf-load-real-{os.getpid()}")

    first_open(MANY, 1)  # writes the bytecode cache
    groups = {"many": [MANY], "fixtures": [os.path.join(BPF, f + ".bpf.o") for f in FIXTURES]}
    missed = []
    with tempfile.TemporaryDirectory(prefix="xnf-load-real-") as tmp:
        if args.no_corpus:
            print("corpus: skipped (--no-corpus)")
        else:
            objs, why = corpus_objects(tmp)
            if objs is None:
                print(f"corpus: skipped: {why}")
            else:
                groups["corpus"] = objs
        if args.only:
            groups = {g: [o for o in objs if any(s in os.path.basename(o) for s in args.only)]
                      for g, objs in groups.items()}
        results, refused = {}, []
        for group, objs in groups.items():
            results[group] = {}
            for n, obj in enumerate(objs):
                name = os.path.basename(obj)[: -len(".bpf.o")]
                res, why = measure(obj, args.rounds, f"{pin_base}-{group}-{n}")
                if res is None:
                    refused.append((group, name, why))
                    continue
                results[group][name] = res
                print(f"  {group:<8} {name:<22} bpftool {res['bpftool'] * 1e3:7.1f} ms  "
                      f"xnf first {res['first'] * 1e3:7.1f} ms ({res['first'] / res['bpftool']:5.2f}x)  "
                      f"warm {res['warm'] * 1e3:7.1f} ms ({res['warm'] / res['bpftool']:5.2f}x)  "
                      f"[wall: {res['bpftool_wall'] * 1e3:.1f} / {res['first_wall'] * 1e3:.1f} / "
                      f"{res['warm_wall'] * 1e3:.1f} ms]", flush=True)
    for group, name, why in refused:
        print(f"  excluded {group}/{name}: {why}")
        if why.startswith("bpftool loads it"):
            missed.append(name)
    if any(why.startswith("bpftool loads it") for *_, why in refused):
        print("RESULT load real: some objects bpftool loads were refused to xnf (above): MISSED")

    for group, res in results.items():
        if not res:
            continue
        first = statistics.median(r["first"] / r["bpftool"] for r in res.values())
        warm = statistics.median(r["warm"] / r["bpftool"] for r in res.values())
        worst = max(res, key=lambda k: res[k]["first"] / res[k]["bpftool"])
        ok = first <= TARGET_RATIO and warm <= TARGET_RATIO
        if not ok:
            missed.append(group)
        print(f"RESULT load real {group}: {len(res)} objects, median ratio to bpftool (CPU) first load "
              f"{first:.2f}x, warm {warm:.2f}x (worst first: {worst} "
              f"{res[worst]['first'] / res[worst]['bpftool']:.2f}x); target <= {TARGET_RATIO:g}x: "
              f"{'met' if ok else 'MISSED'}")
    for obj in (os.path.join(BPF, "xdp_counter.bpf.o"), MANY):
        cpu, wall = first_open(obj, args.rounds)
        ok = cpu * 1e3 <= TARGET_OPEN_MS
        if not ok:
            missed.append("first open")
        print(f"RESULT load real first open {os.path.basename(obj)}: {cpu * 1e3:.1f} ms CPU "
              f"(wall {wall * 1e3:.1f} ms) in a fresh interpreter; target <= {TARGET_OPEN_MS:g} ms: "
              f"{'met' if ok else 'MISSED'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
