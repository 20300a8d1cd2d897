"""The kernel data path on veth: HTB bands + tc egress ranks, real TCP flows (iperf3)."""
import io
import json
import os
import shutil
import time

import pytest

from netenv import in_ns, links_freed, sh
from xnf.core.errors import AttachError, ConfigError
from xnf.nf import config_from_args
from xnf.plugins.pifo_sched.kernel import EgressDataPath
from xnf.plugins.pifo_sched.nf import PifoSched, PifoSchedConfig
from xnf.testing.frames import v4_tcp
from xnf.testing.traffic import iperf3_shares

pytestmark = pytest.mark.root
PORTS = (5201, 5202, 5203)


def snapshot(pair):
    """What iproute2 says about the sender's interface: qdiscs, classes, egress filters
    (BPF links are global objects; egress_attachment() looks at those)."""
    return (in_ns(pair.ns_a, "tc", "qdisc", "show", "dev", pair.if_a),
            in_ns(pair.ns_a, "tc", "class", "show", "dev", pair.if_a),
            in_ns(pair.ns_a, "tc", "filter", "show", "dev", pair.if_a, "egress", check=False))


def egress_attachment(pair):
    """bpftool and tc as oracles, for this test's interface only: the tcx link pifo_sched
    pinned at if_a's egress, as ``(link id, program id)`` (its program named sched_egress),
    or ``"filter"`` for a clsact filter running sched_egress; None if neither. Links are
    global objects and bpftool 7.1 shows no device for a tcx link, so the link is found by
    its pin: another process's pifo_sched on the machine runs a sched_egress program too."""
    if "sched_egress" in in_ns(pair.ns_a, "tc", "filter", "show", "dev", pair.if_a, "egress"):
        return "filter"
    pin = os.path.join(PifoSched.pin_root(pair.if_a, pair.ns_a).path, "egress", "link")
    if not os.path.exists(pin):
        return None
    link = json.loads(sh("bpftool", "-j", "link", "show", "pinned", pin))
    assert json.loads(sh("bpftool", "-j", "prog", "show", "id", str(link["prog_id"])))["name"] == "sched_egress"
    return link["id"], link["prog_id"]


def assert_detached(pair, attachment):
    """Nothing of ``attachment`` (egress_attachment() while attached) runs any more: no
    sched_egress filter on if_a, and no link is that link or runs that program."""
    assert egress_attachment(pair) is None
    if attachment != "filter":
        link_id, prog_id = attachment
        assert not links_freed(lambda link: link["id"] == link_id or link.get("prog_id") == prog_id)


def sched(pair, **config):
    return PifoSched(pair.if_a, PifoSchedConfig(**config), netns=pair.ns_a)


def test_attach_builds_eight_bands_and_detach_restores_the_interface(netns_pair):
    before = snapshot(netns_pair)
    nf = sched(netns_pair, weights="5201=1,5202=2", rate="20mbit")
    nf.attach()
    try:
        qdiscs = in_ns(netns_pair.ns_a, "tc", "qdisc", "show", "dev", netns_pair.if_a)
        classes = in_ns(netns_pair.ns_a, "tc", "class", "show", "dev", netns_pair.if_a)
        assert "qdisc htb 1: root" in qdiscs and qdiscs.count("qdisc pfifo") == 8
        assert "class htb 1:1 root rate 20Mbit ceil 20Mbit" in classes
        for band in range(8):
            assert f"class htb 1:{0x10 + band:x} parent 1:1 leaf" in classes and f"prio {band} " in classes
        attachment = egress_attachment(netns_pair)
        assert attachment is not None
        assert PifoSched.attached(netns_pair.if_a, netns=netns_pair.ns_a).config.weights == "5201=1,5202=2"
        assert netns_pair.ping(3, to="b") == 3  # traffic still flows through the bands
        bands = nf.status()["bands"]
        assert sum(b["packets"] for b in bands) >= 3
        with pytest.raises(AttachError, match="already attached"):
            sched(netns_pair, rate="20mbit").attach()
    finally:
        nf.detach()
    assert snapshot(netns_pair) == before
    assert_detached(netns_pair, attachment)
    assert PifoSched.attached(netns_pair.if_a, netns=netns_pair.ns_a) is None


def test_detach_from_another_process_through_the_pins(netns_pair):
    before = snapshot(netns_pair)
    sched(netns_pair, weights="5201=1", rate="50mbit").attach()
    attachment = egress_attachment(netns_pair)
    assert attachment is not None
    found = PifoSched.attached(netns_pair.if_a, netns=netns_pair.ns_a)
    assert found is not None and found.status()["data_path"].startswith("the kernel")
    found.detach()
    assert snapshot(netns_pair) == before
    assert_detached(netns_pair, attachment)


def test_foreign_root_qdisc_is_refused_and_left_alone(netns_pair):
    in_ns(netns_pair.ns_a, "tc", "qdisc", "add", "dev", netns_pair.if_a, "root", "tbf",
          "rate", "10mbit", "burst", "15k", "latency", "50ms")
    before = snapshot(netns_pair)
    with pytest.raises(AttachError, match="already has a tbf root qdisc"):
        sched(netns_pair, rate="20mbit").attach()
    assert snapshot(netns_pair) == before
    assert PifoSched.attached(netns_pair.if_a, netns=netns_pair.ns_a) is None


