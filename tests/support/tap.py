"""A BPF tap immediately before and after the programs at both tc hooks of a device.

``bracket_tap.bpf.o`` goes first (``BPF_F_BEFORE``, no anchor) and last (``BPF_F_AFTER``,
no anchor) in the tcx ingress and egress hooks, so every program attached there sees a
frame between the tap's two records of it: whatever time such a program took from
``bpf_ktime_get_ns()`` for the frame lies in ``[first_ns, last_ns]`` of that frame.
The records go to a ring buffer without wake-ups and are read after the traffic.
"""
import os
import struct

import attrs

OBJECT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bracket_tap.bpf.o")

HOOKS = ("ingress", "egress")      # TAP_INGRESS, TAP_EGRESS in bracket_tap.bpf.c
_FIRST, _LAST = 0, 2
_RECORD = struct.Struct("<QQIIIHBB")  # struct tap_record


@attrs.frozen
class Frame:
    """One frame at one hook: when the tap saw it before and after the programs there."""

    hook: str
    first_ns: int
    last_ns: int
    data: bytes
    wire_len: int

    @property
    def mid_ns(self) -> int:
        return (self.first_ns + self.last_ns) // 2

    @property
    def width_ns(self) -> int:
        return self.last_ns - self.first_ns


@attrs.frozen
class Capture:
    """The frames the tap saw (in first-record order), and what it could not pair or keep."""

    frames: tuple
    unpaired: int
    dropped: int


class Tap:
    """The tap on ``iface`` (in ``netns``): ``attach()`` around what is there, ``capture()``
    after the traffic, ``close()`` (or ``with``) to detach."""

    def __init__(self, iface, netns=None):
        import xnf

        self.iface, self.netns = iface, netns
        self.collection = xnf.load(OBJECT)
        self.attachments = {}      # (hook, "first" | "last") -> TcxAttachment
        self._records = []

    def attach(self):
        """First and last at both hooks; call after the programs it brackets are attached."""
        from xnf.core.attach import attach_tcx

        progs = self.collection.programs
        try:
            for hook in HOOKS:
                for place in ("first", "last"):
                    self.attachments[hook, place] = attach_tcx(progs[f"tap_{hook}_{place}"], self.iface, hook,
                                                               self.netns, **{place: True})
        except BaseException:
            self.close()
            raise
        return self

    def order(self, hook):
        """Program names in the hook's run order (the kernel's tcx query), the tap's as
        ``tap-first`` and ``tap-last``."""
        from xnf.core.attach import query_tcx

        mine = {a.prog_id: f"tap-{place}" for (h, place), a in self.attachments.items() if h == hook}
        return [mine.get(p.prog_id, p.prog_name) for p in query_tcx(self.iface, hook, self.netns)[0]]

    def drain(self):
        """Read what the ring holds now (call now and then if the traffic is long)."""
        from xnf.core.kernel.ringbuf import RingBuffer

        rb = RingBuffer(self.collection.maps["tap_events"], self._records.append)
        try:
            rb.consume()
        finally:
            rb.close()

    def capture(self) -> Capture:
        """Every frame seen so far, its two records paired by (hook, CPU, sequence)."""
        self.drain()
        firsts, lasts = {}, {}
        for raw in self._records:
            ktime, seq, cpu, length, captured, _, hook, place = _RECORD.unpack_from(raw)
            key = (hook, cpu, seq)
            if place == _FIRST:
                firsts[key] = (ktime, bytes(raw[_RECORD.size:_RECORD.size + captured]), length)
            else:
                lasts[key] = ktime
        frames = [Frame(HOOKS[key[0]], first, lasts[key], data, length)
                  for key, (first, data, length) in firsts.items() if key in lasts]
        frames.sort(key=lambda f: f.first_ns)
        unpaired = len(firsts) + len(lasts) - 2 * len(frames)
        dropped = struct.unpack_from("<Q", self.collection.maps[".bss"].lookup_raw(0))[0]
        return Capture(tuple(frames), unpaired, dropped)

    def close(self):
        for att in self.attachments.values():
            att.detach()
        self.attachments = {}
        if self.collection is not None:
            self.collection.close()
            self.collection = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
