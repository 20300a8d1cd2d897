"""Every committed BPF object is exactly what tools/build-bpf makes from its source.

Users get the committed ``*.bpf.o`` and need no clang, so a source edited without
rebuilding would ship a stale program; this catches it.
"""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "tools", "build-bpf")


def committed_sources():
    """The ``*.bpf.c`` files git tracks (falls back to a walk outside a git checkout)."""
    try:
        out = subprocess.run(["git", "ls-files", "*.bpf.c"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        out = [os.path.relpath(os.path.join(d, f), ROOT)
               for top in ("xnf", "tests", "bench")
               for d, _, files in os.walk(os.path.join(ROOT, top))
               for f in files if f.endswith(".bpf.c")]
    return sorted(out)


@pytest.fixture(scope="module")
def clang():
    name = os.environ.get("CLANG", "clang")
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: install clang (apt-get install clang) to check the "
                    "committed BPF objects against their sources; CI installs it")
    return path


@pytest.mark.parametrize("source", committed_sources())
def test_committed_object_matches_source(clang, source):
    res = subprocess.run([sys.executable, BUILD, "--check", source], cwd=ROOT,
                         capture_output=True, text=True)
    assert res.returncode == 0, (
        f"{source}: committed object is stale or missing; rebuild with "
        f"`tools/build-bpf {source}` and commit the .bpf.o\n{res.stderr}")
