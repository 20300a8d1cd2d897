"""tools/vm/build-kernel run twice at once (two CI jobs, a test run and `tox -e vm`) is safe.

The compile is replaced by the script's test stand-in (``XNF_VM_FAKE_BUILD``: an image of
ten lines naming the building process; ``until:PATH`` holds it half-written until the
test creates PATH, so no outcome depends on how fast the machine is), so
these tests exercise exactly what was broken, in a few seconds: the lock on the cache,
the private build directory, the atomic install and the one-line failure. The cache is
a temporary ``XDG_CACHE_HOME``, never the real one.

What they prove: a second run waits for the first (and says so), then reuses its image
instead of building into the same directory; with ``--force`` the two builds take turns
and the image is whole and from one builder; a failed or killed build installs nothing,
leaves no traceback, and the next run cleans up after it. What they do not prove: that
the real ``make`` steps are right (``tox -e vm`` builds and boots the real kernel).
"""
import glob
import os
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD_KERNEL = os.path.join(ROOT, "tools", "vm", "build-kernel")


def start(cache_home, seconds, *args):
    env = dict(os.environ, XDG_CACHE_HOME=str(cache_home), XNF_VM_FAKE_BUILD=str(seconds))
    return subprocess.Popen([sys.executable, BUILD_KERNEL, "--no-btf", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc):
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def cache_of(cache_home):
    return os.path.join(str(cache_home), "xnf", "vm")


def wait_for_build_dir(cache_home, timeout=20):
    """Until the first run is inside its build (it holds the lock by then)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dirs = glob.glob(os.path.join(cache_of(cache_home), "build-*.tmp-*"))
        if dirs:
            return dirs
        time.sleep(0.02)
    raise AssertionError("the first build never started")


def waits_for_the_lock(proc):
    """The first line the second run prints: it found the lock taken (it blocks after)."""
    line = proc.stderr.readline()
    assert "waiting for another build" in line, line
    return line


def whole_image_by(path, pid):
    with open(path) as f:
        lines = f.read().splitlines()
    return lines == [f"fake kernel built by {pid} line {i}" for i in range(10)]


def leftovers(cache_home):
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(cache_of(cache_home), "*.tmp*")))


def test_second_run_waits_then_reuses_the_image(tmp_path):
    release = tmp_path / "release"
    first = start(tmp_path, f"until:{release}")
    wait_for_build_dir(tmp_path)
    second = start(tmp_path, 0.2)
    waited = waits_for_the_lock(second)
    release.touch()
    rc1, out1, err1 = finish(first)
    rc2, out2, err2 = finish(second)
    err2 = waited + err2
    assert rc1 == 0 and rc2 == 0, (err1, err2)
    image = out1.strip()
    assert out2.strip() == image and os.path.basename(image).startswith("bzImage-")
    assert f"waiting for another build (pid {first.pid})" in err2, err2
    assert "built" not in err2                      # it found the image instead of building again
    assert whole_image_by(image, first.pid)
    assert leftovers(tmp_path) == []


def test_forced_runs_take_turns_and_install_a_whole_image(tmp_path):
    release = tmp_path / "release"
    first = start(tmp_path, f"until:{release}", "--force")
    wait_for_build_dir(tmp_path)
    second = start(tmp_path, 0.2, "--force")
    waited = waits_for_the_lock(second)
    release.touch()
    rc1, out1, err1 = finish(first)
    rc2, out2, err2 = finish(second)
    err2 = waited + err2
    assert rc1 == 0 and rc2 == 0, (err1, err2)
    assert "waiting for another build" in err2 and "built" in err1 and "built" in err2
    assert whole_image_by(out2.strip(), second.pid)  # the later build, whole, not interleaved
    assert leftovers(tmp_path) == []


def test_failed_build_is_one_line_and_installs_nothing(tmp_path):
    rc, out, err = finish(start(tmp_path, "fail"))
    assert rc == 1 and out == ""
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith("build-kernel: `make bzImage` failed with status 2") and "nothing was installed" in err
    assert not glob.glob(os.path.join(cache_of(tmp_path), "bzImage-*")) and leftovers(tmp_path) == []


def test_killed_build_leaves_no_image_and_the_next_run_recovers(tmp_path):
    victim = start(tmp_path, f"until:{tmp_path / 'never'}")
    wait_for_build_dir(tmp_path)
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate(timeout=30)
    assert not glob.glob(os.path.join(cache_of(tmp_path), "bzImage-*"))
    assert leftovers(tmp_path)                        # its build directory is still there ...
    rc, out, err = finish(start(tmp_path, 0.2))
    assert rc == 0 and "waiting" not in err, err      # ... but its lock died with it
    assert whole_image_by(out.strip(), int(open(os.path.join(cache_of(tmp_path), "build.lock")).read()))
    assert leftovers(tmp_path) == []                  # and the next run removed it


def test_each_kernel_choice_has_its_own_image_and_the_qdisc_kernel_needs_btf(tmp_path):
    """``--kernel``: the two kernels never share a cached image; the bpf-qdisc kernel refuses
    ``--no-btf`` in one line (NET_SCH_BPF needs BTF); an unknown name is a usage error."""
    def run(*args):
        # the stand-in: no source package needed (a clean machine runs unit tests before
        # tools/vm/install); the key still hashes each kernel's options
        env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path), XNF_VM_FAKE_BUILD="1")
        return subprocess.run([sys.executable, BUILD_KERNEL, *args], env=env, text=True, capture_output=True)

    default = run("--print-path")
    qdisc = run("--kernel", "bpf-qdisc", "--print-path")
    assert default.returncode == 0 and qdisc.returncode == 0, (default.stderr, qdisc.stderr)
    paths = {default.stdout.strip(), qdisc.stdout.strip()}
    assert len(paths) == 2 and all(p.startswith(cache_of(tmp_path)) for p in paths)
    assert run("--kernel", "6.1", "--print-path").stdout == default.stdout
    refused = run("--kernel", "bpf-qdisc", "--no-btf", "--print-path")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines() == [refused.stderr.strip()] and "DEBUG_INFO_BTF" in refused.stderr
    assert run("--kernel", "nope", "--print-path").returncode == 2
