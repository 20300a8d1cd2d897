"""The `xnf` command against the real kernel: ``prog load OBJ --pin DIR``, ``map dump``
(BTF-decoded, by pin and by id), ``prog show``; and bad input (missing file, verifier
rejection, incompatible pin, pin conflict, missing interface or namespace): one line on
stderr, a non-zero exit, and nothing loaded, pinned or attached.

Pin-by-name maps go to ``/sys/fs/bpf`` (as with libbpf). So that tests running in
parallel never see each other's pins, those cases run the CLI in a private mount
namespace with a fresh bpffs on ``/sys/fs/bpf`` (``unshare -m``); bpftool is the oracle.
"""
import json
import os
import shlex
import subprocess
import sys

import pytest
from netenv import still_there

from xnf import registry
from xnf.core.kernel.maps import Map

pytestmark = pytest.mark.root

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BPF_DIR = os.path.join(ROOT, "tests", "bpf")
ENV = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
ENV.pop("XNF_DEBUG", None)
XNF = [sys.executable, "-m", "xnf.cli.main"]


def obj(name):
    return os.path.join(BPF_DIR, name + ".bpf.o")


def xnf(*args):
    return subprocess.run(XNF + list(args), capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=120)


def one_line_error(r, *contains):
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("xnf: error: "), r.stderr
    for text in contains:
        assert text in lines[0], (text, lines[0])
    return lines[0]


def bpftool(*args):
    return json.loads(subprocess.run(["bpftool", "-j", *args], capture_output=True, text=True,
                                     check=True).stdout or "null")


class Result:
    def __init__(self, rc, out, err):
        self.returncode, self.stdout, self.stderr = rc, out, err


def in_private_bpffs(tmp_path, *commands):
    """Run shell commands in a new mount namespace with a fresh bpffs on /sys/fs/bpf; one
    Result each. ``xnf`` in a command is this checkout's CLI. The namespace, its bpffs and
    everything pinned there are gone when the commands end."""
    lines = ["set -u", "mount -t bpf bpf /sys/fs/bpf || exit 97", f"cd {shlex.quote(ROOT)}",
             "xnf() { " + " ".join(map(shlex.quote, XNF)) + ' "$@"; }']
    for i, cmd in enumerate(commands):
        lines.append(f"( {cmd} ) >{tmp_path}/out{i} 2>{tmp_path}/err{i}; echo $? >{tmp_path}/rc{i}")
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "bash", "-c", "\n".join(lines)],
                       capture_output=True, text=True, env=ENV, timeout=300)
    if r.returncode == 97:
        pytest.skip("cannot mount a bpf filesystem in a private mount namespace")
    assert r.returncode == 0, r.stderr
    return [Result(int(open(f"{tmp_path}/rc{i}").read()), open(f"{tmp_path}/out{i}").read(),
                   open(f"{tmp_path}/err{i}").read()) for i in range(len(commands))]


def pinned_files(path):
    out = []
    for dirpath, _dirs, files in os.walk(path):
        out += [os.path.relpath(os.path.join(dirpath, f), path) for f in files if not f.endswith(".debug")]
    return sorted(out)


# --- prog load / map dump / prog show ----------------------------------------------------------

