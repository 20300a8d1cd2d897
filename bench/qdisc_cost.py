#!/usr/bin/env python3
"""What pifo_sched's BPF qdisc costs per packet, against the kernel's own qdiscs (issue 11).

Needs a kernel with CONFIG_NET_SCH_BPF (Linux 6.16+): run it in the VM tier,
``tools/vm/run --kernel bpf-qdisc -- python3 bench/qdisc_cost.py``. Three measurements,
all in the same run:

1. **BPF run time per packet.** The qdisc (``fifo``: one PIFO, rank function, the flow
   from skb->mark; ``fifo_port``: the same with the flow from the UDP port, as ``wfq``
   finds it; ``wfq``: the fair-queueing tree, 3 flows by port) at the root of a veth;
   ``kernel.bpf_stats_enabled`` set for the run (and put back), so the kernel adds up the
   run time and runs of the struct_ops programs. Enqueue + dequeue ns per packet = (run
   time of enqueue + run time of dequeue, the calls that found nothing included) /
   packets sent, the median and the fewest over the rounds (a vCPU the host deschedules
   inside a program adds the wait to bpf_stats, so noise only adds); beside it each
   program's ns per call, dequeue calls per packet, the share of packets the qdisc
   dropped, its error count and the packets each flow sent (the qdisc's counters).
2. **Packets per CPU-second through the veth** with each root qdisc: the BPF qdisc (each
   configuration above), ``pfifo_fast`` and ``fq_codel``, the same traffic (three iperf3
   UDP flows to ports 5201-5203, which ``wfq`` weighs 1:2:3, 64-byte datagrams, as fast
   as the clients send, ``--seconds`` each, rounds alternating the qdiscs). CPU = the
   busy time in /proc/stat (every CPU, user + system + softirq ...) over the run;
   packets = the veth's tx_packets. Ratios against pfifo_fast and fq_codel, and the extra
   CPU per packet they imply (1/rate - 1/rate of the baseline).
3. **PIFO operations, BPF against Python.** The qdisc built from the example plugin's rank
   object (``example_smallest``: rank = length on the wire) holds every packet
   (``BpfQdisc.hold``) while N datagrams of seeded random lengths are enqueued (a push
   each, at depths 0..N-1), then releases them (a pop each): ns per push and per pop from
   bpf_stats (the whole enqueue or dequeue program, so the slot and the counters too; the
   fewest of ``--pifo-rounds`` runs), against ``pifo.HeapPifo`` and ``pifo.BucketedPifo``
   (the Python PIFOs, net of the empty loops) pushing the same ranks, then popping them
   all. ``bench/pifo_designs.py`` compares the PIFO operations alone.

Targets (exit status 1 when one is missed): the BPF qdisc (fifo) carries at least 0.8x
the packets per CPU-second of fq_codel, and the BPF PIFO's push+pop is at least 10x
faster than the Python PIFO's. Both are relative: absolute figures under TCG emulation
are many times a real CPU's.

``--baseline-object FILE:KIND`` adds a BPF qdisc of someone else's (e.g. the kernel's
selftest ``bpf_qdisc_fifo``, built against the guest's BTF) to the throughput rounds as a
second baseline: registered with bpftool, attached by its kind, measured like the
kernel's qdiscs. It tells the cost of any BPF qdisc (the struct_ops calls, the root lock
held through them) from the cost of this one.

On the host, ``--vm`` runs the script so in the VM tier and, from the PHASE lines it
prints, also counts packets per CPU-second the host gave the whole VM (its qemu process)
over each throughput run: under TCG the guest's clocks are the host's wall clock, so host
load inflates bpf_stats and the guest's busy time, but not qemu's own CPU time. The
fq_codel target is then checked on that figure too, on the median over the rounds; the
fewest and most beside it show how far one run may stray (with concurrent senders the
BPF qdiscs' figures are bimodal: docs/benchmarks.md). ``--vm-smp N`` gives the guest N
vCPUs (default 2): with one, concurrent senders cannot contend for the qdisc's root lock.

Usage: python3 bench/qdisc_cost.py [--vm [--vm-smp N]] [--rounds N] [--seconds S] [--flows 1|2|3]
                                  [--schedulers fifo,fifo_port,wfq] [--baseline-object FILE:KIND]
                                  [--depths 100,1000,4000] [--pifo-rounds N] [--json FILE]  (root)
"""
import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from xnf.plugins.pifo_sched.features import bpf_qdisc_available  # noqa: E402
from xnf.plugins.pifo_sched.pifo import BucketedPifo, HeapPifo  # noqa: E402
from xnf.plugins.pifo_sched.qdisc.bpf_qdisc import BpfQdisc  # noqa: E402
from xnf.testing import traffic as tools  # noqa: E402
from xnf.testing.topology import VethPair  # noqa: E402
from pifo_designs import python_pifo  # noqa: E402  (bench/ is sys.path[0] when run as a script)

