"""Mutation fuzzing of the offline path: capture file -> pcap reader -> reference -> formatters.

Seeds are small captures built here (classic pcap in both resolutions and byte orders,
pcapng with options, simple and obsolete packet blocks, several link types, TCP, ICMP
and DNS traffic that produces RTTs). Each mutant is the seed with 1-4 edits: a header
or length field set to a boundary value, a random byte, a cut, a deleted, repeated or
inserted run of bytes. A mutant is read as a file and, when it fits a pipe buffer, also
through a pipe (the stream path ``xnf pping read -`` takes, where there is no size to
check against).

What must hold for every mutant (issue 9):

- it reads, or it raises an ``XnfError`` whose message is one line naming the file;
  any other exception is a failure;
- it finishes within ``HANG_S`` (a timer interrupts it otherwise; that is a hang);
- the peak of Python's heap while it is processed (``tracemalloc``: every bytes buffer
  the reader allocates goes through it) stays within 64 MiB + 10 x the mutant's size.

The default suite runs ``DEFAULT_MUTANTS`` (a few seconds); ``XNF_FUZZ_MUTANTS=50000``
with ``-m fuzz`` (``tox -e fuzz``) is the long run. The mutants depend only on their
index, so a failure names the index that reproduces it.
"""

import os
import random
import signal
import struct
import time
import tracemalloc

import pytest

from xnf.core.errors import XnfError
from xnf.plugins.pping import pcap
from xnf.plugins.pping.config import PpingConfig
from xnf.plugins.pping.formats import formatter
from xnf.plugins.pping.packet import EGRESS, INGRESS, LINKTYPE_RAW
from xnf.plugins.pping.reference import run_pcap
from xnf.testing.frames import Endpoints, dns, ipv4, udp

pytestmark = pytest.mark.fuzz

DEFAULT_MUTANTS = 1500
MUTANTS = int(os.environ.get("XNF_FUZZ_MUTANTS", DEFAULT_MUTANTS))
HANG_S = 10            # a seed takes < 5 ms; anything near this is a loop, not load
MEMORY_BASE = 64 << 20
MEMORY_PER_BYTE = 10
PIPE_MAX = 60_000      # below the 64 KiB pipe buffer: written whole before it is read

T0 = 1_700_000_000_000_000_000
MS = 1_000_000
LINKTYPE_LINUX_SLL = 113
CONFIGS = [PpingConfig(), PpingConfig(icmp=True, dns=True, tcp=True, seq_ack=True),
           PpingConfig(aggregate=1, icmp=True), PpingConfig(tcp=True, rate_limit=0, cleanup_interval=0.001)]
FORMATS = ("standard", "ppviz", "json", "jsonl")


# --- seeds -----------------------------------------------------------------------------------

def _tcp_exchange(e, n=3, t0=T0):
    out = []
    for i in range(n):
        t = t0 + i * 150 * MS
        out.append((t, e.c2s(ts=(100 + i, 1), payload=b"a" * 8)))
        out.append((t + 7 * MS, e.s2c(ts=(9, 100 + i))))
    return out


def _mixed():
    e, e6 = Endpoints(), Endpoints(client="2001:db8::1", server="2001:db8::2", v6=True)
    frames = _tcp_exchange(e, 2) + _tcp_exchange(e6, 1, T0 + 10 * MS)
    frames += [(T0 + 400 * MS, e.ping(True, 7, 1)), (T0 + 403 * MS, e.ping(False, 7, 1)),
               (T0 + 500 * MS, e.udp_c2s(dns(0x1234, False), dport=53)),
               (T0 + 502 * MS, e.udp_s2c(dns(0x1234, True), sport=53))]
    return sorted(frames, key=lambda f: f[0])


def _block(btype, body, endian="<"):
    body += b"\0" * (-len(body) % 4)
    return struct.pack(endian + "II", btype, len(body) + 12) + body + struct.pack(endian + "I", len(body) + 12)


def _option(code, value, endian="<"):
    return struct.pack(endian + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _pcapng_with_options(endian):
    """pcapng by hand: two interfaces (µs default; ns with a time offset), EPB with flags,
    an obsolete packet block, a simple packet block and an unknown block."""
    frames = _mixed()
    shb = _block(pcap.PCAPNG_SHB, struct.pack(endian + "IHHq", pcap.PCAPNG_BYTE_ORDER_MAGIC, 1, 0, -1)
                 + _option(4, b"xnf fuzz seed", endian) + _option(0, b"", endian), endian)
    idb0 = _block(pcap.PCAPNG_IDB, struct.pack(endian + "HHI", 1, 0, 65535), endian)
    idb1 = _block(pcap.PCAPNG_IDB, struct.pack(endian + "HHI", 1, 0, 0)
                  + _option(9, b"\x09", endian) + _option(14, struct.pack(endian + "q", 1), endian)
                  + _option(0, b"", endian), endian)
    out = shb + idb0 + idb1
    for i, (t, data) in enumerate(frames):
        iface = i % 2
        ticks = t // 1000 if iface == 0 else t - 1_000_000_000
        fields = (iface, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data))
        if i % 5 == 4:
            body = struct.pack(endian + "HHIIII", iface, 0, *fields[1:]) + data
            out += _block(pcap.PCAPNG_OPB, body, endian)
            continue
        body = struct.pack(endian + "IIIII", *fields) + data + b"\0" * (-len(data) % 4)
        body += _option(2, struct.pack(endian + "I", 1 + i % 2), endian) + _option(0, b"", endian)
        out += _block(pcap.PCAPNG_EPB, body, endian)
    out += _block(pcap.PCAPNG_SPB, struct.pack(endian + "I", len(frames[0][1])) + frames[0][1], endian)
    out += _block(0x0BAD, b"unknown block", endian)
    return out


