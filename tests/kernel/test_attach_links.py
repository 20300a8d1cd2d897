"""Tracing, cgroup, socket and iterator links (xnf.core.attach.links) fire where they are put.

Each test loads one program of tests/bpf/links.bpf.c, attaches it, triggers the hook and
checks that the program's counter in ``hits`` grew. Hooks that see every process count
only this test's process (``target_tgid``), so other processes calling getpid() do not
count; this process may call getpid() more than the test does (Python itself), so the
counters are checked with ``>=`` the number of triggers, never ``==``. A kind this
kernel refuses is skipped with the kernel's refusal in the reason.
"""
import contextlib
import ctypes
import gc
import os
import socket
import subprocess
import sys
import uuid

import pytest

import xnf
from xnf.core import uapi
from xnf.core.attach import links
from xnf.core.errors import AttachError, BPFError

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (CAP_BPF, CAP_PERFMON)")

OBJ = os.path.join(os.path.dirname(__file__), "..", "bpf", "links.bpf.o")
KINDS = ["tracepoint", "raw_tp", "tp_btf", "fentry", "kprobe", "kretprobe", "ksyscall", "kprobe_multi",
         "uprobe", "uretprobe", "usdt", "cgroup_skb", "sk_lookup", "sk_msg",
         "sk_skb", "uprobe_multi", "uprobe_s",
         "cgroup_sock", "cgroup_connect4"]
TRIGGERS = 20
libc = ctypes.CDLL("libc.so.6", use_errno=True)


@contextlib.contextmanager
def loaded(prog):
    spec = xnf.open_object(OBJ)
    spec.rodata["target_tgid"] = os.getpid()
    with xnf.load(spec, programs=[prog]) as coll:
        yield coll, coll.programs[prog]


def hits(coll, kind):
    return coll.maps["hits"][KINDS.index(kind)]


def call_getpid(n=TRIGGERS):
    for _ in range(n):
        libc.getpid()


def skip_if_refused(e, what):
    """Skip naming the kernel's refusal (a missing PMU or link kind), fail on anything else."""
    text = str(e)
    if "this kernel" in text:
        pytest.skip(f"{what}: {text}")
    raise e


@pytest.mark.parametrize("prog, kind, attach", [
    ("l_tracepoint", "tracepoint", lambda p: links.attach_tracepoint(p, "syscalls", "sys_enter_getpid")),
    ("l_raw_tp", "raw_tp", lambda p: links.attach_raw_tracepoint(p, "sys_enter")),
    ("l_tp_btf", "tp_btf", links.attach_trace),
], ids=["tracepoint", "raw_tp", "tp_btf"])
def test_syscall_tracepoints_fire(prog, kind, attach):
    with loaded(prog) as (coll, p):
        att = attach(p)
        with att:
            assert att.attached
            call_getpid()
            assert hits(coll, kind) >= TRIGGERS
        assert not att.attached
        before = hits(coll, kind)
        call_getpid()
        assert hits(coll, kind) == before, "still counting after detach"


@pytest.mark.parametrize("prog, kind, attach", [
    ("l_kprobe", "kprobe", lambda p: links.attach_kprobe(p, "__x64_sys_getpid")),
    ("l_kretprobe", "kretprobe", lambda p: links.attach_kprobe(p, "__x64_sys_getpid", retprobe=True)),
    ("l_ksyscall", "ksyscall", lambda p: links.attach_ksyscall(p, "getpid")),
    ("l_kprobe_multi", "kprobe_multi", lambda p: links.attach_kprobe_multi(p, ["__x64_sys_getpid"])),
], ids=["kprobe", "kretprobe", "ksyscall", "kprobe.multi"])
def test_kprobes_fire(prog, kind, attach):
    with loaded(prog) as (coll, p):
        try:
            att = attach(p)
        except AttachError as e:
            skip_if_refused(e, kind)
        with att:
            call_getpid()
            assert hits(coll, kind) >= TRIGGERS


def test_fentry_fires():
    try:
        ctx = loaded("l_fentry")
        coll, p = ctx.__enter__()
    except BPFError as e:
        if e.errno == 1:
            pytest.skip(f"this kernel refuses fentry programs at BPF_PROG_LOAD (EPERM): {e}")
        raise
    try:
        with links.attach_trace(p):
            call_getpid()
            assert hits(coll, "fentry") >= TRIGGERS
    finally:
        ctx.__exit__(None, None, None)


def libc_path():
    with open("/proc/self/maps") as f:
        for line in f:
            if "/libc.so" in line or "/libc-" in line:
                return line.split()[-1]
    pytest.skip("this process maps no libc.so")


@pytest.mark.parametrize("kind, retprobe", [("uprobe", False), ("uretprobe", True), ("uprobe_s", False)],
                         ids=["uprobe", "uretprobe", "uprobe.s"])
