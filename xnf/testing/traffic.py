"""Traffic for tests, benchmarks and demos: tools run inside a namespace (ping, iperf3,
tcpdump), bulk TCP flows from Python sockets, and a way to stop what was started.

A testing aid: unlike the library, which never runs external programs, these helpers
do (ping and iperf3 are independent oracles for what a network function measures).
A program runs in a namespace by being started from a thread that has entered it
(the child inherits the thread's namespace), not through ``ip netns exec``.
"""
import json
import re
import signal
import socket
import subprocess
import threading
import time

from xnf.core.kernel import netns as _netns


def popen(ns, argv, **kw):
    """Start ``argv`` inside namespace ``ns`` (``None``: ours); ``kw`` go to Popen."""
    with _netns.entered(ns):
        return subprocess.Popen(list(argv), **kw)


def run(ns, argv, check=True, timeout=60):
    """Run ``argv`` inside ``ns`` and return its stdout; raise with its stderr if it fails and ``check``."""
    with _netns.entered(ns):
        r = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if check and r.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed ({r.returncode}) in {ns}: {r.stderr.strip()}")
    return r.stdout


def stop(procs, timeout=5.0):
    """SIGTERM each process still running, newest first (tcpdump then flushes its
    capture); kill what does not stop within ``timeout``."""
    for p in reversed(list(procs)):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def ping(ns, dst, count=3, interval=0.05, wait=1):
    """Ping ``dst`` from ``ns``: (replies received, list of RTTs in ms as ping printed them)."""
    argv = ["ping", "-c", str(count), "-i", str(interval), "-W", str(wait), dst]
    out = run(ns, argv, check=False, timeout=count * (interval + wait) + 10)
    received = 0
    for line in out.splitlines():
        if "received" in line:
            received = int(line.split(",")[1].split()[0])
    return received, [float(m) for m in re.findall(r"time=([\d.]+) ms", out)]


def wait_listening(ns, port, timeout=5.0):
    """Wait until a TCP socket listens on ``port`` in ``ns`` (read from the namespace's
    /proc/net/tcp and tcp6, so the server sees no probe connection)."""
    deadline = time.monotonic() + timeout
    hex_port = f":{port:04X} "
    while time.monotonic() < deadline:
        for table in ("tcp", "tcp6"):
            with _netns.entered(ns):
                with open(f"/proc/thread-self/net/{table}") as f:  # the thread's namespace, not the process's
                    lines = f.read().splitlines()[1:]
            if any(hex_port in line.split()[1] + " " and line.split()[3] == "0A" for line in lines):  # 0A: LISTEN
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on TCP port {port} in {ns}")


def iperf3_rate(ns_a, ns_b, ip_b, seconds, streams=1):
    """Bits per second that ``streams`` parallel iperf3 TCP streams from ``ns_a`` deliver to
    a server on ``ip_b`` in ``ns_b`` (port 5201) over ``seconds``."""
    server = popen(ns_b, ["iperf3", "-s", "-1", "-B", ip_b], stdout=subprocess.DEVNULL)
    try:
        wait_listening(ns_b, 5201)
        out = run(ns_a, ["iperf3", "-c", ip_b, "-t", str(seconds), "-P", str(streams), "-J"], timeout=seconds + 30)
    finally:
        stop([server])
    return json.loads(out)["end"]["sum_received"]["bits_per_second"]


def iperf3_shares(ns_a, ns_b, ip_b, ports, seconds, omit=5, congestion_control="cubic"):
    """One iperf3 flow per port from ``ns_a`` to servers in ``ns_b``; the bytes each
    delivered after ``omit`` warm-up seconds as shares of the total, and the total in Mbit/s."""
    servers = [popen(ns_b, ["iperf3", "-s", "-1", "-p", str(port)], stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL) for port in ports]
    try:
        for port in ports:
            wait_listening(ns_b, port)
        clients = [popen(ns_a, ["iperf3", "-c", ip_b, "-p", str(port), "-t", str(seconds), "-O", str(omit),
                                "-C", congestion_control, "-J"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True) for port in ports]
        results = [json.loads(c.communicate(timeout=seconds + omit + 30)[0]) for c in clients]
    finally:
        for s in servers:
            s.kill()
            s.wait()
    received = [r["end"]["sum_received"]["bytes"] for r in results]
    return [b / sum(received) for b in received], sum(received) * 8 / seconds / 1e6


def socket_in(ns, *args):
    """A socket created inside ``ns`` (it stays there whichever thread uses it)."""
    with _netns.entered(ns):
        return socket.socket(*args)


def tcp_flows(ns_a, ns_b, ip_b, ports, duration, warmup=2.0, congestion_control=b"cubic", chunk=1 << 16):
    """One bulk TCP flow per port from ``ns_a`` to receivers in ``ns_b`` (Python sockets,
    no external tool); the bytes each receiver got in ``duration`` seconds after ``warmup``.
    Raises the first socket error a flow met (other than the close at the end)."""
    stop_flag = threading.Event()
    received = {port: 0 for port in ports}
    errors = []
    listeners = []
    for port in ports:
        sock = socket_in(ns_b, socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((ip_b, port))
        sock.listen(4)
        sock.settimeout(0.5)
        listeners.append(sock)

    def receive(listener, port):
        while True:
            try:
                conn, _ = listener.accept()
                break
            except socket.timeout:
                if stop_flag.is_set():
                    return
            except OSError as e:
                errors.append(e)
                return
        conn.settimeout(0.5)
        with conn:
            while not stop_flag.is_set():
                try:
                    data = conn.recv(chunk)
                except socket.timeout:
                    continue
                if not data:
                    break
                received[port] += len(data)

    def send(port):
        try:
            sock = socket_in(ns_a, socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, congestion_control)
            sock.connect((ip_b, port))
            sock.settimeout(0.5)
            payload = bytes(chunk)
            with sock:
                while not stop_flag.is_set():
                    try:
                        sock.send(payload)
                    except socket.timeout:
                        continue
        except OSError as e:
            if not stop_flag.is_set():  # the receiver closing at the end is expected
                errors.append(e)

    threads = [threading.Thread(target=receive, args=(sock, port), daemon=True)
               for sock, port in zip(listeners, ports)]
    threads += [threading.Thread(target=send, args=(port,), daemon=True) for port in ports]
    for t in threads:
        t.start()
    try:
        time.sleep(warmup)
        before = dict(received)
        time.sleep(duration)
        after = dict(received)
    finally:
        stop_flag.set()
        for t in threads:
            t.join(timeout=2)
        for sock in listeners:
            sock.close()
    if errors:
        raise errors[0]
    return {port: after[port] - before[port] for port in ports}