def _classic(frames, endian, nanosecond, linktype=1):
    magic = pcap.PCAP_MAGIC_NS if nanosecond else pcap.PCAP_MAGIC_US
    out = struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 262144, linktype)
    for t, data in frames:
        sec, ns = divmod(t, 1_000_000_000)
        out += struct.pack(endian + "IIII", sec, ns if nanosecond else ns // 1000, len(data), len(data)) + data
    return out


def _sll(frame):
    """An Ethernet frame as Linux cooked v1 (packet type: 0 to us, 4 outgoing)."""
    return struct.pack("!HHH8sH", 4, 1, 6, frame[6:12] + b"\0\0", 0x0800) + frame[14:]


def seeds(tmp_path):
    e = Endpoints()
    raw = [(T0, ipv4("10.0.0.1", "10.0.1.2", 17, udp(1000, 53, dns(1, False)))),
           (T0 + 3 * MS, ipv4("10.0.1.2", "10.0.0.1", 17, udp(53, 1000, dns(1, True))))]
    p = tmp_path / "seed.pcapng"
    pcap.write_pcapng(p, [(t, f, (EGRESS, INGRESS)[i % 2]) for i, (t, f) in enumerate(_tcp_exchange(e))])
    return {
        "pcap-us-le": _classic(_mixed(), "<", False),
        "pcap-ns-be": _classic(_tcp_exchange(e), ">", True),
        "pcap-raw": _classic(raw, "<", True, LINKTYPE_RAW),
        "pcap-sll": _classic([(t, _sll(f)) for t, f in _tcp_exchange(e, 2)], "<", False, LINKTYPE_LINUX_SLL),
        "pcapng-writer": p.read_bytes(),
        "pcapng-le": _pcapng_with_options("<"),
        "pcapng-be": _pcapng_with_options(">"),
    }


def fields_of(data):
    """(offset, width) of the header and length fields of a seed: where a boundary value
    exercises a reader's checks rather than the packet parser."""
    out = []
    magic = struct.unpack("<I", data[:4])[0]
    if magic == pcap.PCAPNG_SHB:
        endian = "<" if data[8:12] == struct.pack("<I", pcap.PCAPNG_BYTE_ORDER_MAGIC) else ">"
        pos = 0
        while pos + 12 <= len(data):
            btype, total = struct.unpack_from(endian + "II", data, pos)
            out += [(pos, 4), (pos + 4, 4), (pos + total - 4, 4)]
            out += [(pos + off, 4) for off in range(8, min(28, total - 4), 4)]
            out += [(pos + off, 2) for off in range(8, min(28, total - 4), 2)]
            pos += total
    else:
        out += [(off, 4) for off in range(0, 24, 4)]
        endian = "<" if struct.unpack("<I", data[:4])[0] in (pcap.PCAP_MAGIC_US, pcap.PCAP_MAGIC_NS) else ">"
        pos = 24
        while pos + 16 <= len(data):
            out += [(pos + off, 4) for off in range(0, 16, 4)]
            pos += 16 + struct.unpack_from(endian + "I", data, pos + 8)[0]
    return [(o, w) for o, w in out if o + w <= len(data)]


# --- mutation --------------------------------------------------------------------------------

BOUNDARY = [0, 1, 2, 3, 4, 7, 8, 11, 12, 15, 16, 19, 20, 24, 27, 28, 0x7F, 0x80, 0xFF, 0xFFFF, 0x10000,
            0x3FFFFFC, 0x4000000, 0x4000004, 0x7FFFFFFF, 0x80000000, 0xFFFFFFF0, 0xFFFFFFFC, 0xFFFFFFFF]


def mutate(rng, data, fields):
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        if op < 0.4 and fields:
            pos, width = rng.choice(fields)
            if pos + width > len(data):
                continue
            value = rng.choice(BOUNDARY + [rng.getrandbits(32)])
            if rng.random() < 0.3:
                value = (struct.unpack_from("<I" if width == 4 else "<H", data, pos)[0] + rng.randint(-8, 8))
            value &= (1 << (8 * width)) - 1
            data[pos:pos + width] = value.to_bytes(width, rng.choice(("little", "big")))
        elif op < 0.65 and data:
            data[rng.randrange(len(data))] = rng.getrandbits(8)
        elif op < 0.72:
            del data[rng.randrange(len(data) + 1):]
        elif op < 0.82 and data:
            a = rng.randrange(len(data))
            del data[a:a + rng.randint(1, 64)]
        elif op < 0.92 and data:
            a = rng.randrange(len(data))
            chunk = data[a:a + rng.randint(1, 256)]
            b = rng.randrange(len(data) + 1)
            data[b:b] = chunk * rng.randint(1, 4)
        else:
            b = rng.randrange(len(data) + 1)
            data[b:b] = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 16)))
    return bytes(data)


