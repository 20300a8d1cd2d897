"""The `xnf` command without privileges: help, list, usage errors, and failures that
are one line on stderr with a non-zero exit, never a traceback. ``import xnf`` stays
light (no pyroute2, pyelftools or stevedore).

Commands run in subprocesses (``python -m xnf.cli.main``, the same ``main`` as the
``xnf`` console script). When the suite runs as root, the "without privileges" cases
drop every capability with ``setpriv`` so the kernel refuses as it would for a user.
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BPF_DIR = os.path.join(ROOT, "tests", "bpf")
ENV = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
ENV.pop("XNF_DEBUG", None)


def xnf(*args, drop_caps=False, timeout=60):
    prefix = []
    if drop_caps and os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("setpriv (util-linux) is needed to drop capabilities as root")
        prefix = [setpriv, "--bounding-set=-all", "--inh-caps=-all"]
    return subprocess.run(prefix + [sys.executable, "-m", "xnf.cli.main", *args], capture_output=True,
                          text=True, env=ENV, cwd=ROOT, timeout=timeout)


def assert_one_line_error(r, code=1, contains=()):
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("xnf: error: "), lines[0]
    for text in contains:
        assert text in lines[0], (text, lines[0])
    return lines[0]


def test_help():
    r = xnf("--help")
    assert r.returncode == 0
    for cmd in ("list", "attach", "detach", "status", "run", "features", "prog", "map"):
        assert cmd in r.stdout


@pytest.mark.parametrize("group", ["prog", "map", "attach", "detach", "status", "run", "features", "list"])
def test_subcommand_help(group):
    r = xnf(group, "--help")
    assert r.returncode == 0 and "usage: xnf " + group in r.stdout, r.stderr


def test_version():
    import xnf as pkg

    r = xnf("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"xnf {pkg.__version__}"


def test_console_script_is_installed():
    exe = shutil.which("xnf")
    if exe is None:
        pytest.skip("xnf is not installed (pip install -e .)")
    r = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "COMMAND" in r.stdout


def test_list():
    r = xnf("list")
    assert r.returncode == 0, r.stderr
    assert "NETWORK FUNCTION" in r.stdout and "schedulers:" in r.stdout


def test_list_json():
    r = xnf("list", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert set(data) == {"network_functions", "schedulers", "broken"}
    for desc in data["network_functions"].values():
        assert {"description", "hooks", "modes"} <= set(desc)


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["prog"], ["prog", "load"], ["attach", "no_such_nf", "lo"],
                                  ["map", "dump"], ["status", "--bogus"]])
def test_usage_errors(argv):
    r = xnf(*argv)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(("xnf: error:", "usage:")) or "error" in r.stderr


def test_prog_load_missing_file(tmp_path):
    assert_one_line_error(xnf("prog", "load", str(tmp_path / "missing.bpf.o")), contains=("cannot read",))


def test_prog_load_text_file(tmp_path):
    p = tmp_path / "readme.txt"
    p.write_text("not an object\n")
    assert_one_line_error(xnf("prog", "load", str(p)), contains=("not an ELF",))


def test_prog_load_empty_file(tmp_path):
    p = tmp_path / "empty.o"
    p.write_bytes(b"")
    assert_one_line_error(xnf("prog", "load", str(p)))


def test_prog_load_host_binary():
    assert_one_line_error(xnf("prog", "load", shutil.which("true") or "/bin/true"), contains=("not BPF",))


def test_prog_load_truncated(tmp_path):
    p = tmp_path / "cut.bpf.o"
    p.write_bytes(open(os.path.join(BPF_DIR, "xdp_counter.bpf.o"), "rb").read()[:500])
    assert_one_line_error(xnf("prog", "load", str(p)))


def test_prog_load_unknown_section():
    assert_one_line_error(xnf("prog", "load", os.path.join(BPF_DIR, "unknown_section.bpf.o")),
                          contains=("bogus/foo",))


def test_prog_load_without_privileges():
    line = assert_one_line_error(xnf("prog", "load", os.path.join(BPF_DIR, "xdp_counter.bpf.o"), drop_caps=True))
    assert "EPERM" in line or "not permitted" in line


def test_prog_show_without_privileges():
    assert_one_line_error(xnf("prog", "show", drop_caps=True))


def test_features_without_privileges():
    """Probes that need privileges report "unknown" instead of failing."""
    r = xnf("features", "--json", drop_caps=True)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert {"release", "btf", "links", "program_types", "map_types"} <= set(report)


def test_map_dump_bad_reference():
    assert_one_line_error(xnf("map", "dump", "relative/path"), contains=("neither a map id",))


def test_detach_unknown_nf():
    assert_one_line_error(xnf("detach", "no_such_nf", "lo"), contains=("no network function named",))


# --- import cost ----------------------------------------------------------------------

HEAVY = ("pyroute2", "elftools", "stevedore", "matplotlib", "prometheus_client")


def _imported_after(code):
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys, json\n"
                          f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))"],
                         capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_xnf_is_light():
    assert _imported_after("import xnf") == []


def test_core_modules_do_not_pull_netlink():
    """Parsing and loading need ELF reading but never netlink."""
    heavy = _imported_after(f"import xnf; xnf.open_object({os.path.join(BPF_DIR, 'xdp_counter.bpf.o')!r})")
    assert not [m for m in heavy if m.startswith(("pyroute2", "stevedore", "matplotlib"))]
    assert "elftools" in heavy


def test_import_of_the_api_modules_is_light():
    code = "import xnf.nf, xnf.registry, xnf.core.errors, xnf.core.kernel.syscall, xnf.core.kernel.maps, xnf.core.kernel.loader"
    assert _imported_after(code) == []
