"""The attach protocol of xnf.core.kernel.pin without root: lock, staging directory and rename,
leftovers, records and the test pause, on an ordinary temporary directory (the protocol
needs only flock, mkdir and rename; pins are exercised in tests/kernel/test_attach_protocol.py).
"""
import os
import subprocess
import sys
import textwrap
import threading

import pytest

from xnf.core.attach.pinroot import AlreadyAttachedError, BrokenInstanceError, PinRoot
from xnf.core.errors import AttachError, PinError
from xnf.core.kernel.pin import InterfaceLock, read_record, write_record

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))


@pytest.fixture
def root(tmp_path):
    return PinRoot("veth0", "nf", netns="blue", root=str(tmp_path))


def hold_lock(path):
    """A child process holding the flock on ``path`` until killed."""
    code = textwrap.dedent(f"""
        import fcntl, os, sys, time
        fd = os.open({path!r}, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(fd, fcntl.LOCK_EX)
        print("held", flush=True)
        time.sleep(60)
    """)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    return child


def test_commit_publishes_the_instance_whole(root):
    with root.attaching() as txn:
        assert os.path.basename(txn.path) == f"nf~attaching~{os.getpid()}"
        txn.write_record("config", {"a": 1})
        assert not root.exists() and root.leftovers()[0].state == "attaching"
        assert root.busy() is not None and root.broken() == []  # its maker is alive
        txn.commit()
    assert root.exists() and root.read_record("config") == {"a": 1}
    assert root.leftovers() == [] and root.busy() is None


def test_failure_removes_only_its_own_staging(root):
    with pytest.raises(RuntimeError):
        with root.attaching() as txn:
            txn.write_record("config", {"a": 1})
            raise RuntimeError("load failed")
    assert not os.path.exists(root.ifdir)  # nothing left, not even the empty interface directory
    with root.attaching() as txn:
        txn.commit()
    with pytest.raises(AlreadyAttachedError, match="already attached.*xnf detach nf veth0 --netns blue") as e:
        with root.attaching():
            pass
    assert isinstance(e.value, PinError) and isinstance(e.value, AttachError)
    assert root.exists()  # the refused attempt left the instance alone


def test_leftover_of_a_dead_process_is_broken_and_cleared(root):
    with root.attaching() as txn:
        txn.write_record("config", {"a": 1})
        stale = txn.path.replace(str(os.getpid()), "999999")
        os.rename(txn.path, stale)  # as if a process 999999 had been killed here
        txn.path = None
    (left,) = root.broken()
    assert left.pid == 999999 and left.state == "attaching" and "died while attaching" in left.describe()
    assert [(r.ifname, r.nf, r.netns) for r in PinRoot.scan(root.root)] == [("veth0", "nf", "blue")]
    with pytest.raises(BrokenInstanceError, match="broken instance.*pid 999999.*xnf detach nf veth0 --netns blue"):
        with root.attaching():
            pass
    root.remove_all()
    assert root.leftovers() == [] and not root.exists()


def test_a_leftover_is_busy_while_the_lock_is_held(root):
    os.makedirs(os.path.join(root.ifdir, "nf~detaching~4242"))
    child = hold_lock(root.ifdir)
    try:
        assert root.broken() == [] and root.busy() == child.pid
    finally:
        child.kill()
        child.wait()
    assert [item.pid for item in root.broken()] == [4242] and root.busy() is None


def test_lock_waits_then_names_the_holder(root):
    os.makedirs(root.ifdir)
    child = hold_lock(root.ifdir)
    try:
        with pytest.raises(PinError, match=f"locked by another xnf process \\(pid {child.pid}\\)"):
            InterfaceLock(root.ifdir, "veth0", timeout=0.2).acquire()
    finally:
        child.kill()
        child.wait()
    with InterfaceLock(root.ifdir, "veth0", timeout=0.2):
        with root.locked():  # the same thread nests
            pass
        got = []
        other = threading.Thread(target=lambda: got.append(pytest.raises(
            PinError, InterfaceLock(root.ifdir, "veth0", timeout=0.1).acquire)))
        other.start()
        other.join()
        assert got  # another thread of the process waits like another process


def test_records_round_trip_and_bad_ones_are_named(tmp_path):
    path = str(tmp_path / "rec")
    write_record(path, {"kind": "x", "n": [1, 2]})
    write_record(path, {"kind": "y"})  # replaced
    assert read_record(path) == {"kind": "y"} and read_record(str(tmp_path / "none")) is None
    os.symlink("not json", str(tmp_path / "bad"))
    with pytest.raises(PinError, match="bad is not an xnf record"):
        read_record(str(tmp_path / "bad"))


def test_names_with_the_reserved_mark_are_refused(tmp_path):
    with pytest.raises(PinError, match="reserved"):
        PinRoot("veth0", "a~b", root=str(tmp_path))


def test_pause_hook_stops_at_its_step():
    code = ("from xnf.core.kernel.pin import checkpoint; "
            "checkpoint('elsewhere'); print('passed', flush=True); checkpoint('here')")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=dict(ENV, XNF_TEST_PAUSE_AT="here"))
    try:
        assert child.stdout.readline().strip() == "passed"
        assert child.stderr.readline() == f"xnf: test pause at here (pid {child.pid})\n"
        assert child.poll() is None  # it waits there to be killed
    finally:
        child.kill()
        child.wait()
