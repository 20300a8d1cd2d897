"""Where uprobes and USDT probes go (xnf.core.attach.links), checked against binutils:
``readelf -n`` for the ``.note.stapsdt`` notes, ``nm``/``readelf -l`` for function offsets.
No root needed: only files are read."""
import os
import re
import shutil
import subprocess
import sys

import pytest

from xnf.core.attach import links
from xnf.core.errors import AttachError

pytestmark = pytest.mark.skipif(not shutil.which("readelf") or not shutil.which("nm"), reason="needs binutils")


def run(*args):
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


def load_segments(binary):
    """(vaddr, offset, filesz) of each LOAD segment, from readelf -lW."""
    segs = []
    for line in run("readelf", "-lW", binary).splitlines():
        f = line.split()
        if f and f[0] == "LOAD":
            segs.append((int(f[2], 16), int(f[1], 16), int(f[4], 16)))
    return segs


def to_offset(binary, vaddr):
    for va, off, size in load_segments(binary):
        if va <= vaddr < va + size:
            return vaddr - va + off
    raise AssertionError(f"{vaddr:#x} not in a LOAD segment of {binary}")


def python_with_usdt():
    for b in (os.path.realpath(sys.executable), "/usr/bin/python3"):
        if os.path.exists(b) and "stapsdt" in run("readelf", "-n", b):
            return os.path.realpath(b)
    pytest.skip("no Python here has USDT notes (built without --with-dtrace)")


def test_usdt_notes_equal_readelf():
    binary = python_with_usdt()
    want = re.findall(r"Provider: (\S+)\s+Name: (\S+)\s+Location: (0x[0-9a-f]+), Base: (0x[0-9a-f]+), "
                      r"Semaphore: (0x[0-9a-f]+)\s+Arguments: ?(.*)", run("readelf", "-n", binary))
    got = links.usdt_notes(binary)
    assert len(got) == len(want) > 0
    for note, (provider, name, loc, _base, sema, args) in zip(got, want):
        assert (note.provider, note.name, note.args) == (provider, name, args.strip())
        assert note.offset == to_offset(binary, int(loc, 16))  # no .stapsdt.base adjustment: not prelinked
        if int(sema, 16):
            assert note.semaphore_offset == to_offset(binary, int(sema, 16))


def test_function_offset_equals_nm():
    libc = next((p for p in ("/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6")
                 if os.path.exists(p)), None)
    if libc is None:
        pytest.skip("no x86_64 glibc at the Debian path")
    line = next(line for line in run("nm", "-D", "--defined-only", libc).splitlines() if re.search(r" getpid(@@?\S+)?$", line))
    assert links.function_offset(libc, "getpid") == to_offset(libc, int(line.split()[0], 16))
    assert "getpid" in links.function_names(libc)


def test_missing_function_and_non_elf_are_attach_errors():
    with pytest.raises(AttachError, match="has no function 'xnf_nope'"):
        links.function_offset(sys.executable, "xnf_nope")
    with pytest.raises(AttachError, match="as an ELF file"):
        links.usdt_notes(__file__)
