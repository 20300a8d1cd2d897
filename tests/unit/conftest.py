"""Unit tests run without root. A test here that asks for a privileged fixture or carries
the ``root`` marker fails, naming where it belongs: tests/kernel, whose conftest
provides those fixtures (tests/unit/test_unit_needs_no_root.py checks the guard)."""
import pytest

ROOT_FIXTURES = frozenset({"netns", "veth", "netns_pair", "root_veth", "bpffs", "counters", "iface_state"})


def root_needs(item):
    """Why ``item`` would need root (privileged fixtures, the root marker), or None."""
    wanted = ROOT_FIXTURES.intersection(getattr(item, "fixturenames", ()))
    if wanted:
        return f"it uses the privileged fixtures {sorted(wanted)}"
    if item.get_closest_marker("root"):
        return "it is marked root"
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    why = root_needs(item)
    if why:
        pytest.fail(f"{item.nodeid} is a unit test but {why}: unit tests run without root; "
                    f"move it to tests/kernel/", pytrace=False)