STATS_SYSCTL = "/proc/sys/kernel/bpf_stats_enabled"
NATIVE = ("pfifo_fast", "fq_codel")
PORTS = (5201, 5202, 5203)
# name: (scheduler, options); fifo finds the flow in skb->mark (a field), fifo_port and wfq
# by UDP port (the headers parsed through a dynptr, a hash lookup)
BPF = {"fifo": ("fifo", {}), "fifo_port": ("fifo", {"ports": list(PORTS)}),
       "wfq": ("wfq", {"weights": "5201=1,5202=2,5203=3"})}
TARGET_VS_FQ_CODEL = 0.8
TARGET_PIFO_SPEEDUP = 10.0
SO_SNDBUFFORCE = 32
PHASE = "XNF-QDISC-COST-PHASE"
HEADERS = 14 + 20 + 8  # Ethernet, IPv4, UDP: a datagram's skb->len at the root qdisc is this + payload
EXAMPLE_RANK_OBJECT = os.path.join(ROOT, "tests", "plugin_example", "xnf_example_nf", "example_smallest.bpf.o")


def busy_seconds():
    """CPU time spent not idle, over every CPU, in seconds (/proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def tx_packets(pair):
    out = subprocess.run(["ip", "netns", "exec", pair.ns_a, "cat", f"/sys/class/net/{pair.if_a}/statistics/tx_packets"],
                         capture_output=True, text=True, check=True).stdout
    return int(out)


def udp_flood(pair, seconds, flows):
    """``flows`` iperf3 UDP flows (ports from 5201: ``wfq``'s flows), 64-byte datagrams,
    unlimited rate, for ``seconds``; the same traffic whichever qdisc is at the root."""
    ports = PORTS[:flows]
    servers = [tools.popen(pair.ns_b, ["iperf3", "-s", "-1", "-B", pair.ip_b, "-p", str(port)],
                           stdout=subprocess.DEVNULL) for port in ports]
    clients = []
    try:
        for port in ports:
            tools.wait_listening(pair.ns_b, port)
        clients = [tools.popen(pair.ns_a, ["iperf3", "-c", pair.ip_b, "-p", str(port), "-u", "-b", "0", "-l", "64",
                                           "-t", str(seconds)], stdout=subprocess.DEVNULL)
                   for port in ports]
        for client in clients:
            if client.wait(timeout=seconds + 60):
                raise RuntimeError(f"iperf3 client exited {client.returncode}")
    finally:
        tools.stop(servers + clients)


class Native:
    """A kernel qdisc at the root (tc as a tool: this is a benchmark, not the library)."""

    def __init__(self, pair, kind):
        self.pair, self.kind = pair, kind

    def __enter__(self):
        subprocess.run(["ip", "netns", "exec", self.pair.ns_a, "tc", "qdisc", "replace", "dev", self.pair.if_a,
                        "root", self.kind], check=True)
        return self

    def __exit__(self, *exc):
        subprocess.run(["ip", "netns", "exec", self.pair.ns_a, "tc", "qdisc", "del", "dev", self.pair.if_a, "root"],
                       check=False, capture_output=True)


class ForeignBpf(Native):
    """Someone else's BPF qdisc (a struct_ops object), registered with bpftool for the run
    (a benchmark's tool, as tc), at the root by its kind."""

    def __init__(self, pair, kind, obj):
        super().__init__(pair, kind)
        self.obj = obj

    def register(self):
        out = subprocess.run(["bpftool", "struct_ops", "register", self.obj], capture_output=True, text=True)
        words = (out.stdout + out.stderr).split()  # "Registered Qdisc_ops NAME id N" (on stderr)
        if out.returncode or "id" not in words[:-1]:
            raise RuntimeError(f"bpftool struct_ops register {self.obj}: {out.stderr.strip() or out.stdout.strip()}")
        return words[words.index("id") + 1]

    @staticmethod
    def unregister(map_id):
        subprocess.run(["bpftool", "struct_ops", "unregister", "id", map_id], check=False, capture_output=True)


class Bpf:
    """pifo_sched's BPF qdisc at the root; its struct_ops programs' bpf_stats."""

    def __init__(self, pair, name, obj=None):
        scheduler, options = BPF.get(name, (name, {}))
        self.qdisc = BpfQdisc(pair.if_a, scheduler, dict(options, limit=4096), netns=pair.ns_a, obj=obj)

    def __enter__(self):
        self.qdisc.attach()
        return self

    def __exit__(self, *exc):
        self.qdisc.detach()

    def totals(self):
        out = {}
        for hook in ("enqueue", "dequeue"):
            info = self.qdisc.collection.programs[f"xnf_qdisc_{hook}"].info()
            out[hook] = (info.run_time_ns, info.run_cnt)
        return out


def throughput(pair, name, qdisc, seconds, flows):
    """(packets per CPU-second, packets, BPF figures or None) of one run; the BPF figures:
    run time and runs of each program over the run, and the qdisc's own counters. The
    PHASE lines let ``--vm`` on the host take the VM's CPU time over the same span."""
    with qdisc as q:
        before = q.totals() if isinstance(q, Bpf) else None
        print(f"{PHASE} begin {name.replace(' ', ':')}", flush=True)
        sent, busy = tx_packets(pair), busy_seconds()
        udp_flood(pair, seconds, flows)
        sent, busy = tx_packets(pair) - sent, busy_seconds() - busy
        print(f"{PHASE} end {name.replace(' ', ':')} {sent}", flush=True)
        bpf = None
        if before is not None:
            after = q.totals()
            bpf = {h: (after[h][0] - before[h][0], after[h][1] - before[h][1]) for h in after}
            bpf["stats"] = q.qdisc.stats()
    return sent / busy, sent, bpf


def pifo_ops(pair, ranks):
    """(push ns, pop ns) of the BPF qdisc's PIFO at up to ``len(ranks)`` held packets: the
    example plugin's rank object (rank = length on the wire), datagrams of those lengths."""
    q = Bpf(pair, "example_smallest", obj=EXAMPLE_RANK_OBJECT)
    rx = tools.socket_in(pair.ns_b, socket.AF_INET, socket.SOCK_DGRAM)
    tx = tools.socket_in(pair.ns_a, socket.AF_INET, socket.SOCK_DGRAM)
    try:
        tx.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, 256 << 20)  # held packets count against it
        rx.bind((pair.ip_b, 7400))
        with q:
            tools.ping(pair.ns_a, pair.ip_b, count=1)  # ARP before the hold
            q.qdisc.hold(True)
            before = q.totals()
            for rank in ranks:
                tx.sendto(bytes(rank - HEADERS), (pair.ip_b, 7400))
            middle = q.totals()
            q.qdisc.hold(False)
            deadline = time.monotonic() + 60
            while q.qdisc.stats()["backlog_packets"] and time.monotonic() < deadline:
                time.sleep(0.01)
            after = q.totals()
            if q.qdisc.stats()["sent_packets"] < len(ranks):
                raise RuntimeError(f"only {q.qdisc.stats()['sent_packets']} of {len(ranks)} held packets left")
    finally:
        rx.close()
        tx.close()
    push = (middle["enqueue"][0] - before["enqueue"][0]) / max(1, middle["enqueue"][1] - before["enqueue"][1])
    # the dequeues that found nothing while holding are left out: they return before the PIFO
    pop = (after["dequeue"][0] - middle["dequeue"][0]) / len(ranks)
    return push, pop


def spread(values):
    """"median (fewest)": under TCG on a loaded host a vCPU descheduled inside a program
    adds its wait to bpf_stats, so noise only adds and the fewest is the steadier figure."""
    return f"{statistics.median(values):.0f} ({min(values):.0f})"


def qemu_cpu_ns(parent):
    """CPU time (ns) the host has given the qemu process that ``parent`` started, all threads."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)
            if int(fields[1].split()[1]) != parent or "qemu" not in fields[0]:
                continue
            total = 0
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                    total += int(f.read().split()[0])
            return total
        except (OSError, IndexError, ValueError):
            continue
    raise RuntimeError(f"no qemu process under pid {parent}")


def vm_main(argv, timeout, smp):
    """Run this script in the VM tier's bpf-qdisc kernel and count, per throughput run,
    packets per CPU-second the host gave the whole VM (qemu's threads): host load slows the
    guest's clock-based figures, not this one."""
    cmd = [os.path.join(ROOT, "tools", "vm", "run"), "--kernel", "bpf-qdisc", "--timeout", str(timeout),
           "--smp", str(smp), "--", "python3", "bench/qdisc_cost.py", *argv]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, errors="replace", cwd=ROOT)
    rates, start = {}, {}
    for line in proc.stdout:
        sys.stdout.write(line)
        words = line.split()
        if len(words) >= 3 and words[0] == PHASE:
            cpu = qemu_cpu_ns(proc.pid)
            if words[1] == "begin":
                start[words[2]] = cpu
            elif words[2] in start:
                rates.setdefault(words[2].replace(":", " "), []).append(int(words[3]) / ((cpu - start[words[2]]) / 1e9))
    status = proc.wait()
    if not rates or "fq_codel" not in rates or "pfifo_fast" not in rates:
        print(f"qdisc_cost --vm: no throughput figures from the guest (exit status {status})", file=sys.stderr)
        return 2
    median = {q: statistics.median(v) for q, v in rates.items()}
    print(f"\n{'root qdisc':<22} {'packets per host CPU-second of the VM, median (fewest-most)':>60} "
          f"{'vs pfifo_fast':>14} {'vs fq_codel':>12}")
    for q, rate in median.items():
        figure = f"{rate:.0f} ({min(rates[q]):.0f}-{max(rates[q]):.0f})"
        print(f"{q:<22} {figure:>60} {rate / median['pfifo_fast']:>14.3f} {rate / median['fq_codel']:>12.3f}")
    if "bpf fifo" in median and median["bpf fifo"] / median["fq_codel"] < TARGET_VS_FQ_CODEL:
        print(f"MISSED: bpf fifo carries {median['bpf fifo'] / median['fq_codel']:.2f}x fq_codel's packets per host "
              f"CPU-second (target {TARGET_VS_FQ_CODEL})")
        return 1
    return 0 if status in (0, 1) else 2


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if "--vm" in argv:
        vm = argparse.ArgumentParser(add_help=False)
        vm.add_argument("--vm-smp", type=int, default=2)
        known, rest = vm.parse_known_args([a for a in argv if a != "--vm"])
        return vm_main(rest, timeout=1800, smp=known.vm_smp)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--depths", default="100,1000,4000")
    ap.add_argument("--schedulers", default=",".join(BPF),
                    help=f"BPF qdisc configurations to measure (default {','.join(BPF)})")
    ap.add_argument("--flows", type=int, default=3, choices=(1, 2, 3), help="iperf3 flows at once (default 3)")
    ap.add_argument("--baseline-object", metavar="FILE:KIND",
                    help="a BPF qdisc object of someone else's, measured beside the kernel's qdiscs by its kind")
    ap.add_argument("--pifo-rounds", type=int, default=3, help="runs of each depth (the fewest ns count)")
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--vm", action="store_true",
                    help="on the host: run this in the VM tier's bpf-qdisc kernel and add packets per host "
                         "CPU-second of the VM")
    ap.add_argument("--vm-smp", type=int, default=2, help="with --vm: the guest's vCPUs (default 2)")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("qdisc_cost needs root (namespaces, BPF, bpf_stats)", file=sys.stderr)
        return 2
    if not bpf_qdisc_available():
        print("qdisc_cost needs CONFIG_NET_SCH_BPF (Linux 6.16+): run it with --vm (or "
              "tools/vm/run --kernel bpf-qdisc -- python3 bench/qdisc_cost.py)", file=sys.stderr)
        return 2
    with open(STATS_SYSCTL) as f:
        old = f.read().strip()
    results = {"rates": {}, "bpf": {}, "pifo": {}}
    foreign, foreign_id = None, None
    with open(STATS_SYSCTL, "w") as f:
        f.write("1")
    try:
        with VethPair(prefix="xqb") as pair:
            chosen = args.schedulers.split(",")
            qdiscs = list(NATIVE) + [f"bpf {s}" for s in chosen]
            if args.baseline_object:
                obj, _, kind = args.baseline_object.rpartition(":")
                foreign = ForeignBpf(pair, kind, obj)
                foreign_id = foreign.register()
                qdiscs.append(f"object {kind}")
            rates = {q: [] for q in qdiscs}
            bpf_runs = {s: [] for s in chosen}
            for _ in range(args.rounds):
                for name in qdiscs:
                    if name.startswith("bpf "):
                        q = Bpf(pair, name[4:])
                    else:
                        q = foreign if name.startswith("object ") else Native(pair, name)
                    rate, sent, bpf = throughput(pair, name, q, args.seconds, args.flows)
                    rates[name].append(rate)
                    if bpf is not None:
                        bpf_runs[name[4:]].append(dict(bpf, packets=sent))
            rng = random.Random(1)
            for depth in (int(d) for d in args.depths.split(",")):
                ranks = [HEADERS + rng.randrange(18, 1401) for _ in range(depth)]
                runs = [pifo_ops(pair, ranks) for _ in range(args.pifo_rounds)]
                push, pop = min(r[0] for r in runs), min(r[1] for r in runs)
                py = {cls.__name__: python_pifo(cls, ranks, 1 << 16) for cls in (HeapPifo, BucketedPifo)}
                results["pifo"][depth] = {"bpf": (push, pop), **py}
    finally:
        if foreign_id is not None:
            ForeignBpf.unregister(foreign_id)
        with open(STATS_SYSCTL, "w") as f:
            f.write(old)
    missed = []
    print(f"{'root qdisc':<16} {'packets/CPU-s':>14} {'vs pfifo_fast':>14} {'vs fq_codel':>12} "
          f"{'extra ns/pkt vs pfifo_fast':>27} {'BPF ns/pkt (bpf_stats; fewest)':>31}")
    median = {q: statistics.median(v) for q, v in rates.items()}
    bpf_ns = {s: [(r["enqueue"][0] + r["dequeue"][0]) / r["packets"] for r in runs] for s, runs in bpf_runs.items()}
    for q in qdiscs:
        extra = (1 / median[q] - 1 / median["pfifo_fast"]) * 1e9
        ns = spread(bpf_ns[q[4:]]) if q.startswith("bpf ") else "-"
        print(f"{q:<16} {median[q]:>14.0f} {median[q] / median['pfifo_fast']:>14.3f} "
              f"{median[q] / median['fq_codel']:>12.3f} {extra:>27.0f} {ns:>31}")
    print(f"\n{'BPF qdisc':<10} {'enqueue ns/call':>16} {'dequeue ns/call':>16} {'dequeues/pkt':>13} "
          f"{'drops/pkt':>10} {'errors':>7}  packets sent per flow (last round)")
    for sched, runs in bpf_runs.items():
        enq = spread([r["enqueue"][0] / max(1, r["enqueue"][1]) for r in runs])
        deq = spread([r["dequeue"][0] / max(1, r["dequeue"][1]) for r in runs])
        calls = statistics.median(r["dequeue"][1] / max(1, r["packets"]) for r in runs)
        drops = statistics.median(r["stats"]["drops"] / max(1, r["stats"]["enqueued_packets"] + r["stats"]["drops"])
                                  for r in runs)
        errors = sum(r["stats"]["errors"] for r in runs)
        flows = " / ".join(str(f["packets"]) for f in runs[-1]["stats"]["flows"].values())
        print(f"{sched:<10} {enq:>16} {deq:>16} {calls:>13.2f} {drops:>10.3f} {errors:>7}  {flows}")
    results["rates"] = rates
    results["bpf"] = bpf_runs
    if "bpf fifo" in median and median["bpf fifo"] / median["fq_codel"] < TARGET_VS_FQ_CODEL:
        missed.append(f"bpf fifo carries {median['bpf fifo'] / median['fq_codel']:.2f}x fq_codel's packets per "
                      f"CPU-second (target {TARGET_VS_FQ_CODEL})")
    print(f"\n{'depth':>6} {'BPF push ns':>12} {'BPF pop ns':>11} {'HeapPifo push':>14} {'pop':>7} "
          f"{'BucketedPifo push':>18} {'pop':>7} {'Python/BPF (best Python)':>25}")
    for depth, r in results["pifo"].items():
        bpf = sum(r["bpf"])
        best_py = min(sum(r["HeapPifo"]), sum(r["BucketedPifo"]))
        print(f"{depth:>6} {r['bpf'][0]:>12.0f} {r['bpf'][1]:>11.0f} {r['HeapPifo'][0]:>14.0f} "
              f"{r['HeapPifo'][1]:>7.0f} {r['BucketedPifo'][0]:>18.0f} {r['BucketedPifo'][1]:>7.0f} "
              f"{best_py / bpf:>25.1f}")
        if best_py / bpf < TARGET_PIFO_SPEEDUP:
            missed.append(f"at depth {depth} the BPF PIFO is only {best_py / bpf:.1f}x the Python PIFO "
                          f"(target {TARGET_PIFO_SPEEDUP})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, default=str)
    for m in missed:
        print(f"MISSED: {m}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
