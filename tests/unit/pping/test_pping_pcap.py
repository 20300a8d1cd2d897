"""Capture files: classic pcap (both resolutions, both byte orders), pcapng, bad files."""

import shutil
import struct
import subprocess

import pytest

from xnf.plugins.pping import pcap
from xnf.plugins.pping.packet import EGRESS, INGRESS, LINKTYPE_RAW
from xnf.plugins.pping.reference import run_pcap
from xnf.plugins.pping.config import PpingConfig
from pping_packets import Endpoints, ipv4, tcp

TS = 1_700_000_000_123_456_789
E = Endpoints()


def frames():
    return [(TS, E.c2s(ts=(1, 1), payload=b"a")), (TS + 1000, E.s2c(ts=(2, 1)))]


@pytest.mark.parametrize("nanosecond", [True, False])
def test_classic_pcap_roundtrip(tmp_path, nanosecond):
    path = tmp_path / "a.pcap"
    pcap.write_pcap(path, frames(), nanosecond=nanosecond)
    recs = list(pcap.read(path))
    want = TS if nanosecond else TS - TS % 1000
    assert [r.timestamp_ns for r in recs] == [want, want + 1000]
    assert [r.data for r in recs] == [f for _, f in frames()]
    assert recs[0].linktype == 1 and recs[0].wire_len == len(frames()[0][1])


def test_big_endian_pcap(tmp_path):
    path = tmp_path / "be.pcap"
    data = ipv4("1.2.3.4", "5.6.7.8", 6, tcp(1, 2))
    with open(path, "wb") as f:
        f.write(struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_RAW))
        f.write(struct.pack(">IIII", 10, 20, len(data), 1500) + data)
    [r] = pcap.read(path)
    assert (r.timestamp_ns, r.linktype, r.wire_len, r.data) == (10_000_020_000, LINKTYPE_RAW, 1500, data)


def test_pcapng_with_directions(tmp_path):
    path = tmp_path / "a.pcapng"
    pcap.write_pcapng(path, [(TS, E.c2s(ts=(1, 1)), EGRESS), (TS + 5, E.s2c(ts=(1, 1)), INGRESS),
                             (TS + 9, E.s2c(ts=(1, 1)), None)])
    recs = list(pcap.read(path))
    assert [r.timestamp_ns for r in recs] == [TS, TS + 5, TS + 9]
    assert [r.direction for r in recs] == [EGRESS, INGRESS, None]


def _block(btype, body, endian="<"):
    body += b"\0" * (-len(body) % 4)
    return struct.pack(endian + "II", btype, len(body) + 12) + body + struct.pack(endian + "I", len(body) + 12)


def test_pcapng_default_microseconds_big_endian_and_simple_packets(tmp_path):
    path = tmp_path / "b.pcapng"
    data = E.c2s(ts=(1, 1))
    with open(path, "wb") as f:
        f.write(_block(0x0A0D0D0A, struct.pack(">IHHq", 0x1A2B3C4D, 1, 0, -1), ">"))
        f.write(_block(1, struct.pack(">HHI", 1, 0, 0), ">"))                  # no if_tsresol: µs
        ticks = 1_700_000_000_000_001
        f.write(_block(6, struct.pack(">IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data)) + data, ">"))
        f.write(_block(3, struct.pack(">I", len(data)) + data, ">"))
        f.write(_block(0xBAD, b"ignored", ">"))                                 # unknown blocks are skipped
    recs = list(pcap.read(path))
    assert recs[0].timestamp_ns == 1_700_000_000_000_001_000
    assert recs[1].timestamp_ns is None and recs[1].data == data


def test_pcapng_binary_tsresol(tmp_path):
    path = tmp_path / "c.pcapng"
    data = E.c2s()
    with open(path, "wb") as f:
        f.write(_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
        f.write(_block(1, struct.pack("<HHI", 1, 0, 0) + struct.pack("<HHB3x", 9, 1, 0x80 | 10) + b"\0" * 4))
        f.write(_block(6, struct.pack("<IIIII", 0, 0, 3 * 1024, len(data), len(data)) + data))
    [r] = pcap.read(path)
    assert r.timestamp_ns == 3_000_000_000


@pytest.mark.parametrize("content,fragment", [
    (b"", "empty"),
    (b"ab", "only 2 bytes"),
    (b"GIF89a-this-is-not-a-capture", "not a pcap or pcapng file"),
])
def test_not_a_capture(tmp_path, content, fragment):
    path = tmp_path / "bad.pcap"
    path.write_bytes(content)
    with pytest.raises(pcap.PcapError) as err:
        list(pcap.read(path))
    msg = str(err.value)
    assert str(path) in msg and fragment in msg and "\n" not in msg


@pytest.mark.parametrize("cut", [10, 24 + 8, 24 + 16 + 5])
def test_truncated_pcap(tmp_path, cut):
    path = tmp_path / "t.pcap"
    pcap.write_pcap(path, frames())
    path.write_bytes(path.read_bytes()[:cut])
    with pytest.raises(pcap.PcapError, match=r"t\.pcap: truncated"):
        list(pcap.read(path))


def test_truncated_pcapng(tmp_path):
    path = tmp_path / "t.pcapng"
    pcap.write_pcapng(path, [(TS, E.c2s(), None)])
    path.write_bytes(path.read_bytes()[:-6])
    with pytest.raises(pcap.PcapError, match=r"t\.pcapng: truncated pcapng block"):
        list(pcap.read(path))


def test_missing_file(tmp_path):
    with pytest.raises(pcap.PcapError, match="cannot open capture file"):
        list(pcap.read(tmp_path / "nope.pcap"))


def test_run_pcap_uses_capture_directions(tmp_path):
    path = tmp_path / "d.pcapng"
    pcap.write_pcapng(path, [
        (TS, E.c2s(ts=(100, 1), payload=b"a"), EGRESS),
        (TS + 200_000_000, E.c2s(ts=(101, 1), payload=b"a"), EGRESS),
        (TS + 203_000_000, E.s2c(ts=(9, 101)), INGRESS),
    ])
    events = list(run_pcap(path, PpingConfig()))
    rtt = [e for e in events if hasattr(e, "rtt_ns")]
    assert [(e.rtt_ns, e.match_on_egress) for e in rtt] == [(3_000_000, False)]


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump is not installed (independent pcap decoder)")
@pytest.mark.parametrize("writer", ["pcap", "pcapng"])
def test_tcpdump_reads_what_we_write(tmp_path, writer):
    path = tmp_path / f"x.{writer}"
    if writer == "pcap":
        pcap.write_pcap(path, frames())
    else:
        pcap.write_pcapng(path, [(t, f, None) for t, f in frames()])
    out = subprocess.run(["tcpdump", "-nn", "-tt", "--nano", "-r", str(path)],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(out) == 2
    assert out[0].startswith("1700000000.123456789 IP 10.0.0.1.40000 > 10.0.1.2.5201")
    assert "TS val 1 ecr 1" in out[0]
