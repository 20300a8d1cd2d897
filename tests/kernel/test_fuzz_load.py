"""Real loads of mutated objects (issue 9): the mutants of tests/unit/test_fuzz_objects.py
that get through every pre-kernel phase are loaded into the kernel. Each load succeeds or
raises an ``XnfError`` (the kernel's refusals are ``BPFError``/``VerifierError``), and
leaves no bpf file descriptor behind either way (the loader's rollback, or ``close()``).

Pins by name go to a private bpffs, so no mutant can touch ``/sys/fs/bpf``.
"""
import os
import sys

import pytest
from netenv import bpf_fds

import xnf
from xnf.core.errors import XnfError

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "unit"))
import test_fuzz_objects as F  # noqa: E402

pytestmark = [pytest.mark.root, pytest.mark.fuzz]

LOADS = max(20, F.MUTANTS // 50)    # 20 in the default suite (~1 s), 1000 in the long run


def test_mutants_that_pass_the_pre_kernel_phases_load_or_fail_typed(tmp_path, bpffs):
    path = str(tmp_path / "mutant.bpf.o")
    loaded = refused = 0
    index = 0
    before = bpf_fds()
    problems = []
    while loaded + refused < LOADS and index < 100 * LOADS:
        kind, seed, data = F.mutant(index)
        index += 1
        if kind != "elf":
            continue
        with open(path, "wb") as f:
            f.write(data)
        try:
            F.exercise_elf(path)
        except XnfError:
            continue                      # refused before the kernel: the unit fuzzer's business
        try:
            coll = xnf.load(path, pin_root=bpffs)
        except XnfError as e:
            refused += 1
            if "\n" in str(e):
                problems.append((index - 1, seed, f"bad message: {e}"))
        except Exception as e:  # noqa: BLE001 - what this test looks for
            problems.append((index - 1, seed, f"{type(e).__name__}: {e}"))
        else:
            loaded += 1
            coll.close()
        left = bpf_fds() - before
        if left:
            problems.append((index - 1, seed, f"{len(left)} bpf fds left open"))
    print(f"\nreal loads of mutants: {loaded} loaded, {refused} refused by the kernel, "
          f"{index} mutants drawn")
    assert loaded + refused == LOADS
    assert not problems, problems[:10]
