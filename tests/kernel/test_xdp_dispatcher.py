"""pping's XDP ingress sharing an interface with xdp-tools through libxdp's dispatcher.

The other side is the real thing: Debian's xdp-tools (xdp-filter, xdp-loader, libxdp
1.3, protocol version 2). In both orders, `xdp-loader status` lists both programs,
traffic shows both working (pping measures pings while xdp-filter drops a UDP port),
and detaching either leaves the other working. libxdp and xnf share a private bpffs
(``LIBXDP_BPFFS``), so nothing outside the test is seen or touched; at the end no
program and no pin is left.

The dispatcher needs freplace (BPF_PROG_TYPE_EXT) programs; a kernel that refuses
them (some sandboxes do, with EPERM) skips these tests, naming that. The VM tier's
kernel runs them: ``tools/vm/run -- python3 -m pytest tests/kernel/test_xdp_dispatcher.py``.
"""
import os
import shutil
import subprocess
import sys
import time

import pytest

from netenv import in_ns, sh
from xnf.core.attach import dispatcher
from xnf.core.attach.dispatcher import DispatcherAttachment
from xnf.plugins.pping.config import PpingConfig
from xnf.plugins.pping.datapath import Datapath
from xnf.plugins.pping.events import RttEvent

pytestmark = pytest.mark.root

PORT = 5555

# The receiver counts datagrams to PORT until one to PORT + 1 (which no filter drops)
# says the sender is done: no timing guess (Python starts slowly under the VM tier's TCG).
RECEIVER = """
import select, socket, sys
port = int(sys.argv[1])
socks = []
for p in (port, port + 1):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", p))
    socks.append(s)
print("ready", flush=True)
n = 0
while True:
    ready, _, _ = select.select(socks, [], [], 30)
    if socks[0] in ready:  # drained first: the end mark counts only once PORT is empty
        socks[0].recv(100)
        n += 1
        continue
    break  # the end mark, or nothing for 30 s
print(n, flush=True)
"""

SENDER = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
ip, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for _ in range(n):
    s.sendto(b"x", (ip, port))
time.sleep(0.2)
s.sendto(b"done", (ip, port + 1))
"""


@pytest.fixture
def pair(netns_pair, bpffs, monkeypatch):
    """A veth pair, with libxdp's directory on a private bpffs as if xdp-tools were in use."""
    if not (shutil.which("xdp-loader") and shutil.which("xdp-filter")):
        pytest.skip("needs xdp-loader and xdp-filter (Debian package xdp-tools; tools/install)")
    why = dispatcher.supported()
    if why:
        pytest.skip(why)
    monkeypatch.setenv("LIBXDP_BPFFS", bpffs)  # read by libxdp (xdp-tools) and by xnf alike
    os.makedirs(os.path.join(bpffs, "xdp"), exist_ok=True)
    netns_pair.bpffs = bpffs
    yield netns_pair
    in_ns(netns_pair.ns_a, "xdp-loader", "unload", netns_pair.if_a, "--all", check=False)


def xdp_filter(pair, *args):
    return in_ns(pair.ns_a, "xdp-filter", *args)


def loader_status(pair):
    return in_ns(pair.ns_a, "xdp-loader", "status", pair.if_a)


def pping(pair):
    config = PpingConfig(icmp=True, ingress_hook="xdp", xdp_mode="generic")
    return Datapath(pair.if_a, config, netns=pair.ns_a).attach()


