"""bpffs and pins: objects, attachments that outlive their process, and the PinRoot layout."""
import os
import subprocess
import sys
import tempfile
import textwrap

import pytest
from netenv import sh
from progs import counter_program

from xnf.core.attach import Attachment, attach_tc, attach_xdp, load_pinned, query
from xnf.core.attach.pinroot import PinRoot
from xnf.core.errors import PinError
from xnf.core.kernel import info, syscall
from xnf.core.kernel.pin import (ensure_bpffs, find_bpffs, is_bpffs, mount_bpffs, object_kind, open_pinned,
                                 pin_object, require_bpffs, unpin, write_record)

pytestmark = pytest.mark.root

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))



# --- bpffs ----------------------------------------------------------------------------

def test_bpffs_found_mounted_and_checked(bpffs):
    assert is_bpffs(bpffs) and not is_bpffs("/tmp") and not is_bpffs("/no/such/dir")
    assert find_bpffs() is not None
    assert ensure_bpffs(bpffs) == bpffs
    with pytest.raises(PinError, match="not on a bpf filesystem"):
        require_bpffs("/tmp/xnf-not-bpffs/x")
    fresh = tempfile.mkdtemp(prefix="xnf-mnt-")
    try:
        assert mount_bpffs(fresh) == fresh and is_bpffs(fresh)
        assert ensure_bpffs(fresh) == fresh  # already mounted: not mounted twice
        assert sh("grep", "-c", fresh, "/proc/self/mounts").strip() == "1"
    finally:
        sh("umount", fresh, check=False)
        os.rmdir(fresh)


def test_mount_where_impossible_is_a_pin_error():
    with pytest.raises(PinError, match="cannot (create|mount)"):
        mount_bpffs("/proc/xnf-cannot-be-here")


# --- objects --------------------------------------------------------------------------

def test_pin_and_open_each_kind(bpffs, counters):
    prog = counter_program("xdp", counters)
    try:
        pin_object(counters.fd, f"{bpffs}/a/b/map")        # parents are created
        pin_object(prog, f"{bpffs}/a/prog")
        assert object_kind(counters.fd) == "map" and object_kind(prog) == "prog"
        m = open_pinned(f"{bpffs}/a/b/map", "map")
        assert info.map_info(m).id == info.map_info(counters.fd).id
        p = open_pinned(f"{bpffs}/a/prog", "prog")
        assert info.prog_info(p).id == info.prog_info(prog).id
        with pytest.raises(PinError, match="holds a map, not a prog"):
            open_pinned(f"{bpffs}/a/b/map", "prog")
        with pytest.raises(PinError, match="already pinned"):
            pin_object(prog, f"{bpffs}/a/prog")
        with pytest.raises(PinError, match="not on a bpf filesystem"):
            pin_object(prog, "/tmp/xnf-prog-pin")
        unpin(f"{bpffs}/a/prog")
        with pytest.raises(PinError, match="nothing is pinned"):
            open_pinned(f"{bpffs}/a/prog")
        with pytest.raises(PinError, match="nothing is pinned"):
            unpin(f"{bpffs}/a/prog")
        m.close()
        p.close()
    finally:
        prog.close()


def test_link_pin_kind(bpffs, netns_pair, counters):
    prog = counter_program("xdp", counters)
    try:
        att = attach_xdp(prog, netns_pair.if_a, "skb", netns_pair.ns_a, via="link")
        pin_object(att.link, f"{bpffs}/l")
        link = open_pinned(f"{bpffs}/l", "link")
        assert info.link_info(link).id == att.link_id
        link.close()
        unpin(f"{bpffs}/l")
        att.detach()
    finally:
        prog.close()


# --- attachments that outlive their process -----------------------------------------

CHILD = """
import sys
sys.path.insert(0, {tests!r})
from progs import Counters, counter_program
from xnf.core.attach import attach_tc, attach_xdp
from xnf.core.kernel.pin import pin_object
c = Counters(4)
prog = counter_program({ptype!r}, c)
att = {call}
pin_object(c.fd, {path!r} + "-counters")
if {pin!r}:
    att.pin({path!r})
print(att.prog_id)
"""

CALLS = {
    "xdp-link": ("xdp", "attach_xdp(prog, {ifname!r}, 'skb', {netns!r}, via='link')"),
    "xdp-netlink": ("xdp", "attach_xdp(prog, {ifname!r}, 'native', {netns!r}, via='netlink')"),
    "tcx": ("sched_cls", "attach_tc(prog, {ifname!r}, 'ingress', {netns!r}, via='tcx')"),
    "clsact": ("sched_cls", "attach_tc(prog, {ifname!r}, 'egress', {netns!r}, via='clsact')"),
}


def run_child(kind, p, path, pin=True):
    ptype, call = CALLS[kind]
    code = CHILD.format(tests=os.path.join(REPO, "tests", "kernel"), ptype=ptype, path=path, pin=pin,
                        call=call.format(ifname=p.if_a, netns=p.ns_a))
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.split()[-1])


def _read(fd):
    import ctypes

    key, value = ctypes.c_uint32(0), ctypes.c_uint64()
    syscall.map_lookup_elem(fd, key, value)
    return value.value


