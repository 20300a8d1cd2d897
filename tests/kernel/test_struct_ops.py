"""struct_ops: a TCP congestion control written in BPF (tests/bpf/bpf_cc.bpf.c), loaded by
xnf, registered through a BPF link (and, legacy, through the map update), selected for a
real iperf3 flow between two namespaces, shown by bpftool, and gone once unregistered."""
import itertools
import json
import os
import shutil
import subprocess

import pytest

import xnf
from xnf.core.errors import ConfigError
from xnf.core.kernel.struct_ops import StructOpsMap
from xnf.testing import traffic
from xnf.testing.topology import sysctl

from netenv import in_ns, sh

pytestmark = pytest.mark.root

BPF_CC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bpf", "bpf_cc.bpf.o")
AVAILABLE = "/proc/sys/net/ipv4/tcp_available_congestion_control"
_names = itertools.count()


def unique_cc_names():
    """{struct_ops variable: congestion-control name no other run on the machine registers}:
    tcp_congestion_ops.name is one machine-wide namespace of 15 characters (TCP_CA_NAME_MAX 16
    with the NUL): "xr" or "xl", the pid in 6 hex digits (pid_max is at most 2**22) and this
    process's count in 7."""
    n = next(_names) % 0x10000000
    return {"xnf_reno": f"xr{os.getpid():06x}{n:07x}", "xnf_reno_legacy": f"xl{os.getpid():06x}{n:07x}"}


def load_bpf_cc():
    """bpf_cc.bpf.o, its congestion controls renamed (unique_cc_names) in the struct_ops data
    before load; the collection and {variable: name}."""
    spec = xnf.open_object(BPF_CC)
    names = unique_cc_names()
    for var, name in names.items():
        spec.maps[var].struct_ops.set_member(spec.btf, "name", name.encode())
    return xnf.load(spec), names


def available():
    with open(AVAILABLE) as f:
        return f.read().split()


def bpftool_struct_ops():
    """bpftool's list of registered struct_ops maps: [{"id", "name", "kernel_struct_ops"}]."""
    return json.loads(sh("bpftool", "-j", "struct_ops", "show") or "[]")


def iperf3_flow(pair, cc, seconds=2):
    """One iperf3 TCP flow from ns_a to ns_b with congestion control ``cc``; iperf3's JSON."""
    if shutil.which("iperf3") is None:
        pytest.fail("iperf3 not found: install it (tools/install)")
    port = str(5201 + os.getpid() % 1000)  # namespaces are private, the port only avoids our own reruns
    server = subprocess.Popen(["ip", "netns", "exec", pair.ns_b, "iperf3", "-s", "-1", "-B", pair.ip_b, "-p", port],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        traffic.wait_listening(pair.ns_b, int(port))
        out = in_ns(pair.ns_a, "iperf3", "-c", pair.ip_b, "-p", port, "-t", str(seconds), "-C", cc, "-J")
        return json.loads(out)
    finally:
        server.kill()
        server.wait()


def test_bpf_tcp_cc_carries_an_iperf3_flow(netns_pair):
    coll, names = load_bpf_cc()
    cc = names["xnf_reno"]
    with coll:
        ops = coll.maps["xnf_reno"]
        assert isinstance(ops, StructOpsMap) and ops.is_link
        assert cc not in available()  # loading alone registers nothing
        with ops.register() as reg:
            assert cc in available()
            shown = [s for s in bpftool_struct_ops() if s["id"] == ops.id]  # bpftool names the map, not the cc
            assert shown == [{"id": ops.id, "name": "xnf_reno", "kernel_struct_ops": "tcp_congestion_ops"}]
            sysctl(netns_pair.ns_a, "net/ipv4/tcp_congestion_control", cc)  # the sender's default too
            result = iperf3_flow(netns_pair, cc)
            assert result["end"]["sender_tcp_congestion"] == cc
            sent = result["end"]["sum_sent"]["bytes"]
            assert sent > 1 << 20  # a real flow: megabytes over the veth in 2 s
            bss = coll.data[".bss"]
            assert bss.cc_inits >= 1  # init ran for the flow's sockets (and iperf3's control connection)
            assert bss.cc_acks > 100  # cong_avoid ran for the ACKs of the flow
            assert bss.cc_max_cwnd > 10  # the window grew past the initial 10 segments
            sysctl(netns_pair.ns_a, "net/ipv4/tcp_congestion_control", "reno")  # before unregistering
        assert not reg.registered
        assert cc not in available()  # (bpftool lists the map while it exists, registered or not)


def test_legacy_struct_ops_registers_through_the_map():
    coll, names = load_bpf_cc()
    cc = names["xnf_reno_legacy"]
    with coll:
        ops = coll.maps["xnf_reno_legacy"]
        assert not ops.is_link
        reg = ops.register()
        try:
            assert cc in available()
        finally:
            reg.unregister()
        assert cc not in available()
        reg.close()  # idempotent


def test_closing_the_collection_unregisters():
    coll, names = load_bpf_cc()
    coll.maps["xnf_reno"].register()
    coll.maps["xnf_reno_legacy"].register()
    assert set(names.values()) <= set(available())
    coll.close()
    assert not set(names.values()) & set(available())


def test_unique_names_fit_tcp_ca_name_max():
    names = unique_cc_names()
    assert len(set(names.values())) == 2 and all(len(n.encode()) <= 15 for n in names.values())
    assert not set(names.values()) & set(unique_cc_names().values())


def test_struct_ops_program_without_a_variable_is_refused():
    """sections_parse_only has a struct_ops program no struct_ops variable points at."""
    path = os.path.join(os.path.dirname(BPF_CC), "sections_parse_only.bpf.o")
    with pytest.raises(ConfigError, match="struct_ops program 'sec_struct_ops' is in no struct_ops variable"):
        xnf.load(path, programs=["sec_struct_ops"])


def test_program_attach_ids_are_the_kernel_members():
    """Each program is loaded with attach_btf_id = tcp_congestion_ops and expected_attach_type
    = its member's index in the kernel's struct."""
    from xnf.core.object import btf as B

    vmlinux = B.load_vmlinux()
    kid = vmlinux.find("tcp_congestion_ops", B.KIND_STRUCT)
    index = {name: i for i, (name, *_rest) in enumerate(vmlinux[kid].members)}
    spec = xnf.open_object(BPF_CC)
    with xnf.load(spec):
        pass
    for member, prog in (("init", "xnf_reno_init"), ("ssthresh", "xnf_reno_ssthresh"),
                         ("cong_avoid", "xnf_reno_cong_avoid"), ("undo_cwnd", "xnf_reno_undo_cwnd")):
        p = spec.programs[prog]
        assert (p.attach_btf_id, p.expected_attach_type) == (kid, index[member])
