"""bpftool as an independent oracle: for every fixture object, ``bpftool prog loadall``
and xnf's loader agree on whether the kernel accepts it.

Where the two differ on purpose the object is treated specially (see ``SPECIAL`` and
tests/bpf/README.md): bpftool's libbpf dropped legacy ``SEC("maps")`` in 1.0 and learnt
the ``tcx/*`` section names only in 1.3.
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import uuid

import pytest

import xnf
from xnf.core import errors

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OBJECTS = sorted(glob.glob(os.path.join(ROOT, "tests", "bpf", "*.bpf.o"))
                 + glob.glob(os.path.join(ROOT, "bench", "bpf", "*.bpf.o")))

# Maps the fixtures pin by name (LIBBPF_PIN_BY_NAME): libbpf pins them under /sys/fs/bpf.
PINNED_BY_NAME = {"pin_by_name": "xnf_pinned_cnt", "pin_by_name_incompat": "xnf_pinned_cnt"}


def fixture_name(path):
    return os.path.basename(path)[: -len(".bpf.o")]


def bpftool_libbpf_version():
    out = subprocess.run(["bpftool", "version"], capture_output=True, text=True).stdout
    found = re.search(r"libbpf v(\d+)\.(\d+)", out)
    return (int(found.group(1)), int(found.group(2))) if found else (0, 0)


def special_cases():
    """fixture -> ("xnf-only" | "bpftool-only" | extra bpftool args, reason)."""
    cases = {
        "legacy_maps": ("xnf-only", "libbpf >= 1.0 refuses legacy SEC(\"maps\") definitions"),
        "legacy_iproute2": ("xnf-only", "libbpf >= 1.0 refuses legacy SEC(\"maps\") definitions"),
    }
    if bpftool_libbpf_version() < (1, 3):
        cases["tc_counter"] = (["type", "tc"], "libbpf < 1.3 does not know tcx/* sections; "
                               "every program in it is SCHED_CLS")
        cases["sections"] = ("skip", "libbpf < 1.3 does not know tcx/* sections and the "
                             "object mixes program types, so `type` cannot stand in")
    return cases


@pytest.fixture(scope="module")
def sys_bpffs():
    """/sys/fs/bpf as bpffs, where libbpf pins by-name maps (mounted here if missing, and
    unmounted again at the end)."""
    if shutil.which("bpftool") is None:
        pytest.fail("bpftool not found: install it (apt-get install bpftool) for the oracle tests")
    with open("/proc/mounts") as f:
        mounted = any(line.split()[1:3] == ["/sys/fs/bpf", "bpf"] for line in f)
    if not mounted:
        subprocess.run(["mount", "-t", "bpf", "bpf", "/sys/fs/bpf"], check=True)
    try:
        yield "/sys/fs/bpf"
    finally:
        if not mounted:
            subprocess.run(["umount", "/sys/fs/bpf"], check=False)


@pytest.fixture
def by_name_pins(sys_bpffs, request):
    """Removes the by-name pins a load made, but never one that existed before the test."""
    name = PINNED_BY_NAME.get(fixture_name(request.node.callspec.params["path"]))
    pin = os.path.join(sys_bpffs, name) if name else None
    if pin and os.path.exists(pin):
        pytest.fail(f"{pin} exists already; remove it (left by another run?) before this test")
    try:
        yield pin
    finally:
        if pin and os.path.exists(pin):
            os.unlink(pin)


def bpftool_accepts(path, sys_bpffs, extra=()):
    pin_dir = os.path.join(sys_bpffs, f"xnf-test-{uuid.uuid4().hex[:12]}")
    try:
        res = subprocess.run(["bpftool", "prog", "loadall", path, pin_dir, *extra],
                             capture_output=True, text=True)
        return res.returncode == 0, res.stderr.strip().splitlines()[-3:]
    finally:
        shutil.rmtree(pin_dir, ignore_errors=True)


def xnf_accepts(path, by_name_pin):
    """Parse and load with xnf, pinning by-name maps where libbpf would; refusals are typed."""
    try:
        spec = xnf.open_object(path)
        if by_name_pin:
            for m in spec.maps.values():
                if m.pinning:
                    m.pin_path = by_name_pin
        coll = xnf.load(spec)
    except errors.XnfError as err:
        return False, str(err)
    coll.close()
    return True, ""


def xnf_cli_accepts(path, by_name_pin):
    """``xnf prog load OBJ``: exit status 0 iff the object loads (by-name pins go to /sys/fs/bpf)."""
    if by_name_pin and os.path.exists(by_name_pin):
        os.unlink(by_name_pin)
    res = subprocess.run([sys.executable, "-m", "xnf.cli.main", "prog", "load", path],
                         capture_output=True, text=True)
    return res.returncode == 0, res.stderr.strip()


@pytest.mark.root
@pytest.mark.parametrize("path", OBJECTS, ids=fixture_name)
def test_bpftool_and_xnf_agree(sys_bpffs, by_name_pins, path):
    how, reason = special_cases().get(fixture_name(path), (None, ""))
    if how == "skip":
        pytest.skip(f"bpftool cannot judge this object: {reason}")
    extra = how if isinstance(how, list) else ()

    by_bpftool, bpftool_err = bpftool_accepts(path, sys_bpffs, extra)
    if by_name_pins and os.path.exists(by_name_pins):
        os.unlink(by_name_pins)  # start xnf from the same clean state bpftool had
    by_xnf, xnf_err = xnf_accepts(path, by_name_pins)
    by_cli, cli_err = xnf_cli_accepts(path, by_name_pins)
    assert by_cli == by_xnf, f"`xnf prog load` and xnf.load() disagree: {cli_err or xnf_err}"

    if how == "xnf-only":
        assert (by_bpftool, by_xnf) == (False, True), reason
    elif how == "bpftool-only":
        assert (by_bpftool, by_xnf) == (True, False), reason
    else:
        assert by_bpftool == by_xnf, (
            f"bpftool {'accepts' if by_bpftool else 'rejects'} {fixture_name(path)} "
            f"({bpftool_err}), xnf {'accepts' if by_xnf else 'rejects'} it ({xnf_err})")


@pytest.mark.root
def test_bpftool_refuses_an_incompatible_pin_too(sys_bpffs):
    """The pin-by-name refusal xnf must make is also what libbpf does."""
    pin = os.path.join(sys_bpffs, PINNED_BY_NAME["pin_by_name"])
    if os.path.exists(pin):
        pytest.fail(f"{pin} exists already; remove it before this test")
    try:
        ok, _ = bpftool_accepts(os.path.join(ROOT, "tests", "bpf", "pin_by_name.bpf.o"), sys_bpffs)
        assert ok and os.path.exists(pin)
        ok, _ = bpftool_accepts(os.path.join(ROOT, "tests", "bpf", "pin_by_name_incompat.bpf.o"),
                                sys_bpffs)
        assert not ok
    finally:
        if os.path.exists(pin):
            os.unlink(pin)
