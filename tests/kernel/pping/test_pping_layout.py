"""bpf_events.py and datapath.py agree with pping.h / pping.bpf.o (no root needed)."""
import socket
import struct

import pytest

import xnf
from xnf.plugins.pping import bpf_events, datapath
from xnf.plugins.pping.config import PpingConfig
from xnf.plugins.pping.events import FlowEvent, RttEvent


@pytest.fixture(scope="module")
def spec():
    return xnf.open_object(datapath.OBJECT)


def test_struct_sizes_match_btf(spec):
    btf = spec.btf
    assert btf.size_of(btf.find("pp_flow")) == 40
    assert btf.size_of(btf.find("pp_ident")) == 48
    assert btf.size_of(btf.find("pp_agg_stats")) == bpf_events._AGG.size
    assert btf.size_of(btf.find("pp_agg_key_v4")) == 8 and btf.size_of(btf.find("pp_agg_key_v6")) == 16
    assert bpf_events.RTT_RECORD_SIZE == 104 and bpf_events.FLOW_RECORD_SIZE == 56


def test_every_rodata_value_names_a_variable(spec):
    names = set(spec.rodata.keys())
    values = datapath.rodata_values(PpingConfig(icmp=True, aggregate=5, aggregate_subnets_v6=56))
    assert set(values) <= names
    for name, value in values.items():
        spec.rodata[name] = value
        assert spec.rodata[name] == value


def test_map_sizes_follow_the_config():
    spec = datapath.build_spec(PpingConfig(timestamp_map_size=1000, flow_map_size=2000, aggregate=5,
                                           aggregate_map_size=30), ring_bytes=1 << 16)
    assert spec.maps["pping_ts"].max_entries == 1000
    assert spec.maps["pping_flows"].max_entries == 2000
    assert spec.maps["pping_agg_v4"].max_entries == 62
    assert spec.maps["pping_events"].max_entries == 1 << 16
    # without --aggregate the programs never reach the aggregation maps: one entry each
    spec = datapath.build_spec(PpingConfig(aggregate_map_size=30))
    assert spec.maps["pping_agg_v4"].max_entries == spec.maps["pping_agg_v6"].max_entries == 1
    with pytest.raises(datapath.ConfigError):
        datapath.build_spec(PpingConfig(), ring_bytes=5000)


def test_prefix_masks_are_network_order():
    assert struct.pack("<I", datapath._prefix_mask(24, 32)) == b"\xff\xff\xff\x00"
    assert struct.pack("<Q", datapath._prefix_mask(48, 64)) == b"\xff" * 6 + b"\0\0"
    assert datapath._prefix_mask(0, 32) == 0


def _flow(src, dst, sport, dport, proto, v6, app=0):
    fam = socket.AF_INET6 if v6 else socket.AF_INET
    pad = b"" if v6 else bytes(10) + b"\xff\xff"
    s, d = pad + socket.inet_pton(fam, src), pad + socket.inet_pton(fam, dst)
    return s + d + struct.pack("!HH", sport, dport) + bytes([proto, 6 if v6 else 4, app, 0])


def test_decode_rtt_and_flow_records():
    dec = bpf_events.Decoder(clock_offset_ns=1000)
    rec = struct.pack("<BBB5xQ", 1, 0, 1, 5000) + _flow("10.0.0.2", "10.0.0.1", 80, 4000, 6, False) + \
        struct.pack("<6Q", 123, 100, 1, 2, 3, 4)
    ev = dec.decode(rec)
    assert isinstance(ev, RttEvent) and ev.timestamp_ns == 6000 and ev.rtt_ns == 123 and ev.match_on_egress
    assert str(ev.flow) == "10.0.0.2:80+10.0.0.1:4000" and ev.identifier_kind == "tsval"
    rec = struct.pack("<BBBB4xQ", 2, 2, 6, 2, 7) + _flow("2001:db8::1", "2001:db8::2", 443, 5, 17, True, 1)
    ev = dec.decode(rec)
    assert isinstance(ev, FlowEvent) and ev.flow.proto == "QUIC" and ev.reason == "flow timeout"
    assert ev.triggered_by == "garbage collection" and ev.event == "closing" and ev.flow.src_ip == "2001:db8::1"
    with pytest.raises(bpf_events.DecodeError):
        dec.decode(b"\x09" + bytes(60))


def test_aggregation_keys_and_merge():
    gen, prefix = bpf_events.decode_agg_key(socket.inet_aton("10.1.2.0") + struct.pack("<I", 1), 4, 24)
    assert (gen, prefix) == (1, "10.1.2.0/24")
    gen, prefix = bpf_events.decode_agg_key(bytes(4) + struct.pack("<I", 2), 4, 24)
    assert (gen, prefix) == (0, "0.0.0.0/0")
    one = bpf_events._AGG.pack(1, 100, 2, 200, 9, 5, 50, *([1] + [0] * 249))
    two = bpf_events._AGG.pack(1, 100, 0, 0, 7, 3, 40, *([0, 2] + [0] * 248))
    merged = bpf_events.merge_percpu_agg([one, two])
    assert merged[:7] == (2, 200, 2, 200, 9, 3, 50) and merged[7][:2] == [1, 2]
