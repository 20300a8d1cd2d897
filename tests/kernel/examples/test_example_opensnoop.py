"""examples/opensnoop.py against /usr/sbin/opensnoop: the same opens of one process."""
import subprocess
import sys

import pytest

from side_by_side import side_by_side

pytestmark = pytest.mark.root

# The child waits (its start-up opens done) until both tools are attached, then opens a file
# that is there and one that is not.
CHILD = """
import os, sys
print("ready", flush=True)
there, missing = sys.stdin.readline().split()
os.close(os.open(there, os.O_RDONLY))
try:
    os.open(missing, os.O_RDONLY)
except FileNotFoundError:
    pass
print("done", flush=True)
sys.stdin.readline()
"""


def test_opensnoop_prints_the_opens_the_tool_prints(tmp_path):
    """Filtered to the child's pid (-p, in the kernel): both print the same two lines (pid,
    comm, fd, errno, path: nothing differs); the missing file fails with ENOENT (2)."""
    there = tmp_path / "xnf-opensnoop-there"
    there.write_text("x")
    missing = tmp_path / "xnf-opensnoop-missing"
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "ready\n"
        with side_by_side("opensnoop.py", "opensnoop", args=["-p", str(child.pid)]) as (ours, theirs):
            child.stdin.write(f"{there} {missing}\n")
            child.stdin.flush()
            assert child.stdout.readline() == "done\n"

            def mine(lines):
                return [line for line in lines if str(tmp_path) in line]

            for side in (ours, theirs):
                side.wait_for(lambda lines: len(mine(lines)) >= 2)
            ours_lines, theirs_lines = ours.stop(), theirs.stop()
        child.communicate("\n", timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert mine(ours_lines) == mine(theirs_lines), (ours_lines, theirs_lines)
    (ok, failed) = [line.split() for line in mine(ours_lines)]
    assert ok[0] == failed[0] == str(child.pid) and ok[4] == str(there) and failed[4] == str(missing)
    assert int(ok[2]) >= 0 and ok[3] == "0" and (failed[2], failed[3]) == ("-1", "2")
