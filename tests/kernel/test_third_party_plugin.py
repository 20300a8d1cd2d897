"""A third-party plugin package, installed with pip into a throwaway virtual environment,
works with every `xnf` command unchanged.

``tests/plugin_example`` (package ``xnf_example_nf``) registers the network function
``example`` (an XDP frame counter) and the scheduler ``example_fifo`` through entry
points only. The venv is made with ``--system-site-packages`` so that xnf and its
dependencies come from the system; the plugin goes in with ``pip install --no-deps
--no-build-isolation`` from a copy of its sources (an in-tree build would leave files in
the checkout). Commands run as ``<venv>/bin/python -m xnf.cli.main``: the `xnf` of that
venv, which sees the plugin where the system's does not.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

pytestmark = [pytest.mark.root, pytest.mark.slow]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLUGIN_SRC = os.path.join(ROOT, "tests", "plugin_example")
ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "XNF_DEBUG", "PYTHONHOME")}


def _run(*cmd, check=True, timeout=300):
    r = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=timeout, cwd=tempfile.gettempdir())
    if check and r.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stdout}{r.stderr}")
    return r


@pytest.fixture(scope="module")
def venv():
    """A venv with the example plugin installed; removed at the end."""
    if os.geteuid() != 0:
        pytest.skip("needs root (CAP_BPF, CAP_NET_ADMIN)")
    base = tempfile.mkdtemp(prefix="xnf-plugin-venv-")
    try:
        _run(sys.executable, "-m", "venv", "--system-site-packages", os.path.join(base, "venv"))
        python = os.path.join(base, "venv", "bin", "python")
        src = shutil.copytree(PLUGIN_SRC, os.path.join(base, "src"),
                              ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
        if _run(python, "-c", "import setuptools.command.bdist_wheel", check=False).returncode and \
                _run(python, "-c", "import wheel", check=False).returncode:
            # setuptools < 70.1 builds wheels only with the `wheel` package: into the venv, not the system
            _run(python, "-m", "pip", "install", "-q", "wheel")
        _run(python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", src)
        yield python
    finally:
        shutil.rmtree(base, ignore_errors=True)


def make_xnf(python):
    def xnf(*args, check=False):
        r = _run(python, "-m", "xnf.cli.main", *args, check=False)
        assert "Traceback" not in r.stderr, r.stderr
        if check:
            assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r
    return xnf


def one_line_error(r, *contains):
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("xnf: error: "), r.stderr
    for text in contains:
        assert text in lines[0], (text, lines[0])


@pytest.fixture
def attached_cleanup(venv, netns_pair):
    """Whatever a failing test leaves attached is detached (and its pins removed) afterwards."""
    yield
    make_xnf(venv)("detach", "example", netns_pair.if_a, "--netns", netns_pair.ns_a)
    from xnf.core.attach.pinroot import PinRoot

    PinRoot(netns_pair.if_a, "example", netns=netns_pair.ns_a).remove_all()


def status_of(xnf, pair):
    r = xnf("status", "--json", check=True)
    return [s for s in json.loads(r.stdout) if s.get("name") == "example" and s.get("iface") == pair.if_a]


def test_installed_plugin_is_listed(venv):
    xnf = make_xnf(venv)
    r = xnf("list", "--json", check=True)
    nfs = json.loads(r.stdout)["network_functions"]
    assert nfs["example"] == {"description": "example third-party plugin: count received frames with XDP",
                              "hooks": ["xdp"], "modes": ["skb", "native"]}
    assert "example_fifo" in json.loads(r.stdout)["schedulers"]
    assert "example" in xnf("list", check=True).stdout
    # the system's xnf, outside the venv, does not see it: the entry point is all it takes
    assert "example" not in json.loads(_run(sys.executable, "-m", "xnf.cli.main", "list", "--json").stdout)[
        "network_functions"]


def test_config_fields_are_cli_options(venv):
    r = make_xnf(venv)("attach", "example", "--help", check=True)
    assert "--verdict {pass,drop}" in r.stdout and "--interval" in r.stdout and "--netns" in r.stdout
    r = make_xnf(venv)("attach", "example", "veth0", "--verdict", "explode")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_attach_count_status_detach(venv, netns_pair, iface_state, attached_cleanup):
    xnf = make_xnf(venv)
    pair = netns_pair
    before = iface_state(pair.ns_a, pair.if_a)
    r = xnf("attach", "example", pair.if_a, "--netns", pair.ns_a, check=True)
    assert "example attached to " + pair.if_a in r.stdout
    assert iface_state(pair.ns_a, pair.if_a)["bpftool_net"] != before["bpftool_net"]
    assert pair.ping(count=4) == 4                                # XDP_PASS: traffic flows
    (status,) = status_of(xnf, pair)
    assert status["netns"] == pair.ns_a and status["mode"] in ("native", "skb")
    assert status["packets"] >= 4 and status["bytes"] >= 4 * 98
    r = xnf("status", pair.if_a, "--netns", pair.ns_a, check=True)
    assert "example" in r.stdout and pair.if_a in r.stdout
    # attaching twice is refused, and the first attachment stays
    one_line_error(xnf("attach", "example", pair.if_a, "--netns", pair.ns_a), "already attached")
    assert status_of(xnf, pair)
    # detach restores the interface exactly, and forgets the pins
    xnf("detach", "example", pair.if_a, "--netns", pair.ns_a, check=True)
    assert iface_state(pair.ns_a, pair.if_a) == before
    assert status_of(xnf, pair) == []
    one_line_error(xnf("detach", "example", pair.if_a, "--netns", pair.ns_a), "not attached")


def test_drop_verdict_from_rodata(venv, netns_pair, iface_state, attached_cleanup):
    xnf = make_xnf(venv)
    pair = netns_pair
    before = iface_state(pair.ns_a, pair.if_a)
    xnf("attach", "example", pair.if_a, "--netns", pair.ns_a, "--verdict", "drop", "--mode", "skb", check=True)
    assert pair.ping(count=3) == 0
    (status,) = status_of(xnf, pair)
    assert status["mode"] == "skb" and status["packets"] >= 1    # ARP requests, counted then dropped
    xnf("detach", "example", pair.if_a, "--netns", pair.ns_a, check=True)
    _run("ip", "-n", pair.ns_b, "neigh", "flush", "dev", pair.if_b)  # forget the failed ARP resolution
    assert pair.ping(count=3) == 3
    assert iface_state(pair.ns_a, pair.if_a) == before


def test_detach_after_the_interface_is_gone(venv, netns_pair, attached_cleanup):
    """The veth disappears while attached: status still answers, detach removes the pins."""
    xnf = make_xnf(venv)
    pair = netns_pair
    xnf("attach", "example", pair.if_a, "--netns", pair.ns_a, check=True)
    _run("ip", "-n", pair.ns_a, "link", "del", pair.if_a)
    r = xnf("status", "--json")
    assert r.returncode == 0, r.stderr
    r = xnf("detach", "example", pair.if_a, "--netns", pair.ns_a)
    assert r.returncode in (0, 1) and len(r.stderr.strip().splitlines()) <= 1, r.stderr
    from xnf.core.attach.pinroot import PinRoot

    assert not os.path.exists(PinRoot(pair.if_a, "example", netns=pair.ns_a).path)


def test_missing_interface_leaves_nothing(venv, netns_pair, iface_state):
    xnf = make_xnf(venv)
    before = iface_state(netns_pair.ns_a, netns_pair.if_a)
    one_line_error(xnf("attach", "example", "xnfnosuch0", "--netns", netns_pair.ns_a), "xnfnosuch0")
    assert iface_state(netns_pair.ns_a, netns_pair.if_a) == before
    from xnf.core.attach.pinroot import PinRoot

    assert not os.path.exists(PinRoot("xnfnosuch0", "example", netns=netns_pair.ns_a).path)
    one_line_error(xnf("attach", "example", netns_pair.if_a, "--netns", "xnf-no-such-ns"), "xnf-no-such-ns")


def packets(line):
    """The count in a line of `xnf run example` (``HH:MM:SS IFACE: N packets, M bytes``)."""
    return int(line.split(": ")[1].split()[0])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_run_streams_and_detaches_on_signal(venv, netns_pair, iface_state, attached_cleanup, signum):
    pair = netns_pair
    before = iface_state(pair.ns_a, pair.if_a)
    proc = subprocess.Popen([venv, "-m", "xnf.cli.main", "run", "example", pair.if_a, "--netns", pair.ns_a,
                             "--interval", "0.2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=ENV, cwd=tempfile.gettempdir())
    try:
        lines = [proc.stdout.readline()]
        first = lines[0]
        assert f"{pair.if_a}: " in first and "packets" in first, (first, proc.stderr.read() if proc.poll() else "")
        pair.ping(count=3)
        # the signal goes once a line has counted the three pings: a fixed wait could end before
        # a loaded machine let the command print. A line comes every 0.2 s until the command
        # exits (then readline gives ""); the deadline only bounds a broken count.
        deadline = time.monotonic() + 60
        while lines[-1] and packets(lines[-1]) < 3 and time.monotonic() < deadline:
            lines.append(proc.stdout.readline())
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0 and "Traceback" not in err, err
    counts = [packets(line) for line in ("".join(lines) + out).splitlines() if "packets" in line]
    assert counts == sorted(counts) and counts[-1] >= 3
    assert iface_state(pair.ns_a, pair.if_a) == before


BROKEN = {
    # module source, entry point: a plugin that cannot be imported, and one whose options cannot be built
    "xnf_broken_import": ("raise ImportError('xnf_broken_import needs a module that is not installed')\n",
                          "broken_import = xnf_broken_import:Nope"),
    "xnf_broken_options": ("from xnf.nf import NetworkFunction\n"
                           "class Broken(NetworkFunction):\n"
                           "    name = 'broken_options'\n"
                           "    @classmethod\n"
                           "    def add_arguments(cls, parser):\n"
                           "        raise RuntimeError('broken_options cannot build its options')\n",
                           "broken_options = xnf_broken_options:Broken"),
}


@pytest.fixture
def broken_plugins(venv):
    """Two broken network-function plugins registered in the venv (a module and a
    .dist-info with the entry point each), removed afterwards."""
    site = _run(venv, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    made = []
    try:
        for module, (source, entry) in BROKEN.items():
            made.append(os.path.join(site, module + ".py"))
            with open(made[-1], "w") as f:
                f.write(source)
            dist = os.path.join(site, f"{module}-0.0.0.dist-info")
            os.makedirs(dist)
            made.append(dist)
            with open(os.path.join(dist, "METADATA"), "w") as f:
                f.write(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.0.0\n")
            with open(os.path.join(dist, "entry_points.txt"), "w") as f:
                f.write(f"[xnf.network_functions]\n{entry}\n")
        yield
    finally:
        for path in made:
            shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.unlink(path)


def test_a_broken_plugin_breaks_only_itself(venv, broken_plugins):
    """One broken third-party package must not take every `xnf` command down with it."""
    xnf = make_xnf(venv)
    r = xnf("list", "--json")
    assert r.returncode == 0, r.stderr
    assert "example" in json.loads(r.stdout)["network_functions"]
    r = xnf("prog", "load", os.path.join(ROOT, "tests", "bpf", "xdp_counter.bpf.o"))
    assert r.returncode == 0, r.stderr
    assert xnf("attach", "example", "--help").returncode == 0
    one_line_error(xnf("attach", "broken_options", "lo"), "broken_options", "cannot build its options")
    r = xnf("attach", "broken_import", "lo")                    # not importable: not a choice at all
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1 and "broken_import" in r.stderr


def test_scheduler_plugin(venv):
    xnf = make_xnf(venv)
    if xnf("sched", "--help").returncode != 0:
        pytest.skip("this xnf has no `sched` command group (pifo_sched not installed)")
    r = xnf("sched", "list", check=True)
    line = next(line for line in r.stdout.splitlines() if line.startswith("example_fifo"))
    assert "Example third-party FIFO" in line
    r = xnf("sched", "simulate", "example_fifo", "--duration", "0.5", check=True)
    assert "example_fifo" in r.stdout
    # the class is found through the same entry point pifo_sched uses
    code = ("from xnf.plugins.pifo_sched.registry import create\n"
            "s = create('example_fifo', {'capacity': 2})\n"
            "print([s.enqueue(p, 0) for p in 'abc'], s.dequeue(0), s.dropped)")
    assert _run(venv, "-c", code).stdout.strip() == "[True, True, False] a 1"
