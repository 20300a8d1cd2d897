#!/usr/bin/env python3
"""Run every benchmark in bench/ and print a summary.

Each ``bench/*.py`` (but this one) runs as its own process with its default arguments;
its output is shown as it comes, then a summary gives, per benchmark, the exit status,
the time it took and its result lines: lines starting with ``RESULT``, or else the last
line it printed. The exit status is non-zero if any benchmark failed.

Usage: python3 bench/run_all.py [--only NAME ...] [--skip NAME ...] [--timeout SECONDS]
"""
import argparse
import glob
import os
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))


def benchmarks(only=(), skip=()):
    names = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(BENCH, "*.py")))
    return [n for n in names if n != "run_all" and (not only or n in only) and n not in skip]


def run(name, timeout):
    """(status, seconds, output lines) of one benchmark; output is echoed as it arrives."""
    print(f"=== {name} " + "=" * max(0, 66 - len(name)), flush=True)
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, os.path.join(BENCH, name + ".py")], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=os.path.dirname(BENCH))
    lines = []
    try:
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            lines.append(line.rstrip("\n"))
            if time.monotonic() - start > timeout:
                raise subprocess.TimeoutExpired(name, timeout)
        proc.wait(timeout=max(1, timeout - (time.monotonic() - start)))
        status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        status = f"timeout ({timeout}s)"
    return status, time.monotonic() - start, lines


def summary_lines(lines):
    results = [line for line in lines if line.startswith("RESULT")]
    if results:
        return [line[len("RESULT"):].strip() for line in results]
    tail = [line for line in lines if line.strip()]
    return tail[-1:]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=(), metavar="NAME", help="run only these (file names without .py)")
    ap.add_argument("--skip", nargs="*", default=(), metavar="NAME")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per benchmark (default 900)")
    args = ap.parse_args(argv)
    names = benchmarks(args.only, args.skip)
    if not names:
        sys.exit("run_all: no benchmark selected")
    report = [(name,) + run(name, args.timeout) for name in names]
    print("\n=== summary " + "=" * 58)
    width = max(len(n) for n in names)
    for name, status, seconds, lines in report:
        results = summary_lines(lines) or ["(no output)"]
        print(f"{name:<{width}}  {status:<8} {seconds:6.1f}s  {results[0]}")
        for extra in results[1:]:
            print(f"{'':<{width}}  {'':<8} {'':>7}  {extra}")
    return 0 if all(status == "ok" for _n, status, _s, _l in report) else 1


if __name__ == "__main__":
    sys.exit(main())
