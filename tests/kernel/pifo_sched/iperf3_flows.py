"""iperf3 as the traffic oracle for the scheduler: one cubic flow per port, byte shares.

Used by the kernel tests and by ``bench/sched_shares.py``.
"""
import json
import subprocess
import time


def iperf3_shares(ns_a, ns_b, ip_b, ports, seconds, omit=5):
    """One flow per port from ``ns_a`` to servers in ``ns_b``; the bytes each delivered
    after ``omit`` warm-up seconds, as shares of the total, and the total in Mbit/s."""
    servers = [subprocess.Popen(["ip", "netns", "exec", ns_b, "iperf3", "-s", "-1", "-p", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for port in ports]
    try:
        time.sleep(0.5)
        clients = [subprocess.Popen(["ip", "netns", "exec", ns_a, "iperf3", "-c", ip_b, "-p", str(port),
                                     "-t", str(seconds), "-O", str(omit), "-C", "cubic", "-J"],
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for port in ports]
        results = [json.loads(c.communicate(timeout=seconds + omit + 30)[0]) for c in clients]
    finally:
        for s in servers:
            s.kill()
            s.wait()
    received = [r["end"]["sum_received"]["bytes"] for r in results]
    return [b / sum(received) for b in received], sum(received) * 8 / seconds / 1e6
