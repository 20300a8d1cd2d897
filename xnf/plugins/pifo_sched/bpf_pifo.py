"""The BPF PIFO of ``bpf/pifo.h`` driven from Python through ``BPF_PROG_TEST_RUN``.

:class:`BpfPifo` writes an operation sequence into the ``ops`` map of
``bpf/pifo_test.bpf.o``, runs ``pifo_ops`` once to apply it in the kernel, and reads
back one result per operation. :func:`reference_results` gives the results the
Python :class:`BucketedPifo` produces for the same sequence, so the two can be
compared element for element (dequeue order and errors).
"""
import os
import struct

import xnf
from xnf.plugins.pifo_sched.errors import QueueEmptyError, QueueFullError, RankRangeError
from xnf.plugins.pifo_sched.pifo import BucketedPifo

OBJECT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bpf", "pifo_test.bpf.o")
RANGE = 1 << 12      # PIFO_RANGE in pifo.h
CAPACITY = 1 << 13   # PIFO_CAPACITY in pifo.h
MAX_OPS = 1 << 17    # entries of the ops map
ENQUEUE, DEQUEUE = 0, 1
ERRNO = {RankRangeError: -34, QueueFullError: -75, QueueEmptyError: -2}
OP = struct.Struct("<IIQQ")
RESULT = struct.Struct("<qQQ")
PACKET = bytes(64)


def reference_results(ops, rank_range=RANGE, capacity=CAPACITY):
    """``(ret, rank, value)`` per operation from the Python bucketed PIFO."""
    pifo, out = BucketedPifo(rank_range, capacity), []
    for op in ops:
        try:
            if op[0] == "enq":
                pifo.enqueue(op[2], op[1])
                out.append((0, op[1], op[2]))
            else:
                rank, value = pifo.dequeue()
                out.append((0, rank, value))
        except (RankRangeError, QueueFullError, QueueEmptyError) as err:
            out.append((ERRNO[type(err)],) + ((op[1], op[2]) if op[0] == "enq" else (None, None)))
    return out


class BpfPifo:
    """One BPF PIFO in a map, with the programs that operate on it."""

    def __init__(self, path=OBJECT):
        self.collection = xnf.load(path)
        self.queue = self.collection.maps["queue"]
        self.ops = self.collection.maps["ops"]
        self.results = self.collection.maps["results"]
        self.bss = self.collection.maps[".bss"]
        self.reset()

    def close(self):
        self.collection.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _set_globals(self, nops, counter=0):
        self.bss[0] = struct.pack("<IIQ", nops, 0, counter).ljust(self.bss.value_size, b"\0")

    def reset(self):
        """Empty queue with windows [0, R) and [R, 2R), as a fresh map."""
        self.queue[0] = bytes(self.queue.value_size)
        self._set_globals(0)

    def run(self, ops):
        """Apply ``ops`` (``("enq", rank, value)`` or ``("deq",)``); ``(ret, rank, value)`` each."""
        out = []
        for start in range(0, len(ops), MAX_OPS):
            chunk = ops[start:start + MAX_OPS]
            self.ops.update_batch(
                (struct.pack("<I", i), OP.pack(ENQUEUE, 0, op[1], op[2]) if op[0] == "enq" else OP.pack(DEQUEUE, 0, 0, 0))
                for i, op in enumerate(chunk))
            self._set_globals(len(chunk))
            result = self.collection.programs["pifo_ops"].test_run(PACKET)
            if result.retval != 2:  # XDP_PASS
                raise RuntimeError(f"pifo_ops returned {result.retval}")
            raw = dict(self.results.lookup_batch_raw())
            for i, op in enumerate(chunk):
                ret, rank, value = RESULT.unpack(raw[struct.pack("<I", i)])
                out.append((ret, rank, value) if ret == 0 or op[0] == "enq" else (ret, None, None))
        return out

    def bench(self, prefill, repeat=1_000_000):
        """ns per enqueue+dequeue pair with ``prefill`` elements queued, net of harness cost."""
        self.reset()
        step = max(1, (RANGE // 2) // max(prefill, 1))
        self.run([("enq", (i * step) % (RANGE // 2), i) for i in range(prefill)])
        pair = self.collection.programs["pifo_bench"].test_run(PACKET, repeat=repeat)
        if pair.retval != 2:
            raise RuntimeError(f"pifo_bench failed with {pair.retval}")
        empty = self.collection.programs["pifo_empty"].test_run(PACKET, repeat=repeat)
        return pair.duration_ns, empty.duration_ns