# --- one mutant ------------------------------------------------------------------------------

class Hang(Exception):
    pass


def _alarm(_signum, _frame):
    raise Hang()


def exercise(path, config):
    """The whole offline path: read, run the reference, format every event each way."""
    events = list(run_pcap(path, config))
    for name in FORMATS:
        if name == "ppviz" and config.aggregate:
            continue
        f = formatter(name)
        f.header() + f.format_many(events) + f.footer()
    return len(events)


def check(path, config, size):
    """``None`` if the mutant behaves; else what went wrong. Returns (problem, peak bytes)."""
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    signal.setitimer(signal.ITIMER_REAL, HANG_S)
    try:
        exercise(path, config)
        problem = None
    except Hang:
        problem = "hang"
    except XnfError as exc:
        text = str(exc)
        problem = None if ("\n" not in text and str(path) in text) else f"bad message: {text!r}"
    except Exception as exc:  # noqa: BLE001 - this is what the fuzzer looks for
        problem = f"{type(exc).__name__}: {exc}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    peak = tracemalloc.get_traced_memory()[1] - base
    if problem is None and peak > MEMORY_BASE + MEMORY_PER_BYTE * size:
        problem = f"peak heap {peak} bytes for a {size}-byte file"
    return problem, peak


def run_fuzzer(tmp_path, count, first=0):
    """Run ``count`` mutants; return the figures (and every problem with its index)."""
    base_seeds = seeds(tmp_path)
    names = sorted(base_seeds)
    fields = {n: fields_of(base_seeds[n]) for n in names}
    path = tmp_path / "mutant.cap"
    stats = {"mutants": 0, "piped": 0, "problems": [], "max_peak_file": 0, "max_peak_pipe": 0, "max_size": 0,
             "slowest_s": 0.0}
    old = signal.signal(signal.SIGALRM, _alarm)
    tracemalloc.start()
    started = time.monotonic()
    try:
        for index in range(first, first + count):
            rng = random.Random(index)
            name = names[index % len(names)]
            data = mutate(rng, base_seeds[name], fields[name])
            path.write_bytes(data)
            config = CONFIGS[index % len(CONFIGS)]
            t = time.monotonic()
            problem, peak = check(path, config, len(data))
            stats["slowest_s"] = max(stats["slowest_s"], time.monotonic() - t)
            stats["max_peak_file"] = max(stats["max_peak_file"], peak)
            if problem is None and len(data) <= PIPE_MAX and index % 4 == 0:
                r, w = os.pipe()
                try:
                    os.write(w, data)
                    os.close(w)
                    w = None
                    problem, peak = check(f"/proc/self/fd/{r}", config, len(data))
                    stats["max_peak_pipe"] = max(stats["max_peak_pipe"], peak)
                finally:
                    os.close(r)
                    if w is not None:
                        os.close(w)
                stats["piped"] += 1
            stats["mutants"] += 1
            stats["max_size"] = max(stats["max_size"], len(data))
            if problem:
                stats["problems"].append((index, name, problem))
                (tmp_path / f"failing-{index}.cap").write_bytes(data)
    finally:
        tracemalloc.stop()
        signal.signal(signal.SIGALRM, old)
    stats["seconds"] = time.monotonic() - started
    return stats


def test_seeds_are_valid_captures_that_measure(tmp_path):
    """Every seed reads cleanly and yields RTTs, so mutants start from the interesting path."""
    for name, data in seeds(tmp_path).items():
        p = tmp_path / f"{name}.cap"
        p.write_bytes(data)
        assert list(pcap.read(p)), name
        events = list(run_pcap(p, CONFIGS[1]))
        assert any(hasattr(e, "rtt_ns") for e in events), name


def test_mutated_captures_raise_typed_errors_only(tmp_path):
    """MUTANTS mutants (XNF_FUZZ_MUTANTS): 0 untyped exceptions, 0 hangs, bounded memory."""
    stats = run_fuzzer(tmp_path, MUTANTS)
    print(f"\npcap fuzz: {stats['mutants']} mutants ({stats['piped']} also through a pipe) in "
          f"{stats['seconds']:.1f} s; slowest {stats['slowest_s'] * 1000:.1f} ms; largest mutant "
          f"{stats['max_size']} bytes; peak heap {stats['max_peak_file'] / 1024:.0f} KiB from a file, "
          f"{stats['max_peak_pipe'] / 1024:.0f} KiB from a pipe; "
          f"problems {len(stats['problems'])}")
    assert stats["mutants"] == MUTANTS
    assert not stats["problems"], stats["problems"][:10]
