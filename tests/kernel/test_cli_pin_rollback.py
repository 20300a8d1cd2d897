"""`xnf prog load --pin DIR` refused at any step leaves no folder it created (issue 9), and
`xnf map dump DIR` says the path is a directory instead of "Permission denied"."""
import os

import pytest

from test_cli import obj, one_line_error, pinned_files, xnf

pytestmark = pytest.mark.root


def entries(path):
    """Everything under ``path`` (directories too), without the kernel's ``*.debug`` files."""
    out = []
    for dirpath, dirs, files in os.walk(path):
        out += [os.path.relpath(os.path.join(dirpath, n), path) for n in dirs + files if not n.endswith(".debug")]
    return sorted(out)


def test_refused_pin_outside_bpffs_creates_nothing(tmp_path):
    target = tmp_path / "new" / "pins"
    one_line_error(xnf("prog", "load", obj("xdp_counter"), "--pin", str(target)), "not on a bpf filesystem")
    assert not (tmp_path / "new").exists()


def test_verifier_rejection_leaves_no_pin_folder(bpffs):
    r = xnf("prog", "load", obj("verifier_reject"), "--pin", os.path.join(bpffs, "a", "b"))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    line, source = r.stderr.strip().splitlines()  # the error, then the C line it stopped in
    assert "rejected by the verifier" in line and "verifier_reject.bpf.c:32:" in source
    assert entries(bpffs) == []


def test_pin_conflict_removes_only_the_folders_it_created(bpffs):
    """DIR/maps/* exist (someone else's); the load pins its program into DIR/progs, which it
    creates, then fails on the first map: its pin and DIR/progs go, DIR and DIR/maps stay."""
    pin = os.path.join(bpffs, "shared")
    assert xnf("prog", "load", obj("xdp_counter"), "--pin", pin).returncode == 0
    os.unlink(os.path.join(pin, "progs", "xdp_count"))
    os.rmdir(os.path.join(pin, "progs"))
    before = entries(bpffs)
    assert "shared/maps" in before and not any(e.startswith("shared/progs") for e in before)
    one_line_error(xnf("prog", "load", obj("xdp_counter"), "--pin", pin), "already pinned")
    assert entries(bpffs) == before


def test_refused_pin_keeps_what_was_there(bpffs):
    """The first pin fails (a directory holds its name): the folder it made (maps) goes,
    the ones that were there stay."""
    os.makedirs(os.path.join(bpffs, "x", "y", "progs", "xdp_count"))
    one_line_error(xnf("prog", "load", obj("xdp_counter"), "--pin", os.path.join(bpffs, "x", "y")))
    assert entries(bpffs) == ["x", "x/y", "x/y/progs", "x/y/progs/xdp_count"]


def test_map_dump_of_a_directory_says_so(bpffs):
    line = one_line_error(xnf("map", "dump", bpffs), "is a directory, not a pinned map", "map id")
    assert "Permission denied" not in line