def test_uprobe_on_libc_fires(kind, retprobe):
    with loaded("l_" + kind) as (coll, p):
        with links.attach_uprobe(p, libc_path(), "getpid", retprobe=retprobe) as att:
            assert "getpid" in att.target
            call_getpid()
            assert hits(coll, kind) >= TRIGGERS


def test_uprobe_multi_on_libc_fires():
    """One link on getpid and getppid of libc: each call of either counts."""
    with loaded("l_uprobe_multi") as (coll, p):
        with links.attach_uprobe_multi(p, libc_path(), ["getpid", "getppid"]) as att:
            assert "2 functions" in att.target
            call_getpid()
            for _ in range(TRIGGERS):
                libc.getppid()
            assert hits(coll, "uprobe_multi") >= 2 * TRIGGERS


def test_usdt_on_python_fires():
    """CPython's USDT probe python:gc__start (semaphore-guarded: the kernel raises the
    semaphore while the uprobe is attached), in a child Python that runs gc.collect()
    five times; the uprobes are for the child's pid only."""
    binary = next((b for b in (os.path.realpath(sys.executable), "/usr/bin/python3")
                   if os.path.exists(b) and any(n.name == "gc__start" for n in links.usdt_notes(b))), None)
    if binary is None:
        pytest.skip("no Python here has the python:gc__start USDT note (built without --with-dtrace)")
    child = subprocess.Popen([binary, "-c", "import gc, sys; sys.stdin.readline(); [gc.collect() for _ in range(5)]"],
                             stdin=subprocess.PIPE)
    try:
        with loaded("l_usdt") as (coll, p):
            atts = links.attach_usdt(p, binary, "python", "gc__start", pid=child.pid)
            try:
                child.communicate(b"go\n", timeout=30)
                assert hits(coll, "usdt") >= 5
            finally:
                for att in atts:
                    att.detach()
    finally:
        child.kill()
        child.wait()


def test_iterator_reads_tasks():
    with loaded("l_iter_task") as (coll, p):
        with links.attach_iter(p) as att:
            text = att.read().decode()
            text2 = att.read().decode()
    tgids = {int(line.split()[1]) for line in text.splitlines()}
    assert os.getpid() in tgids
    assert len(tgids) > 1
    assert text2.count("\n") > 1  # each read() runs the iterator anew


def cgroup2_root():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[0] == "cgroup2":
                return left.split()[4]
    pytest.skip("no cgroup v2 hierarchy is mounted")


@contextlib.contextmanager
def new_cgroup():
    path = os.path.join(cgroup2_root(), f"xnf-links-{uuid.uuid4().hex[:8]}")
    os.mkdir(path)
    try:
        yield path
    finally:
        os.rmdir(path)


@pytest.mark.parametrize("prog, kind, attach_type", [
    ("l_cgroup_skb", "cgroup_skb", uapi.BPF_CGROUP_INET_EGRESS),       # one run per packet sent
    ("l_cgroup_sock", "cgroup_sock", uapi.BPF_CGROUP_INET_SOCK_CREATE),  # one per socket
    ("l_cgroup_connect4", "cgroup_connect4", uapi.BPF_CGROUP_INET4_CONNECT),  # one per connect()
], ids=["cgroup_skb/egress", "cgroup/sock_create", "cgroup/connect4"])
def test_cgroup_programs_count_their_cgroup_only(prog, kind, attach_type):
    """Ten UDP sockets, each connect()ed and sending one datagram: from this process
    (outside the cgroup) nothing counts; from a child moved into the cgroup, all ten do."""
    sender = ("import socket\n"
              "for _ in range(10):\n"
              "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.connect(('127.0.0.1', 9)); s.send(b'x')\n"
              "    s.close()")
    with loaded(prog) as (coll, p), new_cgroup() as cg:
        with links.attach_cgroup(p, cg, attach_type):
            before = hits(coll, kind)
            exec(sender, {})
            assert hits(coll, kind) == before
            subprocess.run([sys.executable, "-c", sender], check=True,
                           preexec_fn=lambda: open(os.path.join(cg, "cgroup.procs"), "w").write("0"))
            assert hits(coll, kind) >= before + 10


def test_sk_lookup_runs_in_its_netns(netns):
    from netenv import in_ns
    in_ns(netns, "ip", "link", "set", "lo", "up")
    sender = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
              "for _ in range(10): s.sendto(b'x', ('127.0.0.1', 9))")
    with loaded("l_sk_lookup") as (coll, p):
        with links.attach_netns(p, netns) as att:
            assert att.attached
            in_ns(netns, sys.executable, "-c", sender)
            assert hits(coll, "sk_lookup") >= 10


