"""CI guard for CLI start-up (issue 14 item 4), with stable counters instead of wall times:
the modules that `xnf --help`, `xnf prog show`, `xnf status` and `xnf attach pping --help` import, and
the cache of plugin groups behind `xnf --help` (same output as without it, rebuilt when a
plugin's source changes). bench/cli_startup.py has the times."""
import os
import subprocess
import sys
import types

import pytest

from xnf.cli import plugin_groups

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HEAVY = ("stevedore", "attr", "attrs", "pyroute2", "elftools", "matplotlib", "prometheus_client")

RUN = """
import contextlib, io, os, sys
if os.environ.get("XNF_TEST_BPFFS"):  # a bpffs stand-in: an empty directory, nothing attached
    from xnf.core.kernel import pin
    pin.find_bpffs = pin.ensure_bpffs = lambda path=None: os.environ["XNF_TEST_BPFFS"]
from xnf.cli.main import main
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
sys.__stderr__.write(out.getvalue())
print(" ".join(sorted(sys.modules)))
"""


def _xnf(cache, *argv, bpffs=None):
    """(modules imported, standard output) of `xnf ARGV` in a fresh interpreter; with
    ``bpffs`` (a directory), pins are looked for there instead of the bpf filesystem."""
    env = dict(os.environ, XDG_CACHE_HOME=str(cache), PYTHONPATH=ROOT)
    if bpffs is not None:
        env["XNF_TEST_BPFFS"] = str(bpffs)
    r = subprocess.run([sys.executable, "-c", RUN, *argv], capture_output=True, text=True, env=env, cwd=ROOT,
                       timeout=60, check=True)
    return set(r.stdout.split()), r.stderr


def _heavy(modules):
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


def test_help_imports_no_plugin_and_prints_the_same(tmp_path):
    modules_cold, cold = _xnf(tmp_path, "--help")  # builds the cache: imports the plugins
    modules, warm = _xnf(tmp_path, "--help")
    assert warm == cold and "pping " in warm and "sched " in warm
    assert _heavy(modules) == []
    assert not [m for m in modules if m.startswith(("xnf.plugins", "xnf.core.attach", "importlib.metadata"))]
    assert any(m.startswith("xnf.plugins") for m in modules_cold)  # the cache, not luck, made the difference


def test_core_groups_import_no_plugin(tmp_path):
    for argv in (["prog", "show", "--help"], ["map", "--help"], ["features", "--help"]):
        modules, _ = _xnf(tmp_path, *argv)
        assert not [m for m in modules if m.startswith(("xnf.plugins", "stevedore", "importlib.metadata"))], argv


def test_status_with_nothing_attached_imports_no_attach_kind_and_no_heavy_module(tmp_path):
    (tmp_path / "bpffs").mkdir()
    modules, out = _xnf(tmp_path, "status", bpffs=tmp_path / "bpffs")
    assert out == "no network functions attached\n"
    assert "xnf.core.attach.pinroot" in modules  # the path that reads pins was taken
    assert _heavy(modules) == []
    assert not [m for m in modules if m.startswith(("xnf.plugins", "importlib.metadata", "xnf.core.object"))]
    assert not modules & {f"xnf.core.attach.{kind}" for kind in ("base", "links", "tc", "tcx", "xdp", "dispatcher")}


def test_attach_help_imports_only_the_network_function_named(tmp_path):
    modules, out = _xnf(tmp_path, "attach", "pping", "--help")
    assert "--rate-limit" in out or "-r MS" in out
    assert "xnf.plugins.pping.nf" in modules
    assert not [m for m in modules if m.startswith("xnf.plugins.pifo_sched")]
    assert not [m for m in modules if m.split(".")[0] == "stevedore"]


@pytest.fixture
def fake_plugin(tmp_path, monkeypatch):
    """A plugin class whose module is a file under tmp_path, with the cache there too."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    src = tmp_path / "plugin" / "fake_nf.py"
    src.parent.mkdir()
    src.write_text("x = 1\n")
    module = types.ModuleType("fake_nf_for_cache")
    module.__file__ = str(src)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return type("Fake", (), {"__module__": module.__name__}), src


def test_the_cache_is_used_until_a_plugin_source_changes(fake_plugin):
    cls, src = fake_plugin
    assert plugin_groups.load() is None
    plugin_groups.save([("fake", "a fake group")], [cls])
    assert plugin_groups.load() == [("fake", "a fake group")]
    st = os.stat(src)
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert plugin_groups.load() is None


def test_a_corrupt_or_unwritable_cache_means_the_slow_path(fake_plugin, tmp_path):
    cls, _ = fake_plugin
    plugin_groups.save([("fake", "x")], [cls])
    path, = (tmp_path / "cache" / "xnf").iterdir()
    path.write_text("{not json")
    assert plugin_groups.load() is None
    os.environ["XDG_CACHE_HOME"] = str(path)  # a file where a directory should be: save() cannot write
    plugin_groups.save([("fake", "x")], [cls])
    assert plugin_groups.load() is None


def test_run_finds_its_network_function_through_the_cache(fake_plugin):
    cls, src = fake_plugin
    cls.__qualname__ = "Fake"
    sys.modules[cls.__module__].Fake = cls
    assert plugin_groups.network_function("fake") is None  # no cache yet: the registry's scan
    plugin_groups.save([("fake", "x")], [cls], {"fake": cls})
    assert plugin_groups.network_function("fake") is cls
    assert plugin_groups.network_function("other") is None
    st = os.stat(src)
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert plugin_groups.network_function("fake") is None  # stale: the scan again


def test_run_with_the_cache_reads_no_entry_points(tmp_path):
    """`xnf run pping --help` after `xnf --help` wrote the cache: no importlib.metadata
    (its import and the scan of every distribution, ~19 ms of CPU)."""
    _xnf(tmp_path, "--help")  # writes the cache
    modules, out = _xnf(tmp_path, "run", "pping", "--help")
    assert "importlib.metadata" not in modules and "--rate-limit" in out
