"""links.attach_auto reads the target from the section as libbpf's bpf_program__attach()
does, and hands it to the attach call of its hook (faked here: no kernel needed)."""
import types

import pytest

from xnf.core.attach import links
from xnf.core.errors import AttachError


def program(section):
    return types.SimpleNamespace(spec=types.SimpleNamespace(section=section))


@pytest.fixture
def calls(monkeypatch):
    seen = []
    for name in ("attach_tracepoint", "attach_raw_tracepoint", "attach_trace", "attach_kprobe", "attach_ksyscall",
                 "attach_uprobe", "attach_usdt", "attach_iter"):
        monkeypatch.setattr(links, name, lambda *a, _n=name, **k: seen.append((_n, a[1:], k)) or _n)
    return seen


@pytest.mark.parametrize("section, call, args, kwargs", [
    ("tracepoint/syscalls/sys_enter_execve", "attach_tracepoint", ("syscalls", "sys_enter_execve"), {}),
    ("tp/sched/sched_process_exit", "attach_tracepoint", ("sched", "sched_process_exit"), {}),
    ("raw_tp/sched_switch", "attach_raw_tracepoint", ("sched_switch",), {}),
    ("raw_tracepoint.w/bpf_test_finish", "attach_raw_tracepoint", ("bpf_test_finish",), {}),
    ("tp_btf/sched_wakeup", "attach_trace", (), {}),
    ("fentry/tcp_v4_connect", "attach_trace", (), {}),
    ("lsm/file_open", "attach_trace", (), {}),
    ("kprobe/tcp_v4_connect", "attach_kprobe", ("tcp_v4_connect", 0), {"retprobe": False}),
    ("kretprobe/do_unlinkat+0x10", "attach_kprobe", ("do_unlinkat", 16), {"retprobe": True}),
    ("ksyscall/getpid", "attach_ksyscall", ("getpid",), {"retprobe": False}),
    ("kretsyscall/kill", "attach_ksyscall", ("kill",), {"retprobe": True}),
    ("uprobe//usr/lib/x86_64-linux-gnu/libc.so.6:getpid", "attach_uprobe",
     ("/usr/lib/x86_64-linux-gnu/libc.so.6", "getpid", 0), {"retprobe": False}),
    ("uretprobe.s//bin/bash:readline+4", "attach_uprobe", ("/bin/bash", "readline", 4), {"retprobe": True}),
    ("usdt//usr/bin/python3:python:gc__start", "attach_usdt", ("/usr/bin/python3", "python", "gc__start"), {}),
    ("iter/task", "attach_iter", (), {}),
])
def test_section_gives_the_call_and_its_target(calls, section, call, args, kwargs):
    assert links.attach_auto(program(section)) == call
    assert calls == [(call, args, kwargs)]


@pytest.mark.parametrize("section", ["usdt", "uprobe", "kprobe", "cgroup/connect4", "xdp", "tracepoint/onlyone"])
def test_section_without_a_target_asks_for_the_hooks_call(calls, section):
    with pytest.raises(AttachError, match="says nowhere to attach"):
        links.attach_auto(program(section))
    assert calls == []


def test_program_without_a_section():
    with pytest.raises(AttachError, match="no section"):
        links.attach_auto(object())
