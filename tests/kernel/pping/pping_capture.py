"""tcpdump as an oracle, synchronised by events, not sleeps (tcpdump is the test's tool here;
the library never runs it).

A capture stopped a fixed time after the traffic loses what tcpdump had not yet read or
written (its default buffering holds up to 1 s of packets; a loaded machine delays it
more). So: packets are written at once (``-U --immediate-mode``); the traffic starts once
tcpdump says it is listening; after the traffic, a marker echo (ping ``-p``, a payload
pattern nothing else carries) is sent, and the capture is stopped only once both the
request and the reply are in the file: tcpdump writes packets in the order it read them,
so every packet tapped before is in the file too. tcpdump's own count of packets
"dropped by kernel" is read at the end, for the test to fail on by name.
"""
import re
import subprocess
import threading
import time

import pytest

from xnf.plugins.pping import pcap
from xnf.testing import traffic

MARKER = bytes.fromhex("786e662d6d61726b65722d656e64210a")  # "xnf-marker-end!\n"
TIMEOUT_S = 60  # only bounds a tcpdump (or a marker echo) that never gets there


class Capture:
    """tcpdump in namespace ``ns`` on ``ifname``, writing every packet at once to ``path``;
    ``tcpdump_args`` add to the fixed options (a snap length, a filter). Its stderr (the
    "listening on" line, then its counts) is read by a thread. A context manager: leaving
    it stops tcpdump if the test did not."""

    def __init__(self, ns, ifname, path, *tcpdump_args):
        self.path = str(path)
        self.proc = traffic.popen(ns, ["tcpdump", "-i", ifname, "-w", self.path, "-U", "--immediate-mode",
                                       "-B", "16384", "--time-stamp-precision=nano", "-n", *tcpdump_args],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.stderr = []
        self._listening = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        traffic.stop([self.proc])
        self._reader.join(TIMEOUT_S)

    def _read(self):
        for line in self.proc.stderr:
            self.stderr.append(line.decode(errors="replace").rstrip("\n"))
            if "listening on" in self.stderr[-1]:
                self._listening.set()

    def wait_listening(self):
        """Until tcpdump says it listens (its packet socket is bound and filtered)."""
        deadline = time.monotonic() + TIMEOUT_S
        while not self._listening.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"tcpdump never said it was listening (exit {self.proc.poll()}): {self.stderr}")

    def mark(self, ns, dst):
        """Send the marker echo from ``ns`` to ``dst`` (traffic over) and wait until its
        request and reply are in the file."""
        traffic.run(ns, ["ping", "-c", "1", "-W", "10", "-p", MARKER.hex(), dst], timeout=TIMEOUT_S)
        deadline = time.monotonic() + TIMEOUT_S
        while sum(MARKER in r.data for r in self._records()) < 2:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the marker echo never reached the capture file (tcpdump exit {self.proc.poll()}): "
                            f"{self.stderr}")
            time.sleep(0.05)

    def _records(self):
        try:
            return list(pcap.read(self.path))
        except pcap.PcapError:
            return []  # a record half-written at this moment: read again

    def stop(self):
        """SIGTERM, then tcpdump's own count of the packets the kernel dropped before it
        read them (the capture is incomplete unless it is 0)."""
        self.proc.terminate()
        self.proc.wait(TIMEOUT_S)
        self._reader.join(TIMEOUT_S)
        counts = [re.match(r"(\d+) packets? dropped by kernel$", line) for line in self.stderr]
        dropped = [int(m.group(1)) for m in counts if m]
        if not dropped:
            pytest.fail(f"tcpdump did not print its counts: {self.stderr}")
        return dropped[-1]

    def cut_at_marker(self):
        """Truncate the (stopped) capture before the first marker packet, for a test whose
        traffic is the capture's whole content. tcpdump -w writes classic pcap: a 24-byte
        file header, then a 16-byte header and the captured bytes per record."""
        records = list(pcap.read(self.path))
        first = next((i for i, r in enumerate(records) if MARKER in r.data), None)
        if first is None:
            pytest.fail(f"no marker packet in {self.path}")
        with open(self.path, "r+b") as f:
            f.truncate(24 + sum(16 + len(r.data) for r in records[:first]))
