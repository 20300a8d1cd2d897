"""The attach protocol (xnf.core.kernel.pin) under races and crashes, through the `xnf` command.

* Two `xnf attach pping IFACE` started together, 20 times: exactly one wins, its instance
  is whole (listed by `xnf status`, counting a ping, detachable) and the loser exits
  non-zero saying why, having changed nothing (issue 9, item 1).
* `xnf attach` and `xnf detach` SIGKILLed at every named step of the protocol (the
  test-only pause ``XNF_TEST_PAUSE_AT=step`` stops the process there; the test kills it):
  `xnf status` tells the truth (nothing, broken, or whole), `xnf attach` refuses a broken
  instance naming `xnf detach`, `xnf detach` removes it, and afterwards no program, map,
  link, tc filter or pin of it is left (ids taken from the killed process's fds and from
  the interface, checked with bpftool and tc); a new attach then works (item 2).

The CLI pins under the system bpffs (/sys/fs/bpf/xnf); every test uses its own veth
pair and namespaces (unique names), so parallel runs never share an interface directory.
"""
import json
import os
import select
import signal
import subprocess
import sys

import pytest
import netenv
from netenv import fd_ids, in_ns, sh

from xnf.core.attach import query
from xnf.core.attach.pinroot import PinRoot

pytestmark = [pytest.mark.root, pytest.mark.slow]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
ENV.pop("XNF_DEBUG", None)
ENV.pop("XNF_TEST_PAUSE_AT", None)
XNF = [sys.executable, "-m", "xnf.cli.main"]

#: Every step of `xnf attach pping` (tc ingress hook), in order.
ATTACH_STEPS = ["locked", "staging", "loaded", "attached-egress", "attached-ingress", "pinned-maps",
                "pin-record-egress", "pinned-egress", "pin-record-ingress", "pinned-ingress", "record-config",
                "cleanup-armed", "committed"]
#: Every step of `xnf detach pping`.
DETACH_STEPS = ["detach-locked", "detach-marked", "detached-egress", "detached-ingress", "unpinned",
                "detach-removed"]
#: Killed there, the instance is whole (the rename happened, or the detach had not begun)...
WHOLE_AFTER = {"committed", "detach-locked"}
#: ... or there is nothing at all (nothing made yet, or everything removed already).
NOTHING_AFTER = {"locked", "detach-removed"}
#: Every step of `xnf attach pifo_sched`.
PIFO_STEPS = ["staging", "loaded", "record-sched_record", "htb-built", "attached-egress", "pin-record-egress",
              "pinned-egress", "pinned-maps"]


def xnf(*args, env=None, timeout=120):
    return subprocess.run(XNF + list(args), capture_output=True, text=True, env=env or ENV, cwd=ROOT,
                          timeout=timeout)


def one_line_error(r, *contains):
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("xnf: error: ") and "Traceback" not in r.stderr, r.stderr
    for text in contains:
        assert text in lines[0], (text, lines[0])
    return lines[0]


def status_of(pair, nf="pping"):
    """`xnf status --json` entries for ``nf`` on the pair's ``if_a``."""
    r = xnf("status", "--json")
    assert r.returncode == 0, r.stderr
    return [e for e in json.loads(r.stdout) if e["iface"] == pair.if_a and e["netns"] == pair.ns_a
            and e["name"] == nf]


def states(entries):
    return sorted(e.get("state", "attached") for e in entries)


# --- kernel objects: what an instance or a killed process owns, and whether it is gone -----------

def hook_ids(pair):
    """Programs and links on the pair's ``if_a``, and the maps those programs use (bpftool)."""
    ids = set()
    for hp in query(pair.if_a, pair.ns_a):
        ids.add(("prog", hp.prog_id))
        if hp.link_id:
            ids.add(("link", hp.link_id))
        shown = json.loads(sh("bpftool", "-j", "prog", "show", "id", str(hp.prog_id)))
        ids.update(("map", m) for m in shown.get("map_ids", []))
    return ids


def pinned_ids(path):
    """Objects pinned anywhere under ``path`` (bpftool identifies each pin)."""
    ids = set()
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            pin = os.path.join(dirpath, name)
            if os.path.islink(pin):
                continue  # a record
            kind = name if name in ("link", "prog") else "map"
            r = subprocess.run(["bpftool", "-j", kind, "show", "pinned", pin], capture_output=True, text=True)
            if r.returncode == 0:
                ids.add((kind, json.loads(r.stdout)["id"]))
    return ids


