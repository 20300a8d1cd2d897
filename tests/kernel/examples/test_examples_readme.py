"""Every command examples/README.md shows, run as shown (the pin directory made unique)."""
import os
import re
import secrets
import shutil
import subprocess

import pytest

from side_by_side import EXAMPLES, REPO, Watched, tool_binary

pytestmark = pytest.mark.root

README = os.path.join(EXAMPLES, "README.md")
DOC_PIN = "/sys/fs/bpf/xnf-example"


def documented_commands():
    """``(command, comment)`` of each line of the README's ``sh`` blocks."""
    with open(README) as f:
        text = f.read()
    out = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.splitlines():
            command, _, comment = line.partition("#")
            if command.strip():
                out.append((command.strip(), comment.strip()))
    return out


def test_readme_shows_commands():
    names = " ".join(c for c, _ in documented_commands())
    for example in ("xdp_count.py", "xdp_count.bpf.o", "execsnoop.py", "opensnoop.py", "tcpstates.py", "runqlat.py"):
        assert example in names


def test_each_documented_command_runs():
    """Commands that stream until Ctrl-C get SIGINT once they print their header; the
    others must end by themselves with status 0. The pin directory gets a unique name."""
    pin = f"/sys/fs/bpf/xnf-example-{os.getpid()}-{secrets.token_hex(3)}"
    try:
        for command, comment in documented_commands():
            argv = command.replace(DOC_PIN, pin).split()
            if argv[0].startswith("examples/") and argv[0] != "examples/xdp_count.py":
                tool_binary(os.path.basename(argv[0])[:-len(".py")])
            if argv[0] == "xnf":
                argv[0] = shutil.which("xnf") or pytest.fail("the xnf command is not installed (pip install -e .)")
            if "Ctrl-C" in comment:
                proc = Watched(argv, ready="PID")
                try:
                    proc.wait_ready()
                    proc.stop()
                finally:
                    proc.kill()
                continue
            res = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300)
            assert res.returncode == 0, (command, res.stdout, res.stderr)
            if argv[0] == "examples/xdp_count.py":
                assert res.stdout.count("XDP_PASS") == 3 and res.stdout.count("XDP_DROP") == 2, res.stdout
                assert "counters[0] = 5" in res.stdout, res.stdout
            if "map dump" in command:
                assert "1 element(s) in map 'counters'" in res.stdout, res.stdout
            if argv[0] == "examples/runqlat.py":
                assert res.stdout.count("usecs") >= 1, res.stdout
        assert not os.path.exists(pin), "the README's rm -r leaves nothing pinned"
    finally:
        if os.path.exists(pin):
            shutil.rmtree(pin, ignore_errors=True)


def test_readme_object_examples_run():
    """README.md's Python example and its `xnf prog load` / `xnf map dump` lines name
    examples/xdp_count.bpf.o and run as written (the pin directory made unique)."""
    with open(os.path.join(REPO, "README.md")) as f:
        text = f.read()
    python = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "open_object" in b)
    assert "examples/xdp_count.bpf.o" in python
    res = subprocess.run(["python3", "-c", python], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.split() == ["2"], (res.stdout, res.stderr)  # 2: XDP_PASS

    lines = [line.partition("#")[0].strip() for block in re.findall(r"```sh\n(.*?)```", text, re.S)
             for line in block.splitlines()]
    object_lines = [line for line in lines if line.startswith(("xnf prog load", "xnf map dump"))]
    assert len(object_lines) == 2 and "examples/xdp_count.bpf.o" in object_lines[0], object_lines
    pin = f"/sys/fs/bpf/xnf-readme-{os.getpid()}-{secrets.token_hex(3)}"
    try:
        for line in object_lines:
            argv = line.replace("/sys/fs/bpf/mine", pin).split()
            res = subprocess.run([shutil.which("xnf") or "xnf", *argv[1:]], cwd=REPO, capture_output=True,
                                 text=True, timeout=120)
            assert res.returncode == 0, (line, res.stdout, res.stderr)
        assert "map 'counters'" in res.stdout, res.stdout
    finally:
        shutil.rmtree(pin, ignore_errors=True)