def test_prog_load_pin_then_dump_and_show(bpffs):
    pin = os.path.join(bpffs, "counter")
    r = xnf("prog", "load", obj("xdp_counter"), "--pin", pin, "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert {p["name"] for p in report["programs"]} == {"xdp_count"}
    assert {m["name"] for m in report["maps"]} == {"pkt_count", "proto_count"}
    assert pinned_files(pin) == ["maps/pkt_count", "maps/proto_count", "progs/xdp_count"]
    prog_id = report["programs"][0]["id"]
    # bpftool sees what xnf reported, pinned where xnf said
    assert bpftool("prog", "show", "pinned", os.path.join(pin, "progs", "xdp_count"))["id"] == prog_id
    assert bpftool("prog", "show", "id", str(prog_id))["name"] == "xdp_count"
    # the pins keep the objects: write through one process, dump through another
    with Map.from_pin(os.path.join(pin, "maps", "proto_count")) as m:
        m[6] = 60
        m[17] = 170
        map_id = m.id
    r = xnf("map", "dump", os.path.join(pin, "maps", "proto_count"))
    assert r.returncode == 0, r.stderr
    assert "6: 60" in r.stdout and "17: 170" in r.stdout and "2 element(s)" in r.stdout
    r = xnf("map", "dump", str(map_id), "--json")
    assert sorted((e["key"], e["value"]) for e in json.loads(r.stdout)) == [(6, 60), (17, 170)]
    # prog show lists it, as bpftool does
    r = xnf("prog", "show", "--json")
    shown = {p["id"]: p for p in json.loads(r.stdout)}
    assert shown[prog_id]["name"] == "xdp_count" and shown[prog_id]["type"] == "xdp"
    assert set(shown[prog_id]["map_ids"]) == set(bpftool("prog", "show", "id", str(prog_id))["map_ids"])
    r = xnf("prog", "show")
    assert r.returncode == 0 and any(line.split()[:3] == [str(prog_id), "xdp", "xdp_count"]
                                     for line in r.stdout.splitlines())


def test_prog_load_pins_every_global_data_map(bpffs):
    """.data.custom and .rodata.custom too: bpffs refuses dots in names, so the pin names
    must not keep them."""
    pin = os.path.join(bpffs, "globals")
    r = xnf("prog", "load", obj("global_data"), "--pin", pin, "--json")
    assert r.returncode == 0, r.stderr
    maps = pinned_files(os.path.join(pin, "maps"))
    assert maps == ["bss", "data", "data_custom", "rodata", "rodata_custom"], maps


def test_map_dump_decodes_btf_structs(bpffs):
    pin = os.path.join(bpffs, "btf")
    assert xnf("prog", "load", obj("btf_types"), "--pin", pin).returncode == 0
    from xnf.core.kernel.program import Program

    prog = Program.from_pin(os.path.join(pin, "progs", "btf_socket"))
    try:
        prog.test_run(bytes(64))
    finally:
        prog.close()
    r = xnf("map", "dump", os.path.join(pin, "maps", "flows"), "--json")
    assert r.returncode == 0, r.stderr
    ((entry,),) = [json.loads(r.stdout)]
    key, value = entry["key"], entry["value"]
    assert (key["ifindex"], key["color"], key["pt"], key["addr"]["v4"]) == (1, 7, {"x": 3, "y": 4}, 0x0A000001)
    assert (value["packets"], value["delta"], value["last"]) == (1, -5, [{"x": 1, "y": 2}, {"x": 5, "y": 6}])
    r = xnf("map", "dump", os.path.join(pin, "maps", "matrices"))
    assert "rows=[[0, 0, 0], [0, 0, 9]]" in r.stdout and "origin=Struct(x=7, y=0)" in r.stdout


def still_loaded(programs, timeout):
    """{id: name} of ``programs`` bpftool still lists once all are gone or ``timeout`` s passed.
    A map of programs (tail_call's jump table holds tail_drop and tail_tx) is freed after an
    RCU grace period, from a workqueue, so its programs can outlive the command a moment."""
    def left():
        live = {p["id"] for p in bpftool("prog", "show")}
        return {i: name for i, name in programs.items() if i in live}

    return still_there(left, timeout)


def test_prog_load_without_pin_leaves_nothing_loaded():
    r = xnf("prog", "load", obj("tail_call"), "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert {p["name"] for p in report["programs"]} == {"tail_entry", "tail_drop", "tail_tx"}
    # closed when the command ended (the kernel may take a moment: still_loaded)
    left = still_loaded({p["id"]: p["name"] for p in report["programs"]}, timeout=10.0)
    assert not left, f"programs still loaded 10 s after xnf prog load exited: {left}"


# --- bad input -----------------------------------------------------------------------------

def test_verifier_rejection(tmp_path, bpffs):
    pin = os.path.join(bpffs, "rejected")
    r = xnf("prog", "load", obj("verifier_reject"), "--pin", pin)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    line, source = r.stderr.strip().splitlines()  # one line, then the C line (from BTF line info)
    assert line.startswith("xnf: error: ") and "verifier_reject_prog" in line and "rejected by the verifier" in line
    assert "invalid access to packet" in line and "--verbose" in line and ".log" not in line
    assert source == "  verifier_reject.bpf.c:32: __u32 unchecked_daddr = ip->daddr; " \
                     "/* out of bounds: no check against data_end */"
    assert pinned_files(bpffs) == []
    r = xnf("--verbose", "prog", "load", obj("verifier_reject"))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "ip->daddr" in r.stderr and len(r.stderr.splitlines()) > 2    # the log tail, on request


def test_missing_license(bpffs):
    one_line_error(xnf("prog", "load", obj("no_license_gpl_helper"), "--pin", os.path.join(bpffs, "nl")),
                   "GPL", "LICENSE")
    assert pinned_files(bpffs) == []


def test_missing_object(tmp_path):
    one_line_error(xnf("prog", "load", str(tmp_path / "nope.bpf.o")), "cannot read")


def test_map_dump_bad_references(bpffs):
    pin = os.path.join(bpffs, "refs")
    assert xnf("prog", "load", obj("xdp_counter"), "--pin", pin).returncode == 0
    one_line_error(xnf("map", "dump", os.path.join(pin, "progs", "xdp_count")), "holds a prog, not a map")
    one_line_error(xnf("map", "dump", os.path.join(pin, "nothing")), "nothing is pinned")
    one_line_error(xnf("map", "dump", "4000000000"), "no map with id")
    one_line_error(xnf("map", "dump", "/tmp"))


def test_pin_outside_bpffs(tmp_path):
    one_line_error(xnf("prog", "load", obj("xdp_counter"), "--pin", str(tmp_path / "pins")),
                   "not on a bpf filesystem")


def test_pin_conflict_removes_the_pins_it_made(bpffs):
    """A second load into the same directory fails on the first existing pin; the pins of
    the first load stay, and the second leaves none of its own."""
    pin = os.path.join(bpffs, "twice")
    assert xnf("prog", "load", obj("xdp_counter"), "--pin", pin).returncode == 0
    before = {f: bpftool("map" if f.startswith("maps") else "prog", "show", "pinned", os.path.join(pin, f))["id"]
              for f in pinned_files(pin)}
    one_line_error(xnf("prog", "load", obj("xdp_counter"), "--pin", pin), "already pinned")
    after = {f: bpftool("map" if f.startswith("maps") else "prog", "show", "pinned", os.path.join(pin, f))["id"]
             for f in pinned_files(pin)}
    assert after == before


def test_failure_while_pinning_unpins_what_was_pinned(bpffs):
    """DIR/maps is in the way (a symlink), so pinning fails after the programs were pinned:
    the command fails with one line and the program pins are removed again."""
    pin = os.path.join(bpffs, "blocked")
    os.makedirs(pin)
    os.symlink("nowhere", os.path.join(pin, "maps"))
    one_line_error(xnf("prog", "load", obj("xdp_counter"), "--pin", pin), "maps")
    assert pinned_files(os.path.join(pin, "progs")) == []     # xdp_count was pinned first: unpinned again


def test_incompatible_pin_by_name(tmp_path):
    load, refused, listing, show = in_private_bpffs(
        tmp_path,
        f"xnf prog load {obj('pin_by_name')}",
        f"xnf prog load {obj('pin_by_name_incompat')} --pin /sys/fs/bpf/incompat",
        "find /sys/fs/bpf -not -name '*.debug' | sort",
        "bpftool -j map show pinned /sys/fs/bpf/xnf_pinned_cnt")
    assert load.returncode == 0, load.stderr
    one_line_error(refused, "xnf_pinned_cnt", "does not match", "value_size 8 != 4", "rm /sys/fs/bpf/xnf_pinned_cnt")
    # the old pin is untouched, nothing new is pinned (an empty --pin directory at most)
    assert [p for p in listing.stdout.split() if p != "/sys/fs/bpf/incompat"] == \
        ["/sys/fs/bpf", "/sys/fs/bpf/xnf_pinned_cnt"]
    assert json.loads(show.stdout)["bytes_value"] == 8


def test_pin_by_name_reused_by_the_cli(tmp_path):
    first, second, dump = in_private_bpffs(
        tmp_path,
        f"xnf prog load {obj('pin_by_name')} --json",
        f"xnf prog load {obj('pin_by_name')} --json",
        "xnf map dump /sys/fs/bpf/xnf_pinned_cnt")
    assert first.returncode == 0 and second.returncode == 0, (first.stderr, second.stderr)
    ids = [{m["name"]: m["id"] for m in json.loads(r.stdout)["maps"]}["xnf_pinned_cnt"] for r in (first, second)]
    assert ids[0] == ids[1]
    assert dump.returncode == 0 and "0 element(s)" in dump.stdout


# --- attach / detach / status on a bad interface ------------------------------------------------

NFS = sorted(registry.network_functions())


@pytest.mark.parametrize("nf", NFS or [pytest.param(None, marks=pytest.mark.skip(reason="no network function installed"))])
def test_attach_to_a_missing_interface(netns_pair, iface_state, nf):
    before = iface_state(netns_pair.ns_b, netns_pair.if_b)
    r = xnf("attach", nf, "xnfnosuch0", "--netns", netns_pair.ns_b)
    one_line_error(r, "xnfnosuch0")
    assert iface_state(netns_pair.ns_b, netns_pair.if_b) == before
    r = xnf("status", "--json")
    assert r.returncode == 0 and not [s for s in json.loads(r.stdout) if s.get("iface") == "xnfnosuch0"]


@pytest.mark.parametrize("nf", NFS or [pytest.param(None, marks=pytest.mark.skip(reason="no network function installed"))])
def test_attach_in_a_missing_namespace(nf):
    one_line_error(xnf("attach", nf, "eth0", "--netns", "xnf-no-such-ns"), "xnf-no-such-ns")


def test_detach_what_is_not_attached(netns_pair):
    if not NFS:
        pytest.skip("no network function installed")
    one_line_error(xnf("detach", NFS[0], netns_pair.if_b, "--netns", netns_pair.ns_b), "not attached")


def test_status_of_a_missing_namespace_or_interface(netns_pair):
    """Issue 9 item 6: these used to exit 0 with "no network functions attached"."""
    one_line_error(xnf("status", "--netns", "xnf-no-such-ns"), "xnf-no-such-ns")
    one_line_error(xnf("status", "xnfnosuchif0"), "xnfnosuchif0")
    one_line_error(xnf("status", "xnfnosuchif0", "--netns", netns_pair.ns_b), "xnfnosuchif0")
    r = xnf("status", netns_pair.if_b, "--netns", netns_pair.ns_b, "--json")  # exists, nothing attached
    assert r.returncode == 0 and json.loads(r.stdout) == [], r.stderr


def test_reading_pins_without_privileges_says_so(tmp_path):
    """Issue 9 item 6: the permission error used to be swallowed ("pping is not attached").
    In a private bpffs made unreadable (mode 000), a process without capabilities is
    refused as a user would be on /sys/fs/bpf (mode 0700, root's)."""
    unprivileged = "chmod 000 /sys/fs/bpf && setpriv --bounding-set=-all --inh-caps=-all " + \
        " ".join(map(shlex.quote, XNF))
    results = in_private_bpffs(tmp_path, f"{unprivileged} pping stats lo", f"{unprivileged} detach pping lo",
                               f"{unprivileged} status")
    for r in results:
        line = one_line_error(r, "permission", "root")
        assert "not attached" not in line


def test_status_and_features():
    r = xnf("status", "--json")
    assert r.returncode == 0 and isinstance(json.loads(r.stdout), list)
    r = xnf("features", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["links"]["xdp"] is True and report["btf"]["vmlinux"] is True


def test_features_of_an_interface(netns_pair):
    r = xnf("features", netns_pair.if_b, "--netns", netns_pair.ns_b, "--json")
    assert r.returncode == 0, r.stderr
    assert "interface" in json.loads(r.stdout)
    one_line_error(xnf("features", "xnfnosuch0", "--netns", netns_pair.ns_b), "xnfnosuch0")
