"""Plugin look-ups: a registered plugin that fails to import is reported, never dropped."""
import os
import sys

import pytest

from xnf import registry
from xnf.core.errors import PluginError


@pytest.fixture
def broken_plugin(tmp_path):
    """A distribution on sys.path whose entry point names a module that does not exist."""
    dist = tmp_path / "xnf_broken_example-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: xnf-broken-example\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[xnf.network_functions]\nbroken_example = xnf_no_such_module_4711:Nothing\n")
    sys.path.insert(0, str(tmp_path))
    try:
        yield "broken_example"
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
