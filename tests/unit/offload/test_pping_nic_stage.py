"""pping's NIC stage (offload mode) obeys the NFP and netdevsim offload rules (checked on the
object, no kernel); tests/kernel/offload/test_pping_nic_stage_run.py runs it."""
import os

import pytest

import xnf
from xnf.offload.check import check_object
from xnf.offload.rules import target

OBJ = os.path.join(os.path.dirname(os.path.abspath(xnf.__file__)), "plugins", "pping", "pping_nic.bpf.o")


@pytest.mark.parametrize("t", ["nfp", "netdevsim"])
def test_stage_passes_offload_rules(t):
    assert check_object(xnf.open_object(OBJ), target(t)) is None
