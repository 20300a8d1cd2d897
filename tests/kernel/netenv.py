"""Oracles for privileged tests: commands (iproute2, tc, bpftool) run in namespaces.

Tests may shell out (they are independent oracles); the library never does. The
namespaces and veth pairs themselves come from :mod:`xnf.testing.topology`.
"""
import json
import os
import subprocess
import time


def sh(*args, check=True):
    """Run a command (tests only: iproute2, tc, bpftool and ping are oracles)."""
    r = subprocess.run(args, capture_output=True, text=True)
    if check and r.returncode:
        raise RuntimeError(f"{' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
    return r.stdout


def in_ns(ns, *args, check=True):
    if ns is None:
        return sh(*args, check=check)
    return sh("ip", "netns", "exec", ns, *args, check=check)


def bpftool_links():
    """bpftool's view of every BPF link in the system (a list of dicts)."""
    return json.loads(sh("bpftool", "-j", "link", "show") or "[]")


def still_there(probe, timeout=10.0):
    """``probe()`` (what is left of something the kernel frees asynchronously) polled until
    it is empty or ``timeout`` s have passed; its last answer."""
    deadline = time.monotonic() + timeout
    while True:
        left = probe()
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


def links_freed(match, timeout=10.0):
    """bpftool's links that ``match`` once they are gone, or those still listed after
    ``timeout`` s. A pinned link's last reference goes with its bpffs inode, which the
    kernel frees after an RCU grace period and then puts the link from a workqueue: a link
    already detached and unpinned can stay listed for a moment, longer on a loaded machine."""
    return still_there(lambda: [link for link in bpftool_links() if match(link)], timeout)


def delete_ns_under(attachment, ns, timeout=5.0):
    """Delete ``ns`` and wait until ``attachment`` (in it) no longer reports itself
    attached: the kernel dismantles a namespace asynchronously."""
    sh("ip", "netns", "del", ns)
    still_there(lambda: attachment.attached, timeout)


def fd_ids(pid="self"):
    """(kind, id) of every program, map and link the process ``pid`` holds an fd of (fdinfo)."""
    keys = {"prog_id": "prog", "map_id": "map", "link_id": "link"}
    ids = set()
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                text = f.read()
        except OSError:
            continue
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in keys:
                ids.add((keys[key.strip()], int(value)))
    return ids


def bpf_fds():
    """File descriptors of this process that refer to BPF objects (maps, programs, BTF, links)."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(("anon_inode:bpf", "anon_inode:btf")):
            found.add(int(fd))
    return found