@pytest.mark.parametrize("kind", sorted(CALLS))
def test_pinned_attachment_survives_its_process(bpffs, netns_pair, iface_state, kind):
    p = netns_pair
    before = iface_state(p.ns_a, p.if_a)
    path = f"{bpffs}/{kind}"
    prog_id = run_child(kind, p, path)
    counter = open_pinned(path + "-counters", "map")
    try:
        assert p.ping(2) == 2 and _read(counter) >= 2          # still attached, still running
        assert os.path.islink(f"{path}/record")
        att = load_pinned(path)
        assert isinstance(att, Attachment) and att.prog_id == prog_id and att.pin_path == path
        assert att.netns == p.ns_a and att.ifname == p.if_a and att.attached
        assert [h.prog_id for h in query(p.if_a, p.ns_a)] == [prog_id]
        assert att.detach() is True
        assert not os.path.exists(path)
    finally:
        counter.close()
        unpin(path + "-counters")
    assert iface_state(p.ns_a, p.if_a) == before


def test_unpinned_link_ends_with_its_process(bpffs, netns_pair, iface_state):
    p = netns_pair
    before = iface_state(p.ns_a, p.if_a)
    run_child("xdp-link", p, f"{bpffs}/gone", pin=False)
    unpin(f"{bpffs}/gone-counters")
    assert iface_state(p.ns_a, p.if_a) == before


def test_pin_twice_and_bad_records(bpffs, netns_pair, counters):
    prog = counter_program("xdp", counters)
    try:
        att = attach_xdp(prog, netns_pair.if_a, "skb", netns_pair.ns_a, via="netlink")
        att.pin(f"{bpffs}/x")
        with pytest.raises(PinError, match="already holds a pinned attachment"):
            att.pin(f"{bpffs}/x")
        with pytest.raises(PinError, match="not on a bpf filesystem"):
            att.pin("/tmp/xnf-not-bpffs")
        with pytest.raises(PinError, match="no pinned attachment"):
            load_pinned(f"{bpffs}/nothing-here")
        os.makedirs(f"{bpffs}/bogus")
        os.symlink("not json", f"{bpffs}/bogus/record")
        with pytest.raises(PinError, match="not an xnf attachment record"):
            load_pinned(f"{bpffs}/bogus")
        assert att.detach()
        assert not os.path.exists(f"{bpffs}/x")
    finally:
        prog.close()


def test_pin_onto_an_existing_file_is_a_pin_error(bpffs, netns_pair, counters):
    """Issue 9 item 6: this used to raise a bare FileExistsError."""
    prog = counter_program("xdp", counters)
    try:
        att = attach_xdp(prog, netns_pair.if_a, "skb", netns_pair.ns_a, via="link")
        pin_object(counters.fd, f"{bpffs}/taken")
        with pytest.raises(PinError, match=f"{bpffs}/taken.*not a directory.*remove what is there"):
            att.pin(f"{bpffs}/taken")
        assert object_kind(open_pinned(f"{bpffs}/taken")) == "map"  # left alone
        assert att.attached and att.detach()
    finally:
        prog.close()


def test_replace_rewrites_the_pin(bpffs, netns_pair, counters):
    p = netns_pair
    a, b = counter_program("sched_cls", counters, 0), counter_program("sched_cls", counters, 1)
    try:
        att = attach_tc(a, p.if_a, "ingress", p.ns_a, via="clsact")
        att.pin(f"{bpffs}/r")
        att.replace(b)
        again = load_pinned(f"{bpffs}/r")
        assert again.prog_id == att.prog_id == info.prog_info(b).id
        assert again.detach()
        att.close()
    finally:
        a.close()
        b.close()


# --- PinRoot ---------------------------------------------------------------------------

def test_pin_root_store_find_remove(bpffs, netns_pair, iface_state, counters):
    p = netns_pair
    before = iface_state(p.ns_a, p.if_a)
    root = PinRoot(p.if_a, "counter", netns=p.ns_a, root=f"{bpffs}/xnf")
    assert root.path == f"{bpffs}/xnf/{p.if_a}@{p.ns_a}/counter"
    assert root.names() == [] and root.find("xdp") is None
    x, t = counter_program("xdp", counters, 0), counter_program("sched_cls", counters, 1)
    try:
        root.store("xdp", attach_xdp(x, p.if_a, "skb", p.ns_a)).close()
        root.store("tc", attach_tc(t, p.if_a, "ingress", p.ns_a)).close()
        pin_object(counters.fd, os.path.join(root.maps_dir, "counters"))
    finally:
        x.close()
        t.close()
    assert root.names() == ["tc", "xdp"]
    write_record(os.path.join(root.path, "config"), {"nf": "x" * 300})  # a long NF record beside them,
    assert root.names() == ["tc", "xdp"]                               # as pping's: not looked into
    assert [(r.ifname, r.nf, r.netns) for r in PinRoot.scan(f"{bpffs}/xnf")] == [(p.if_a, "counter", p.ns_a)]
    assert p.ping(2) == 2 and counters[0] >= 2 and counters[1] >= 2
    found = root.find("xdp")
    assert found.kind == "xdp" and found.attached
    found.close()
    assert root.remove("xdp") is True and root.remove("xdp") is False
    assert root.names() == ["tc"]
    root.remove_all()
    assert not os.path.exists(root.path) and os.listdir(f"{bpffs}/xnf") == []
    assert iface_state(p.ns_a, p.if_a) == before


def test_pin_root_names(bpffs):
    root = PinRoot("eth0.100", "nf", netns="ns.1", root=f"{bpffs}/xnf")
    assert root.path == f"{bpffs}/xnf/eth0%2e100@ns%2e1/nf"
    os.makedirs(root.path)
    assert [(r.ifname, r.netns) for r in PinRoot.scan(f"{bpffs}/xnf")] == [("eth0.100", "ns.1")]
    for bad in ("a/b", "a.b", ""):
        with pytest.raises(PinError, match="invalid"):
            PinRoot("eth0", bad, root=bpffs)
        with pytest.raises(PinError, match="invalid"):
            root.attachment_path(bad)