def still_there(ids, settle=3.0):
    """Those of ``ids`` the kernel still has, from bpftool's listings (freeing is
    asynchronous: awaited up to ``settle`` s)."""
    def left():
        return ids & {(kind, obj["id"]) for kind in ("prog", "map", "link")
                      for obj in json.loads(sh("bpftool", "-j", kind, "show") or "[]")}
    return netenv.still_there(left, settle)


def assert_nothing_left(pair, ids, nf="pping"):
    assert still_there(ids) == set()
    assert query(pair.if_a, pair.ns_a) == []
    for direction in ("ingress", "egress"):
        assert in_ns(pair.ns_a, "tc", "filter", "show", "dev", pair.if_a, direction) == ""
    root = PinRoot(pair.if_a, nf, netns=pair.ns_a)
    assert not root.exists() and root.leftovers() == []
    # at most the interface directory itself stays, empty (a process killed holding its lock)
    assert not os.path.isdir(root.ifdir) or os.listdir(root.ifdir) == []


# --- killing at a step ----------------------------------------------------------------------------

def killed_at(step, *args):
    """Run `xnf ARGS` until it pauses at ``step``; return the ids it holds, having SIGKILLed it.

    While it is paused, `xnf status` must not call anything broken: its maker is alive.
    """
    env = dict(ENV, XNF_TEST_PAUSE_AT=step)
    proc = subprocess.Popen(XNF + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=ROOT)
    try:
        ready, _, _ = select.select([proc.stderr], [], [], 120)
        line = proc.stderr.readline() if ready else ""
        assert line.startswith(f"xnf: test pause at {step} "), \
            f"step {step} never reached: {line}{proc.stderr.read() if proc.poll() is not None else ''}"
        ids = fd_ids(proc.pid)
        return ids, proc
    except BaseException:
        proc.kill()
        proc.wait()
        raise


def kill(proc, pair, nf="pping"):
    assert "broken" not in states(status_of(pair, nf))  # paused, not dead: nothing is broken yet
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    proc.stdout.close()
    proc.stderr.close()


def expect_after_kill(pair, step, args, nf="pping"):
    """`xnf status` tells the truth about what a kill at ``step`` left; `xnf detach` removes it."""
    entries = status_of(pair, nf)
    detach_cmd = f"xnf detach {nf} {pair.if_a} --netns {pair.ns_a}"
    if step in NOTHING_AFTER:
        assert entries == []
        one_line_error(xnf("detach", *args[:2], "--netns", pair.ns_a), "not attached")
        return
    if step in WHOLE_AFTER:
        assert states(entries) == ["attached"], entries
    else:
        assert states(entries) == ["broken"], entries
        assert entries[0]["fix"] == detach_cmd
        one_line_error(xnf("attach", *args), "broken", detach_cmd)  # refused, naming the fix
        assert states(status_of(pair, nf)) == ["broken"]
    r = xnf("detach", *args[:2], "--netns", pair.ns_a)
    assert r.returncode == 0, r.stderr
    assert ("removed a broken" in r.stdout) == (step not in WHOLE_AFTER)


def attach_whole(pair, args, nf="pping"):
    """Attach, then show the instance works: listed, and (pping) counting a ping."""
    r = xnf("attach", *args)
    assert r.returncode == 0, r.stderr
    assert pair.ping(2) == 2
    entries = status_of(pair, nf)
    assert states(entries) == ["attached"], entries
    if nf == "pping":
        assert entries[0]["packets"] >= 2
    return entries[0]


def detach_quietly(args):
    xnf("detach", *args)


@pytest.mark.parametrize("attach_step,detach_step",
                         [(s, DETACH_STEPS[i % len(DETACH_STEPS)]) for i, s in enumerate(ATTACH_STEPS)])
