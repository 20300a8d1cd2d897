"""Regression guard for load cost (issue 14, item 3): the bpf(2) commands one load makes,
counted in a fresh interpreter by wrapping ``xnf.core.kernel.syscall.bpf_at`` (which
``syscall.bpf`` and the map fast paths go through). Counts, not wall times: they do not
depend on the machine's load, and a new probe, retry or per-program round trip shows up
as a changed count. No command may fail: a round trip known to fail is a cost for nothing.

The expected counts are what the object needs and no more: one BTF_LOAD, one MAP_CREATE
per map (global data included), one PROG_LOAD per program, one MAP_UPDATE_ELEM per
statically filled prog-array slot. ``bench/load_real.py`` measures the times.
"""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BPF = os.path.join(ROOT, "tests", "bpf")

COUNT = r"""
import collections, json, sys
import xnf
from xnf.core.kernel import syscall
orig, calls, failed = syscall.bpf_at, collections.Counter(), collections.Counter()
def counting(cmd, addr, size):
    name = syscall._COMMAND_NAMES.get(cmd, str(cmd))
    calls[name] += 1
    try:
        return orig(cmd, addr, size)
    except Exception:
        failed[name] += 1
        raise
syscall.bpf_at = counting
with xnf.load(xnf.open_object(sys.argv[1])):
    pass
print(json.dumps({"calls": calls, "failed": failed}))
"""

EXPECTED = {
    # 26 programs; redir_map, redir_hash, run_count, tail_cfg, jmp_table; jmp_table slots 0, 1, 2
    "many_progs": {"BPF_BTF_LOAD": 1, "BPF_MAP_CREATE": 5, "BPF_PROG_LOAD": 26, "BPF_MAP_UPDATE_ELEM": 3},
    "tail_call": {"BPF_BTF_LOAD": 1, "BPF_MAP_CREATE": 3, "BPF_PROG_LOAD": 3, "BPF_MAP_UPDATE_ELEM": 2},
    "xdp_counter": {"BPF_BTF_LOAD": 1, "BPF_MAP_CREATE": 2, "BPF_PROG_LOAD": 1},
    "subprog": {"BPF_BTF_LOAD": 1, "BPF_MAP_CREATE": 2, "BPF_PROG_LOAD": 4},  # sub_calls, .bss
    "core_relo": {"BPF_BTF_LOAD": 1, "BPF_MAP_CREATE": 1, "BPF_PROG_LOAD": 1},  # .bss
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bpf_commands_per_first_load(name):
    if os.geteuid() != 0:
        pytest.skip("needs root (CAP_BPF, CAP_SYS_ADMIN)")
    out = subprocess.run([sys.executable, "-c", COUNT, os.path.join(BPF, name + ".bpf.o")],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["failed"] == {}, f"bpf(2) commands that failed during the load: {res['failed']}"
    assert res["calls"] == EXPECTED[name]
