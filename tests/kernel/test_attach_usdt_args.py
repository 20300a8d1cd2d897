"""USDT arguments read through libbpf's usdt.bpf.h (tests/bpf/usdt_args.bpf.c): attach_usdt
parses each note's argument string, writes the spec where bpf_usdt_arg() looks for it and
names it in the uprobe's BPF cookie.

Targets: a small C program with <sys/sdt.h> probes (systemtap-sdt-dev), built here with gcc
at -O0 (arguments in memory: ``-4@-20(%rbp)``) and -O2 (in registers: ``-4@%eax``,
constants ``-4@$-5``), and CPython's own python:gc__start (``-4@112(%rsp)``)."""
import os
import shutil
import subprocess
import sys

import pytest

import xnf
from xnf.core.attach import links

pytestmark = pytest.mark.root

OBJ = os.path.join(os.path.dirname(__file__), "..", "bpf", "usdt_args.bpf.o")
SDT_H = ("/usr/include/sys/sdt.h", "/usr/include/x86_64-linux-gnu/sys/sdt.h")
TARGET = r"""
#include <stdio.h>
#include <sys/sdt.h>

struct pair { long a; int b; };

int main(void)
{
	volatile int small = -7;
	volatile long big = 1234567890123L;
	volatile short s = -3;
	volatile unsigned char u = 250;
	struct pair p = { 42, -5 };
	char line[16];
	int si; long bi; short ss; unsigned char uu;

	printf("%lu\n", (unsigned long)&p);
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	si = small; bi = big; ss = s; uu = u;
	DTRACE_PROBE6(xnftest, six, si, bi, ss, uu, p.b, &p);
	printf("fired\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	DTRACE_PROBE1(xnftest, constant, -5);
	printf("fired\n");
	fflush(stdout);
	return 0;
}
"""


def _target(tmp_path, opt):
    if shutil.which("gcc") is None or not any(os.path.exists(h) for h in SDT_H):
        pytest.skip("no gcc or no <sys/sdt.h> to build a USDT target (apt-get install gcc systemtap-sdt-dev)")
    src = tmp_path / "usdt_target.c"
    src.write_text(TARGET)
    out = tmp_path / f"usdt_target{opt}"
    subprocess.run(["gcc", opt, "-o", str(out), str(src)], check=True, capture_output=True)
    return str(out)


def _seen(coll):
    return coll.maps["seen"][0]


@pytest.mark.parametrize("opt", ["-O0", "-O2"])
def test_usdt_arguments_are_read_as_the_probe_passed_them(tmp_path, opt):
    binary = _target(tmp_path, opt)
    notes = {n.name: n.args for n in links.usdt_notes(binary)}
    child = subprocess.Popen([binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        address = int(child.stdout.readline())
        with xnf.load(OBJ) as coll:
            prog = coll.programs["usdt_args"]
            atts = links.attach_usdt(prog, binary, "xnftest", "six", pid=child.pid, specs=coll, cookie=0x1234)
            atts += links.attach_usdt(prog, binary, "xnftest", "constant", pid=child.pid, specs=coll, cookie=7)
            try:
                child.stdin.write("go\n")
                child.stdin.flush()
                assert child.stdout.readline() == "fired\n"
                s = _seen(coll)
                assert (s.hits, s.arg_cnt, s.cookie) == (1, 6, 0x1234), (notes, s)
                assert s.args == [-7, 1234567890123, -3, 250, -5, address], (notes["six"], s.args)
                assert s.errors == [0] * 6, s.errors
                child.stdin.write("go\n")
                child.stdin.flush()
                assert child.stdout.readline() == "fired\n"
                s = _seen(coll)
                assert (s.hits, s.arg_cnt, s.cookie, s.args[0]) == (2, 1, 7, -5), (notes["constant"], s)
                assert s.errors[1] != 0  # past arg_cnt: bpf_usdt_arg() refuses (-ENOENT)
            finally:
                for att in atts:
                    att.detach()
        assert child.wait(30) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_usdt_argument_of_python_gc_start():
    """CPython's python:gc__start passes the generation collected, in memory (-4@112(%rsp))."""
    binary = next((b for b in (os.path.realpath(sys.executable), "/usr/bin/python3")
                   if os.path.exists(b) and any(n.name == "gc__start" for n in links.usdt_notes(b))), None)
    if binary is None:
        pytest.skip("no Python here has the python:gc__start USDT note (built without --with-dtrace)")
    # no collection but ours while attached: automatic ones are off before the probe is, and
    # the child waits before exiting (its shutdown collects) until the check is done
    script = "import gc, sys; gc.disable(); print('ready', flush=True); sys.stdin.readline(); gc.collect(1); " \
             "print('done', flush=True); sys.stdin.readline()"
    child = subprocess.Popen([binary, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "ready\n"
        with xnf.load(OBJ) as coll:
            atts = links.attach_usdt(coll.programs["usdt_args"], binary, "python", "gc__start", pid=child.pid,
                                     specs=coll.maps[links.USDT_SPECS_MAP])
            try:
                child.stdin.write("go\n")
                child.stdin.flush()
                assert child.stdout.readline() == "done\n"
                s = _seen(coll)
                assert (s.hits, s.arg_cnt, s.args[0], s.errors[0]) == (1, 1, 1, 0), s
            finally:
                for att in atts:
                    att.detach()
        child.communicate("\n", timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