def test_bad_configuration_is_refused_before_anything_is_made(netns_pair):
    before = snapshot(netns_pair)

    class Args:
        scheduler, weights, rate, default_weight, limit = "srpt", "", "1gbit", 1.0, 64

    with pytest.raises(ConfigError, match="xnf sched simulate srpt"):
        config_from_args(PifoSchedConfig, Args)
    with pytest.raises(ConfigError, match="PORT=WEIGHT"):
        sched(netns_pair, weights="5201:1").attach()
    with pytest.raises(ConfigError, match="rate"):
        sched(netns_pair, rate="fast").attach()
    assert snapshot(netns_pair) == before


def tcp_frame(sport, dport, payload=1448):
    """Ethernet + IPv4 + TCP (the program reads the ports only)."""
    return v4_tcp("10.0.0.1", "10.0.0.2", sport, dport, payload=bytes(payload))


def test_ranks_are_tags_so_a_waiting_flow_never_overtakes_its_own_packets():
    """A flow that pauses for less than its lead over the clock still has packets
    queued: its next ones must not go to a higher-priority band (TCP takes the
    reordering as loss). A new flow, behind the clock, goes ahead of that backlog.

    The program's clock is the kernel's, so the premise (the pause, with the time the
    runs take, stays under the flow's lead of about 0.4 s: 8 packets of 1502 bytes at a
    quarter of 1 Mbit/s) holds only if the machine does not stall; a run in which the
    loop took longer than 0.3 s does not test the rule and is repeated (up to 5 times),
    so a loaded machine cannot fail a good change."""
    for _ in range(5):
        path = EgressDataPath("lo", "1mbit", {5201: 1, 5202: 3})
        collection = path.load()
        try:
            prog = collection.programs["sched_egress"]

            def band(port):
                return next(f["band"] for f in path.flow_bytes().values() if f["port"] == port)

            bands = []
            start = time.monotonic()
            for n in range(11):
                if n == 8:
                    time.sleep(0.1)  # two packet times of this flow, a quarter of its lead
                prog.test_run(tcp_frame(40000, 5201))
                bands.append(band(5201))
            if time.monotonic() - start > 0.3:
                continue  # stalled: the premise did not hold
            assert bands == sorted(bands), bands
            prog.test_run(tcp_frame(40001, 5202))
            assert band(5202) < band(5201)
            return
        finally:
            collection.close()
    pytest.fail("5 runs in a row took over 0.3 s: the machine is too slow to test this rule")


# A measurement: 16 of 16 runs passed (worst share error 3.9 %, median 0.6 %), which bounds
# the false-failure rate only below ~17 % (95 %), far from the 1 in 1,000 of the default suite.
@pytest.mark.slow
@pytest.mark.measurement
@pytest.mark.parametrize("scheduler", ["wfq", "stfq"])
def test_three_iperf3_flows_get_shares_within_5_percent_of_1_2_3(netns_pair, scheduler):
    if shutil.which("iperf3") is None:
        pytest.skip("iperf3 is not installed (traffic oracle)")
    weights = (1, 2, 3)
    nf = sched(netns_pair, scheduler=scheduler, rate="20mbit",
               weights=",".join(f"{p}={w}" for p, w in zip(PORTS, weights)))
    nf.attach()
    try:
        shares, mbit = iperf3_shares(netns_pair.ns_a, netns_pair.ns_b, netns_pair.ip_b, PORTS, seconds=40)
        flows = nf.status()["flows"]
    finally:
        nf.detach()
    for share, weight in zip(shares, weights):
        assert abs(share - weight / 6) <= 0.05 * weight / 6, (shares, scheduler)
    assert mbit > 14  # the rate-limited link stays busy
    assert {f["port"] for f in flows.values() if f["bytes"] > 1_000_000} == set(PORTS)


def test_demo_prints_configured_and_measured_shares_and_cleans_up(monkeypatch):
    """The demo's own namespaces and links are gone afterwards (found by the tag of the
    topology it made, not by its prefix: another run's demo may be running)."""
    from xnf.plugins.pifo_sched import cli, demo

    made = []

    class Recorded(demo.VethPair):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(demo, "VethPair", Recorded)

    class Args:
        weights, rate, duration, scheduler = "1,3", "20mbit", 3.0, "wfq"

    out = io.StringIO()
    assert cli.demo(Args, out=out) == 0
    rows = [line.split() for line in out.getvalue().splitlines() if line.strip().startswith("tcp/")]
    assert [r[0] for r in rows] == ["tcp/5201", "tcp/5202"] and [r[2] for r in rows] == ["0.250", "0.750"]
    assert abs(float(rows[1][3]) - 0.75) < 0.1
    (topo,) = made
    netns_dir = "/run/netns"
    assert not {topo.ns_a, topo.ns_b} & set(os.listdir(netns_dir) if os.path.isdir(netns_dir) else ())
    assert topo.tag not in sh("ip", "link", "show")  # its veth was made under tagged names here
