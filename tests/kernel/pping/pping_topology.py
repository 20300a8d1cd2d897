"""The client - middlebox - server topology of the pping tests, from xnf.testing, with
the test-side commands (ip, tc, ss, ping are the tools here; the library never shells out).

client (cli0: 10.x.1.2, fd00:x:1::2) <-> (mid0) middlebox (mid1) <-> (srv0: 10.x.2.2, fd00:x:2::2) server

pping goes on the middlebox's ``mid1``. Everything is removed by :meth:`Topology.destroy`,
which the tests call in ``finally``.
"""
import subprocess
import time

from netenv import still_there
from xnf.testing import traffic
from xnf.testing.topology import ClientMiddleboxServer


def sh(*args, check=True, timeout=60):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode:
        raise RuntimeError(f"{' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
    return r.stdout


class Topology(ClientMiddleboxServer):
    def __init__(self, net=71):
        super().__init__(net, prefix="pp")
        self.procs = []

    def ns(self, ns, *args, check=True, timeout=60):
        return traffic.run(ns, args, check=check, timeout=timeout)

    def create(self):
        self.__enter__()
        # neighbours resolved before anything is measured
        self.ns(self.cli, "ping", "-c", "1", "-W", "2", self.srv_ip)
        self.ns(self.cli, "ping", "-6", "-c", "1", "-W", "2", self.srv_ip6, check=False)
        return self

    def spawn(self, ns, *args, **kw):
        p = traffic.popen(ns, args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
        self.procs.append(p)
        return p

    def destroy(self):
        traffic.stop(self.procs)
        self.close()

    def wait_port(self, ns, port, proto="tcp", timeout=5.0):
        flag = "-tln" if proto == "tcp" else "-uln"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if f":{port} " in self.ns(ns, "ss", flag, check=False):
                return
            time.sleep(0.05)
        raise RuntimeError(f"nothing listens on {proto} port {port} in {ns}")


DNS_RESPONDER = r"""
import socket, struct, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
while True:
    data, peer = s.recvfrom(512)
    if len(data) < 12:
        continue
    qid, flags, qd = struct.unpack("!HHH", data[:6])
    q = data[12:]
    end = q.index(b"\0") + 5
    answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton("192.0.2.1")
    s.sendto(struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + q[:end] + answer, peer)
"""


def pping_ids(ns, dev):
    """Ids of the pping programs attached to ``dev`` in ``ns`` and of the maps they use
    (found with xnf's query, described by bpftool): what this test owns, even while
    other tests load pping elsewhere on the machine."""
    import json as _json

    from xnf.core.attach import query

    ids = set()
    for hp in query(dev, ns):
        if hp.prog_name.startswith("pping_"):
            ids.add(("prog", hp.prog_id))
            info = _json.loads(sh("bpftool", "-j", "prog", "show", "id", str(hp.prog_id)))
            ids.update(("map", m) for m in info.get("map_ids", []))
    return ids


def still_loaded(ids, settle=3.0):
    """Those of ``ids`` the kernel still has (freeing is asynchronous: awaited a little)."""
    return still_there(lambda: {(kind, i) for kind, i in ids
                                if subprocess.run(["bpftool", kind, "show", "id", str(i)],
                                                  capture_output=True).returncode == 0}, settle)


TUN_ECHO = r"""
import fcntl, os, struct, sys
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, 0x400454ca, struct.pack("16sH", sys.argv[1].encode(), 0x0001 | 0x1000))  # TUNSETIFF: IFF_TUN|IFF_NO_PI
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF
print("ready", flush=True)
while True:
    p = bytearray(os.read(fd, 2048))
    if p[0] >> 4 != 4 or p[9] != 1:
        continue
    hl = (p[0] & 15) * 4
    if p[hl] != 8:
        continue
    p[12:16], p[16:20] = p[16:20], p[12:16]
    p[hl] = 0
    p[hl + 2:hl + 4] = b"\0\0"
    p[hl + 2:hl + 4] = struct.pack("!H", csum(bytes(p[hl:])))
    p[10:12] = b"\0\0"
    p[10:12] = struct.pack("!H", csum(bytes(p[:hl])))
    os.write(fd, bytes(p))
"""


# A QUIC-shaped exchange on UDP port 443: short-header packets (form bit clear, fixed
# bit set) whose spin bit follows RFC 9000 17.4: the server reflects the last value it
# received, the client sends the inverse of the last value it received.
SPIN_SERVER = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 443))
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(bytes([0x40 | (data[0] & 0x20)]) + data[1:], peer)
"""

SPIN_CLIENT = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1.0)
spin = 0
for i in range(int(sys.argv[2])):
    s.sendto(bytes([0x40 | (spin << 5)]) + bytes(8) + b"q" * 100, (sys.argv[1], 443))
    data = s.recv(2048)
    spin = 1 - ((data[0] >> 5) & 1)
    time.sleep(0.002)
"""