def test_pping_sigkill_at_every_step(netns_pair, iface_state, attach_step, detach_step):
    p = netns_pair
    args = ["pping", p.if_a, "--netns", p.ns_a]
    before = iface_state(p.ns_a, p.if_a)
    try:
        ids, proc = killed_at(attach_step, "attach", *args)
        ids |= hook_ids(p) | pinned_ids(PinRoot(p.if_a, "pping", netns=p.ns_a).ifdir)
        kill(proc, p)
        expect_after_kill(p, attach_step, args)
        assert_nothing_left(p, ids)

        attach_whole(p, args)  # a new attach works, and its detach is killed in turn
        ids = hook_ids(p) | pinned_ids(PinRoot(p.if_a, "pping", netns=p.ns_a).path)
        more, proc = killed_at(detach_step, "detach", *args[:2], "--netns", p.ns_a)
        kill(proc, p)
        expect_after_kill(p, detach_step, args)
        assert_nothing_left(p, ids | more)
    finally:
        detach_quietly(args[:2] + ["--netns", p.ns_a])
    assert iface_state(p.ns_a, p.if_a) == before


@pytest.mark.parametrize("step", PIFO_STEPS)
def test_pifo_sched_sigkill_at_every_attach_step(netns_pair, iface_state, step):
    p = netns_pair
    args = ["pifo_sched", p.if_a, "--netns", p.ns_a, "--rate", "20mbit"]
    before = iface_state(p.ns_a, p.if_a)
    try:
        ids, proc = killed_at(step, "attach", *args)
        ids |= hook_ids(p) | pinned_ids(PinRoot(p.if_a, "pifo_sched", netns=p.ns_a).ifdir)
        kill(proc, p, "pifo_sched")
        expect_after_kill(p, step, args, "pifo_sched")
        assert_nothing_left(p, ids, "pifo_sched")
        assert iface_state(p.ns_a, p.if_a) == before  # the HTB root it built is gone too
        attach_whole(p, args, "pifo_sched")
    finally:
        detach_quietly(args[:2] + ["--netns", p.ns_a])
    assert iface_state(p.ns_a, p.if_a) == before


TRIALS = 20


def test_concurrent_attaches_exactly_one_wins(netns_pair, iface_state):
    """Issue 9 item 1: the loser's rollback used to remove the winner's pins and links."""
    p = netns_pair
    args = ["attach", "pping", p.if_a, "--netns", p.ns_a]
    before = iface_state(p.ns_a, p.if_a)
    try:
        for trial in range(TRIALS):
            procs = [subprocess.Popen(XNF + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      env=ENV, cwd=ROOT) for _ in range(2)]
            results = [(proc.wait(120), *proc.communicate()) for proc in procs]
            won = [r for r in results if r[0] == 0]
            lost = [r for r in results if r[0] != 0]
            assert len(won) == 1 and len(lost) == 1, (trial, results)
            assert "pping attached to" in won[0][1]
            lines = lost[0][2].strip().splitlines()
            assert lost[0][0] == 1 and len(lines) == 1 and "already attached" in lines[0], (trial, lost)
            # the winner's instance is whole: two hooks, every pin, listed, measuring, detachable
            root = PinRoot(p.if_a, "pping", netns=p.ns_a)
            assert sorted(h.prog_name[:11] for h in query(p.if_a, p.ns_a)) == ["pping_tc_eg", "pping_tc_in"]
            assert sorted(os.listdir(root.path)) == ["config", "egress", "ingress", "maps"]
            assert root.leftovers() == []
            ids = hook_ids(p)
            assert p.ping(1) == 1
            entries = status_of(p)
            assert states(entries) == ["attached"] and entries[0]["packets"] >= 1, (trial, entries)
            r = xnf("detach", "pping", p.if_a, "--netns", p.ns_a)
            assert r.returncode == 0, (trial, r.stderr)
            assert_nothing_left(p, ids)
    finally:
        detach_quietly(["pping", p.if_a, "--netns", p.ns_a])
    assert iface_state(p.ns_a, p.if_a) == before


# --- netlink attachments: what a dead process left is removed from its records ------------------

