"""Capture files: classic pcap (both resolutions, both byte orders), pcapng, bad files."""

import os
import shutil
import struct
import subprocess
import sys

import pytest

from xnf.plugins.pping import pcap
from xnf.plugins.pping.packet import EGRESS, INGRESS, LINKTYPE_RAW
from xnf.plugins.pping.reference import run_pcap
from xnf.plugins.pping.config import PpingConfig
from xnf.testing.frames import Endpoints, ipv4, tcp

TS = 1_700_000_000_123_456_789
NS = 1_000_000_000
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


# --- damaged and hostile captures (issue 9): typed errors naming the file and the offset ---

SHB = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
IDB = _block(1, struct.pack("<HHI", 1, 0, 0))


@pytest.mark.parametrize("block,what", [
    pytest.param(struct.pack("<III", 1, 12, 12), "interface block without a body", id="idb"),
    pytest.param(struct.pack("<II", 6, 16) + b"\0" * 4 + struct.pack("<I", 16), "packet block of 4 bytes", id="epb"),
    pytest.param(struct.pack("<II", 2, 20) + b"\0" * 8 + struct.pack("<I", 20), "obsolete packet block of 8 bytes",
                 id="opb"),
    pytest.param(struct.pack("<III", 3, 12, 12), "simple packet block without a body", id="spb"),
])
def test_short_pcapng_blocks_are_typed_errors(tmp_path, block, what):
    """A block too short for its fixed fields was a struct.error (an internal error)."""
    path = tmp_path / "short.pcapng"
    path.write_bytes(SHB + IDB + block)
    with pytest.raises(pcap.PcapError) as err:
        list(pcap.read(path))
    at = len(SHB) + len(IDB)
    assert err.value.offset == at and err.value.path == path, what
    assert str(path) in str(err.value) and f"at byte {at}" in str(err.value), what


@pytest.mark.parametrize("layout", ["pcapng", "pcap"])
@pytest.mark.parametrize("claim", [0xFFFFFFF0, 0x3FFFFF0])
def test_huge_declared_lengths_allocate_nothing(tmp_path, layout, claim):
    """A length the file claims (4 GiB, or just under the 64 MiB limit) is checked against
    what the file holds before anything is read: the old reader asked for that many bytes
    (MemoryError, or 64 MiB for a 100-byte file)."""
    import tracemalloc

    path = tmp_path / f"claim.{layout}"
    if layout == "pcapng":
        path.write_bytes(SHB + IDB + struct.pack("<II", 6, claim) + b"\0" * 40)
    else:
        path.write_bytes(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1)
                         + struct.pack("<IIII", 1, 2, claim, claim) + b"\0" * 40)
    tracemalloc.start()
    try:
        with pytest.raises(pcap.PcapError) as err:
            list(pcap.read(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024, peak          # a file object and a few headers
    assert "implausible" in str(err.value) or "truncated" in str(err.value), str(err.value)
    assert err.value.offset is not None


def test_errors_on_a_stream_name_the_offset(tmp_path):
    """Standard input cannot seek: the old reader's f.tell() in its error path raised
    OSError (Illegal seek) instead of the PcapError it was building."""
    path = tmp_path / "t.pcap"
    pcap.write_pcap(path, frames())
    data = path.read_bytes()[:24 + 16 + 5]
    r, w = os.pipe()
    os.write(w, data)
    os.close(w)
    try:
        with pytest.raises(pcap.PcapError) as err:
            list(pcap.read(f"/proc/self/fd/{r}"))
    finally:
        os.close(r)
    assert err.value.offset == 24 and "truncated packet data" in str(err.value)


def _one_packet_pcapng(path, tsresol=None, tsoffset=None, ticks=0):
    data = E.c2s(ts=(1, 1))
    opts = b""
    if tsresol is not None:
        opts += struct.pack("<HHB3x", 9, 1, tsresol)
    if tsoffset is not None:
        opts += struct.pack("<HHq", 14, 8, tsoffset)
    idb = _block(1, struct.pack("<HHI", 1, 0, 0) + opts + (struct.pack("<HH", 0, 0) if opts else b""))
    epb = _block(6, struct.pack("<IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data)) + data)
    path.write_bytes(SHB + idb + epb)
    return len(SHB) + len(idb)


@pytest.mark.parametrize("case", [dict(tsresol=0, ticks=(1 << 64) - 1), dict(tsoffset=-(1 << 40), ticks=5),
                                  dict(tsoffset=(1 << 62))])
def test_out_of_range_timestamps_are_refused(tmp_path, case):
    """Times beyond 64-bit nanoseconds reached the formatter, where localtime() raised
    OverflowError/OSError; they are now a PcapError at the packet."""
    path = tmp_path / "ts.pcapng"
    at = _one_packet_pcapng(path, **case)
    with pytest.raises(pcap.PcapError, match="timestamp") as err:
        list(pcap.read(path))
    assert err.value.offset == at


def test_cli_read_of_a_hostile_capture_is_one_line(tmp_path):
    """`xnf pping read` and `xnf run pping IFACE --read` end with one line and status 1."""
    path = tmp_path / "ts.pcapng"
    _one_packet_pcapng(path, tsresol=0, ticks=(1 << 64) - 1)
    for argv in (["-m", "xnf.plugins.pping.cli", "pping", "read", str(path)],
                 ["-m", "xnf.cli.main", "run", "pping", "no-such-if0", "--read", str(path)]):
        r = subprocess.run([sys.executable, *argv], capture_output=True, text=True)
        assert r.returncode == 1, r.stderr
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
        assert str(path) in r.stderr and "timestamp" in r.stderr, r.stderr


def test_clock_time_never_raises():
    """The formatter's local time of day, for times localtime() cannot convert (API callers
    can feed the reference any timestamp): the UTC time of day instead of OverflowError."""
    from xnf.plugins.pping.formats import clock_time

    assert clock_time(3 * 3600 * NS + 5) == clock_time(3 * 3600 * NS + 5)  # the ordinary path
    assert clock_time((1 << 90) * NS + 7).endswith(".000000007")
    assert clock_time(-(1 << 90) * NS).endswith(".000000000")


def _read_through_pipe(data):
    """pcap.read over a pipe (standard input's path: no file size), fed by a thread."""
    import threading
    import tracemalloc

    r, w = os.pipe()

    def feed():
        with open(w, "wb") as f:
            try:
                f.write(data)
            except BrokenPipeError:
                pass  # the reader stopped at the damage

    t = threading.Thread(target=feed)
    t.start()
    tracemalloc.start()
    try:
        try:
            result = list(pcap.read(f"/proc/self/fd/{r}"))
        except pcap.PcapError as exc:
            result = exc
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        os.close(r)
        t.join()
    return result, peak


def test_stream_memory_follows_the_bytes_not_the_claims():
    """A 200 KB record arrives whole through the chunked stream path; a 60 MiB claim
    followed by 100 KB costs about what arrived, not what was claimed."""
    big = bytes(range(256)) * 800
    head = struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1)
    [rec], _ = _read_through_pipe(head + struct.pack("<IIII", 1, 2, len(big), len(big)) + big)
    assert rec.data == big
    err, peak = _read_through_pipe(head + struct.pack("<IIII", 1, 2, 60 << 20, 60 << 20) + bytes(100_000))
    assert isinstance(err, pcap.PcapError) and "truncated packet data" in str(err) and err.offset == 24
    assert peak < 1 << 20, peak                 # 100 KB arrived; chunks of 64 KiB, then joined
