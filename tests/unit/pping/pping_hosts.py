"""Two hosts for the reference's real-traffic tests: a client and a server namespace
joined by a veth pair, and a way to stop the tools that ran in them.

The tests shell out (ip, tcpdump, ping, iperf3 are the independent tools); the library
never does.
"""
import contextlib
import os
import signal
import subprocess


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


@contextlib.contextmanager
def client_server(prefix, net):
    """Namespaces ``{prefix}c<pid>`` (10.<net>.0.1) and ``{prefix}s<pid>`` (10.<net>.0.2);
    yields (client ns, server ns, client dev, server dev); both are deleted afterwards,
    also on failure."""
    tag = f"{os.getpid() % 100000}"
    cns, sns = f"{prefix}c{tag}", f"{prefix}s{tag}"
    cdev, sdev = f"{prefix}c{tag}", f"{prefix}s{tag}"
    made = []
    try:
        for ns in (cns, sns):
            sh("ip", "netns", "add", ns)
            made.append(ns)
        sh("ip", "link", "add", cdev, "netns", cns, "type", "veth", "peer", sdev, "netns", sns)
        for ns, dev, addr in ((cns, cdev, f"10.{net}.0.1/24"), (sns, sdev, f"10.{net}.0.2/24")):
            sh("ip", "-n", ns, "addr", "add", addr, "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        yield cns, sns, cdev, sdev
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def stop_all(procs):
    """SIGTERM each process still running, newest first (tcpdump then flushes its
    capture); kill what does not stop within 5 s."""
    for p in reversed(procs):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
