"""bpftool as an independent oracle: for every fixture object, ``bpftool prog loadall``
and xnf's loader agree on whether the kernel accepts it.

Where the two differ on purpose the object is treated specially (see ``SPECIAL`` and
tests/bpf/README.md): bpftool's libbpf dropped legacy ``SEC("maps")`` in 1.0 and learnt
the ``tcx/*`` section names only in 1.3.

libbpf, and xnf's CLI like it, pin maps marked pin-by-name under /sys/fs/bpf. So that two
runs on one machine never meet at such a pin, bpftool and the CLI run in a private mount
namespace with a fresh bpffs on /sys/fs/bpf (``unshare -m``), and xnf.load pins into the
private bpffs of the ``bpffs`` fixture.
"""
import glob
import os
import re
import shutil
import subprocess
import sys

import pytest

import xnf
from xnf.core import errors

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OBJECTS = sorted(glob.glob(os.path.join(ROOT, "tests", "bpf", "*.bpf.o"))
                 + glob.glob(os.path.join(ROOT, "bench", "bpf", "*.bpf.o")))


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
def bpftool():
    if shutil.which("bpftool") is None:
        pytest.fail("bpftool not found: install it (apt-get install bpftool) for the oracle tests")


def in_private_bpffs(script, *args):
    """``sh -c script`` (``$1``... are ``args``) in a new mount namespace whose /sys/fs/bpf is a
    fresh bpffs: what it pins there is nobody else's and goes with the namespace."""
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                        "mount -t bpf bpf /sys/fs/bpf || exit 97\n" + script, "sh", *args],
                       capture_output=True, text=True, timeout=300)
    if r.returncode == 97:
        pytest.skip("cannot mount a bpf filesystem in a private mount namespace")
    return r


def bpftool_accepts(path, extra=()):
    res = in_private_bpffs('bpftool prog loadall "$@"', path, "/sys/fs/bpf/progs", *extra)
    return res.returncode == 0, res.stderr.strip().splitlines()[-3:]


def xnf_accepts(path, bpffs):
    """Parse and load with xnf, pinning by-name maps in ``bpffs`` (where libbpf would use
    /sys/fs/bpf); refusals are typed."""
    try:
        coll = xnf.load(xnf.open_object(path), pin_root=bpffs)
    except errors.XnfError as err:
        return False, str(err)
    coll.close()
    return True, ""


def xnf_cli_accepts(path):
    """``xnf prog load OBJ``: exit status 0 iff the object loads (by-name pins go to /sys/fs/bpf)."""
    res = in_private_bpffs('"$@"', sys.executable, "-m", "xnf.cli.main", "prog", "load", path)
    return res.returncode == 0, res.stderr.strip()


@pytest.mark.root
@pytest.mark.parametrize("path", OBJECTS, ids=fixture_name)
def test_bpftool_and_xnf_agree(bpftool, bpffs, path):
    how, reason = special_cases().get(fixture_name(path), (None, ""))
    if how == "skip":
        pytest.skip(f"bpftool cannot judge this object: {reason}")
    extra = how if isinstance(how, list) else ()

    by_bpftool, bpftool_err = bpftool_accepts(path, extra)
    by_xnf, xnf_err = xnf_accepts(path, bpffs)
    by_cli, cli_err = xnf_cli_accepts(path)
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
def test_bpftool_refuses_an_incompatible_pin_too(bpftool):
    """The pin-by-name refusal xnf must make is also what libbpf does."""
    res = in_private_bpffs('bpftool prog loadall "$1" /sys/fs/bpf/a || exit 1\n'
                           'test -e /sys/fs/bpf/xnf_pinned_cnt || exit 2\n'
                           'bpftool prog loadall "$2" /sys/fs/bpf/b && exit 3\n'
                           'exit 0',
                           os.path.join(ROOT, "tests", "bpf", "pin_by_name.bpf.o"),
                           os.path.join(ROOT, "tests", "bpf", "pin_by_name_incompat.bpf.o"))
    assert res.returncode == 0, {1: "bpftool refused pin_by_name", 2: "bpftool did not pin xnf_pinned_cnt by name",
                                 3: "bpftool accepted the incompatible pin"}.get(res.returncode, res.stderr)