def udp_delivered(pair, n=5):
    """How many of ``n`` UDP datagrams to PORT on the pping side reached its socket
    (the receiver empties PORT's socket before it takes PORT + 1's end mark)."""
    recv = subprocess.Popen(["ip", "netns", "exec", pair.ns_a, sys.executable, "-c", RECEIVER, str(PORT)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert recv.stdout.readline().strip() == "ready"
        in_ns(pair.ns_b, sys.executable, "-c", SENDER, pair.ip_a, str(PORT), str(n))
        out, _ = recv.communicate(timeout=60)
    finally:
        if recv.poll() is None:
            recv.kill()
            recv.wait()
    return int(out.split()[-1])


def pings_measured(dp, pair, count=3):
    """RTT events pping reports for ``count`` pings from its side to the peer."""
    decoder, events = dp.decoder(), []
    rb = dp.ring_buffer(lambda raw: events.append(decoder.decode(raw)))
    try:
        rb.consume()  # what came before
        events.clear()
        in_ns(pair.ns_a, "ping", "-c", str(count), "-i", "0.2", "-W", "1", pair.ip_b)
        time.sleep(0.3)
        rb.consume()
    finally:
        rb.close()
    return len([e for e in events if isinstance(e, RttEvent) and e.flow.src_ip == pair.ip_b])


def assert_nothing_left(pair):
    assert "No XDP program loaded" in loader_status(pair)
    assert sh("ip", "netns", "exec", pair.ns_a, "ip", "link", "show", pair.if_a).count("xdp") == 0
    assert os.listdir(os.path.join(pair.bpffs, "xdp")) == []


def test_pping_first_then_xdp_filter(pair):
    dp = pping(pair)
    try:
        ingress = dp.attachments["ingress"]
        assert isinstance(ingress, DispatcherAttachment) and ingress.slot == 0, ingress
        assert "pping_xdp_ingress" in loader_status(pair)  # libxdp reads xnf's dispatcher
        assert pings_measured(dp, pair) == 3

        xdp_filter(pair, "load", "-m", "skb", pair.if_a)
        xdp_filter(pair, "port", str(PORT))
        status = loader_status(pair)
        assert "pping_xdp_ingress" in status and "xdpfilt_" in status, status
        assert [c.name for c in dispatcher.components(pair.if_a, pair.ns_a)][-1] == "pping_xdp_ingress"
        assert ingress.attached
        assert udp_delivered(pair) == 0  # xdp-filter drops the port
        assert pings_measured(dp, pair) == 3  # pping still measures

        xdp_filter(pair, "unload", pair.if_a, "--all")  # libxdp rebuilds the dispatcher without its own
        assert "xdpfilt_" not in loader_status(pair) and ingress.attached
        assert udp_delivered(pair) == 5
        assert pings_measured(dp, pair) == 3
    finally:
        dp.close()
    assert_nothing_left(pair)


def test_xdp_filter_first_then_pping(pair):
    xdp_filter(pair, "load", "-m", "skb", pair.if_a)
    xdp_filter(pair, "port", str(PORT))
    before = [c.prog_id for c in dispatcher.components(pair.if_a, pair.ns_a)]
    assert before, "xdp-filter did not install a dispatcher"
    dp = pping(pair)
    try:
        ingress = dp.attachments["ingress"]
        assert isinstance(ingress, DispatcherAttachment) and ingress.mode == "skb"
        status = loader_status(pair)
        assert "pping_xdp_ingress" in status and "xdpfilt_" in status, status
        found = dispatcher.components(pair.if_a, pair.ns_a)
        assert [c.prog_id for c in found if c.prog_id != ingress.prog_id] == before  # same programs, relinked
        assert udp_delivered(pair) == 0
        assert pings_measured(dp, pair) == 3
    finally:
        dp.close()  # takes only pping out
    status = loader_status(pair)
    assert "xdpfilt_" in status and "pping" not in status, status
    assert [c.prog_id for c in dispatcher.components(pair.if_a, pair.ns_a)] == before
    assert udp_delivered(pair) == 0  # xdp-filter still drops
    xdp_filter(pair, "unload", pair.if_a, "--all")
    assert_nothing_left(pair)


def test_xdp_loader_load_and_unload_beside_pping(pair):
    """A program xdp-loader loads and unloads by id around pping's: pping keeps measuring."""
    obj = os.path.join(os.path.dirname(__file__), "..", "bpf", "xdp_counter.bpf.o")
    dp = pping(pair)
    try:
        in_ns(pair.ns_a, "xdp-loader", "load", "-m", "skb", pair.if_a, obj)
        found = dispatcher.components(pair.if_a, pair.ns_a)
        assert sorted(c.name for c in found) == ["pping_xdp_ingress", "xdp_count"], found
        assert pings_measured(dp, pair) == 3
        counter = next(c for c in found if c.name == "xdp_count")
        in_ns(pair.ns_a, "xdp-loader", "unload", pair.if_a, "-i", str(counter.prog_id))
        assert [c.name for c in dispatcher.components(pair.if_a, pair.ns_a)] == ["pping_xdp_ingress"]
        assert pings_measured(dp, pair) == 3
    finally:
        dp.close()
    assert_nothing_left(pair)


def test_pinned_pping_detached_by_a_later_process_leaves_xdp_filter(pair):
    """A pinned instance (what `xnf attach pping` makes) is found again from its record
    and removed from the dispatcher alone."""
    from xnf.core.attach.pinroot import PinRoot

    xdp_filter(pair, "load", "-m", "skb", pair.if_a)
    xdp_filter(pair, "port", str(PORT))
    root = PinRoot(pair.if_a, "pping", netns=pair.ns_a)
    dp = Datapath(pair.if_a, PpingConfig(icmp=True, ingress_hook="xdp", xdp_mode="generic"), netns=pair.ns_a)
    dp.attach(pins=root)
    prog_id = dp.attachments["ingress"].prog_id
    dp.release()  # this process lets go: the pins keep it
    try:
        found = root.find("ingress")
        assert isinstance(found, DispatcherAttachment) and found.attached, found
        assert "libxdp dispatcher" in str(found) and "priority 50" in str(found)
        found.close()
        assert prog_id in [c.prog_id for c in dispatcher.components(pair.if_a, pair.ns_a)]
    finally:
        root.remove_all()
    status = loader_status(pair)
    assert "xdpfilt_" in status and "pping" not in status, status
    assert udp_delivered(pair) == 0
    xdp_filter(pair, "unload", pair.if_a, "--all")
    assert_nothing_left(pair)


# --- what runs on any kernel: recognising a dispatcher, refusals ----------------------------

def test_dispatcher_recognised_and_plain_program_not(netns_pair, bpffs, monkeypatch):
    """libxdp's test for "is this a dispatcher" (name, one frozen config map, magic and
    version), on xnf's own object attached alone; a plain XDP program is not one."""
    import xnf
    from xnf.core.attach import attach_xdp
    from xnf.core.attach import xdp as X
    from xnf.core.kernel import netns as N

    monkeypatch.setenv("LIBXDP_BPFFS", bpffs)
    ns, dev = netns_pair.ns_a, netns_pair.if_a
    fd = dispatcher._load_dispatcher([])
    try:
        X.setlink_fd(N.ifindex(dev, ns), ns, int(fd), X.XDP_FLAGS_SKB_MODE | X.XDP_FLAGS_UPDATE_IF_NOEXIST)
        d = dispatcher.find(dev, ns)
        assert d is not None and d.mode == "skb" and d.components == [], d
        assert d.pin_dir == os.path.join(bpffs, "xdp", f"dispatch-{d.ifindex}-{d.prog_id}")
        d.close()
        X.setlink_fd(N.ifindex(dev, ns), ns, -1, X.XDP_FLAGS_SKB_MODE | X.XDP_FLAGS_REPLACE, expected_fd=fd)
    finally:
        fd.close()
    with xnf.load(os.path.join(os.path.dirname(__file__), "..", "bpf", "xdp_counter.bpf.o")) as coll:
        with attach_xdp(coll.programs["xdp_count"], dev, mode="skb", netns=ns):
            assert dispatcher.find(dev, ns) is None
            assert dispatcher.wanted(dev, ns) is False  # "auto" never joins a program it cannot share
    assert X.query(dev, ns) == {}


def test_refusals_are_typed_and_name_the_fix(netns_pair):
    import xnf
    from xnf.core.attach import attach_xdp
    from xnf.core.errors import AttachError

    with xnf.load(os.path.join(os.path.dirname(__file__), "..", "bpf", "xdp_counter.bpf.o")) as coll:
        with pytest.raises(AttachError, match="as_component"):
            attach_xdp(coll.programs["xdp_count"], netns_pair.if_a, netns=netns_pair.ns_a, priority=10)
    with pytest.raises(AttachError, match="multiprog"):
        dispatcher.wanted(netns_pair.if_a, netns_pair.ns_a, multiprog="always")
    with pytest.raises(AttachError, match="unknown XDP action"):
        dispatcher.action_mask(["XDP_CONTINUE"])
    why = dispatcher.supported()
    if why:  # this kernel: loading as a component says why, before anything is loaded
        spec = xnf.open_object(os.path.join(os.path.dirname(__file__), "..", "bpf", "xdp_counter.bpf.o"))
        with pytest.raises(AttachError, match="freplace"):
            with dispatcher.as_component(spec, "xdp_count"):
                pass