@pytest.mark.parametrize("cut", ["whole", "record-only"])
def test_dead_attempt_with_netlink_attachments_is_cleared(bpffs, netns_pair, iface_state, counters, cut):
    """A clsact filter (with the clsact qdisc it created) and a netlink XDP program stay after
    their process dies; the records beside the pins let `remove_all` delete exactly them,
    even when the process died between writing a record and pinning the program."""
    from progs import counter_program

    from xnf.core.attach import attach_tc, attach_xdp

    p = netns_pair
    before = iface_state(p.ns_a, p.if_a)
    root = PinRoot(p.if_a, "nl", netns=p.ns_a, root=f"{bpffs}/xnf")
    tc, xdp = counter_program("sched_cls", counters, 0), counter_program("xdp", counters, 1)
    try:
        with root.attaching() as txn:
            for name, att in (("egress", attach_tc(tc, p.if_a, "egress", p.ns_a, via="clsact")),
                              ("xdp", attach_xdp(xdp, p.if_a, "skb", p.ns_a, via="netlink"))):
                txn.store(name, att).close()  # our fds go, as with a killed process
            dead = txn.path.replace(f"~{os.getpid()}", "~999999")
            os.rename(txn.path, dead)  # the process "dies" here: nothing runs its rollback
            txn.path = None
    finally:
        tc.close()
        xdp.close()
    assert p.ping(2) == 2 and counters[0] >= 2 and counters[1] >= 2  # both still run
    assert "bpf" in in_ns(p.ns_a, "tc", "filter", "show", "dev", p.if_a, "egress")
    if cut == "record-only":
        for name in ("egress", "xdp"):
            os.unlink(os.path.join(dead, name, "prog"))  # killed between the record and the pin
    assert [item.path for item in root.broken()] == [dead]
    progs = {i for i in hook_ids(p) if i[0] == "prog"}  # (the counters map is the test's own)
    root.remove_all()
    assert len(progs) == 2 and still_there(progs) == set()
    assert query(p.if_a, p.ns_a) == [] and not os.path.exists(dead)
    assert iface_state(p.ns_a, p.if_a) == before  # filter, clsact qdisc and XDP program gone


def test_dead_attempt_between_netlink_attach_and_pin_is_cleared(bpffs, netns_pair, counters):
    """Killed after the kernel accepted a netlink attachment but before it was pinned: the
    pending record written before attaching (Transaction.intend) names the program, and
    `remove_all` finds it on the interface by id and removes it (the clsact qdisc, which
    nothing proves was made by that process, stays)."""
    from progs import counter_program

    from xnf.core.attach import attach_tc, attach_xdp

    p = netns_pair
    root = PinRoot(p.if_a, "nl", netns=p.ns_a, root=f"{bpffs}/xnf")
    tc, xdp = counter_program("sched_cls", counters, 0), counter_program("xdp", counters, 1)
    try:
        with root.attaching() as txn:
            txn.intend("egress", tc)
            attach_tc(tc, p.if_a, "egress", p.ns_a, via="clsact").close()
            txn.intend("xdp", xdp)
            attach_xdp(xdp, p.if_a, "skb", p.ns_a, via="netlink").close()
            dead = txn.path.replace(f"~{os.getpid()}", "~999999")
            os.rename(txn.path, dead)
            txn.path = None
        progs = {i for i in hook_ids(p) if i[0] == "prog"}
    finally:
        tc.close()
        xdp.close()
    assert len(progs) == 2 and p.ping(2) == 2 and counters[0] >= 2 and counters[1] >= 2
    assert [item.path for item in root.broken()] == [dead]
    root.remove_all()
    assert still_there(progs) == set() and query(p.if_a, p.ns_a) == [] and not os.path.exists(dead)
    assert in_ns(p.ns_a, "tc", "filter", "show", "dev", p.if_a, "egress") == ""


def test_unreadable_instance_is_broken_and_detach_removes_it(netns_pair):
    """An instance directory that cannot be read (an older xnf cut short, a bad record) is
    shown as broken, not hidden, and `xnf detach` removes it."""
    p = netns_pair
    root = PinRoot(p.if_a, "pping", netns=p.ns_a)
    os.makedirs(root.maps_dir)
    os.symlink("not json", os.path.join(root.path, "config"))
    try:
        (entry,) = status_of(p)
        assert entry["state"] == "broken" and "cannot be read" in entry["problem"]
        r = xnf("detach", "pping", p.if_a, "--netns", p.ns_a)
        assert r.returncode == 0 and "removed a broken" in r.stdout, r.stderr
        assert not os.path.exists(root.ifdir)
    finally:
        detach_quietly(["pping", p.if_a, "--netns", p.ns_a])
