"""The rule of tests/unit: nothing here needs root (the guard in its conftest)."""
import pathlib
import re

pytest_plugins = ["pytester"]

UNIT = pathlib.Path(__file__).parent


def test_guard_fails_a_unit_test_that_asks_for_root(pytester):
    pytester.makeconftest((UNIT / "conftest.py").read_text())
    pytester.makepyfile(test_x="""
import pytest

@pytest.fixture
def veth():
    yield "ns", "a", "b"

def test_uses_veth(veth):
    pass

@pytest.mark.root
def test_marked():
    pass

def test_plain():
    pass
""")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=2)  # the guard fails them at setup
    result.stdout.fnmatch_lines(["*privileged fixtures*veth*move it to tests/kernel/*", "*is marked root*"])


def test_no_unit_module_uses_the_root_marker():
    offenders = [str(p.relative_to(UNIT)) for p in UNIT.rglob("*.py")
                 if p.name != "test_unit_needs_no_root.py" and re.search(r"mark\.root\b", p.read_text())]
    assert offenders == [], f"move these to tests/kernel: {offenders}"