@pytest.mark.parametrize("prog, kind, attach_type, side", [
    ("l_sk_msg", "sk_msg", uapi.BPF_SK_MSG_VERDICT, "sender"),
    ("l_sk_skb", "sk_skb", uapi.BPF_SK_SKB_STREAM_VERDICT, "receiver"),
], ids=["sk_msg", "sk_skb"])
def test_sockmap_programs_run_on_its_sockets(prog, kind, attach_type, side):
    """sk_msg runs on what a socket in the map sends, sk_skb's verdict on what it receives."""
    with loaded(prog) as (coll, p):
        srv = socket.create_server(("127.0.0.1", 0))
        cli = socket.create_connection(srv.getsockname())
        peer, _ = srv.accept()
        peer.settimeout(10)
        try:
            with links.attach_sockmap(p, coll.maps["socks"], attach_type):
                coll.maps["socks"][0] = (cli if side == "sender" else peer).fileno()
                for _ in range(5):
                    cli.send(b"x")
                got = b""
                while len(got) < 5:
                    got += peer.recv(16)
                assert got == b"xxxxx"
                # each send() is one sk_msg; the receiver's skbs may coalesce the five sends
                assert hits(coll, kind) >= (5 if side == "sender" else 1)
        finally:
            for s in (cli, peer, srv):
                s.close()


def test_tracepoint_link_pins_and_is_found_again(bpffs):
    with loaded("l_tracepoint") as (coll, p):
        att = links.attach_tracepoint(p, "syscalls", "sys_enter_getpid")
        pin = os.path.join(bpffs, "tp")
        att.pin(pin)
        att.close()  # only the pin holds the link now
        found = xnf.core.attach.load_pinned(pin)
        assert isinstance(found, links.LinkAttachment) and found.target == "tracepoint:syscalls/sys_enter_getpid"
        before = hits(coll, "tracepoint")
        call_getpid()
        assert hits(coll, "tracepoint") >= before + TRIGGERS
        found.detach()
        assert not os.path.exists(pin)
        before = hits(coll, "tracepoint")
        call_getpid()
        assert hits(coll, "tracepoint") == before


def test_every_program_loads_with_its_sections_type():
    """Each program of the fixture, loaded alone, holds the type its section names; fentry
    is the one this kernel refuses (EPERM at BPF_PROG_LOAD)."""
    spec = xnf.open_object(OBJ)
    refused = {}
    for name, prog in spec.programs.items():
        try:
            with xnf.load(spec, programs=[name]) as coll:
                assert coll.programs[name].type == prog.type, name
        except BPFError as e:
            refused[name] = e.errno
    assert set(refused) <= {"l_fentry"} and all(err == 1 for err in refused.values()), refused


@pytest.mark.parametrize("attach, message", [
    (lambda p: links.attach_tracepoint(p, "syscalls", "sys_enter_no_such_call"), "no tracepoint"),
    (lambda p: links.attach_uprobe(p, "/bin/true", "xnf_no_such_function"), "has no function"),
    (lambda p: links.attach_uprobe(p, OBJ[:-1] + "c", "main"), "as an ELF file"),
    (lambda p: links.attach_cgroup(p, "/nonexistent-cgroup", uapi.BPF_CGROUP_INET_EGRESS), "is a tracepoint"),
    (lambda p: links.attach_raw_tracepoint(p, "sys_enter"), "is a tracepoint"),
], ids=["tracepoint", "uprobe-symbol", "uprobe-not-elf", "cgroup-wrong-type", "raw_tp-wrong-type"])
def test_bad_targets_are_attach_errors_that_leave_nothing(attach, message):
    with loaded("l_tracepoint") as (coll, p):
        fds = set(os.listdir("/proc/self/fd"))
        with pytest.raises(AttachError, match=message):
            attach(p)
        assert set(os.listdir("/proc/self/fd")) <= fds


def test_cgroup_link_replace_swaps_the_program_and_perf_links_refuse():
    """BPF_LINK_UPDATE: a cgroup link takes a new program; a tracepoint's perf link cannot."""
    with loaded("l_cgroup_skb") as (coll, p), loaded("l_cgroup_skb") as (coll2, p2), new_cgroup() as cg:
        with links.attach_cgroup(p, cg, uapi.BPF_CGROUP_INET_EGRESS) as att:
            att.replace(p2)
            assert att.prog_id == p2.id and att.attached
    with loaded("l_tracepoint") as (coll, p), loaded("l_tracepoint") as (coll2, p2):
        with links.attach_tracepoint(p, "syscalls", "sys_enter_getpid") as att:
            with pytest.raises(AttachError, match="BPF_LINK_UPDATE"):
                att.replace(p2)
            assert att.prog_id == p.id
