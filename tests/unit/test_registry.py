"""Plugin look-ups: a registered plugin that fails to import is reported, never dropped."""
import json
import sys

import pytest

from xnf import registry
from xnf.core.errors import ConfigError, PluginError

from support.distribution import write_distribution


def _broken_distribution(path, namespace, name):
    """A distribution under ``path`` whose entry point names a module that does not exist."""
    write_distribution(path, f"xnf-broken-{name}", "0.1", {namespace: {name: "xnf_no_such_module_4711:Nothing"}})


@pytest.fixture
def broken_plugin(tmp_path):
    """A network function on sys.path whose entry point names a module that does not exist."""
    _broken_distribution(tmp_path, registry.NETWORK_FUNCTIONS, "broken_example")
    sys.path.insert(0, str(tmp_path))
    try:
        yield "broken_example"
    finally:
        sys.path.remove(str(tmp_path))


@pytest.fixture
def broken_scheduler(tmp_path):
    _broken_distribution(tmp_path, registry.SCHEDULERS, "broken_sched")
    sys.path.insert(0, str(tmp_path))
    try:
        yield "broken_sched"
    finally:
        sys.path.remove(str(tmp_path))


def test_a_plugin_that_fails_to_import_is_listed_as_broken_with_its_error(broken_plugin):
    assert broken_plugin not in registry.available(registry.NETWORK_FUNCTIONS)
    errors = registry.broken(registry.NETWORK_FUNCTIONS)
    assert "ModuleNotFoundError" in errors[broken_plugin]
    assert "xnf_no_such_module_4711" in errors[broken_plugin]
    assert "pping" in registry.network_functions()  # the others still load


def test_asking_for_a_broken_plugin_names_its_import_error(broken_plugin):
    with pytest.raises(PluginError, match="failed to load: .*xnf_no_such_module_4711"):
        registry.network_function(broken_plugin)


def test_no_plugin_is_broken_in_a_clean_install():
    for namespace in (registry.NETWORK_FUNCTIONS, registry.SCHEDULERS, registry.DRIVERS):
        assert registry.broken(namespace) == {}, namespace


def _xnf(capsys, *argv):
    from xnf.cli.main import main

    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_xnf_list_shows_a_broken_network_function_with_its_error(broken_plugin, capsys):
    """Issue 12 item 4: it vanished from `xnf list` (even with -v)."""
    code, out, _ = _xnf(capsys, "list")
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith(broken_plugin))
    assert "BROKEN: ModuleNotFoundError" in line and "xnf_no_such_module_4711" in line
    assert any(line.startswith("pping ") for line in out.splitlines())  # the others are still there


def test_xnf_list_json_shows_broken_plugins(broken_plugin, broken_scheduler, capsys):
    code, out, _ = _xnf(capsys, "list", "--json")
    assert code == 0
    data = json.loads(out)
    assert broken_plugin not in data["network_functions"] and broken_scheduler not in data["schedulers"]
    assert "xnf_no_such_module_4711" in data["broken"]["network_functions"][broken_plugin]
    assert "xnf_no_such_module_4711" in data["broken"]["schedulers"][broken_scheduler]
    assert "pping" in data["network_functions"] and "fifo" in data["schedulers"]


def test_xnf_list_shows_a_broken_scheduler(broken_scheduler, capsys):
    code, out, _ = _xnf(capsys, "list")
    assert code == 0
    assert f"broken scheduler {broken_scheduler}: ModuleNotFoundError" in out


def test_sched_list_shows_a_broken_scheduler(broken_scheduler, capsys):
    code, out, _ = _xnf(capsys, "sched", "list")
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith(broken_scheduler))
    assert "BROKEN: ModuleNotFoundError" in line
    assert any(line.startswith("fifo ") for line in out.splitlines())


def test_sched_list_json_names_summaries_and_broken_schedulers(broken_scheduler, capsys):
    code, out, _ = _xnf(capsys, "sched", "list", "-j")
    data = json.loads(out)
    assert code == 0 and set(data) == {"schedulers", "broken"}
    assert data["schedulers"]["fifo"]["summary"].startswith("First in, first out")
    assert "ModuleNotFoundError" in data["broken"][broken_scheduler]


def test_a_clean_install_lists_nothing_broken(capsys):
    code, out, _ = _xnf(capsys, "list", "--json")
    assert code == 0 and json.loads(out)["broken"] == {"network_functions": {}, "schedulers": {}}


def test_only_the_kernel_rank_functions_attach_on_htb():
    """What pifo_sched.registry says: every registered scheduler is listed and simulated, but
    `xnf attach pifo_sched --qdisc htb` takes only the ranks its tc egress program computes
    (htb named: with auto, a kernel with the BPF qdisc would take more)."""
    from xnf.plugins.pifo_sched import registry as sched_registry
    from xnf.plugins.pifo_sched.kernel import MODES
    from xnf.plugins.pifo_sched.nf import PifoSched, PifoSchedConfig

    assert set(MODES) == {"wfq", "stfq"}
    for name in sched_registry.available():
        if name in MODES:
            assert PifoSchedConfig(scheduler=name, qdisc="htb").scheduler == name
            continue
        with pytest.raises(ValueError, match=f"simulate the others with `xnf sched simulate {name}`"):
            PifoSchedConfig(scheduler=name, qdisc="htb")
    import argparse

    parser = argparse.ArgumentParser()
    PifoSched.add_arguments(parser)
    with pytest.raises(ConfigError, match="no kernel data path"):
        PifoSched.config_from_args(parser.parse_args(["--scheduler", "drr", "--qdisc", "htb"]))
