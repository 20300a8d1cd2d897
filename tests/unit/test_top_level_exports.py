"""Every name ``xnf`` exports resolves, to the object of the module that defines it, on first use."""
import subprocess
import sys

import pytest

import xnf
from xnf.core import attach, errors


@pytest.mark.parametrize("name", xnf.__all__)
def test_each_export_resolves(name):
    assert getattr(xnf, name) is not None
    assert name in dir(xnf)


def test_attach_functions_and_errors_are_the_core_ones():
    for name in ("attach_xdp", "attach_tc", "attach_tcx", "attach_cls_bpf", "query", "load_pinned"):
        assert getattr(xnf, name) is getattr(attach, name)
    public_errors = [n for n, v in vars(errors).items() if isinstance(v, type) and issubclass(v, errors.XnfError)]
    for name in public_errors:
        assert getattr(xnf, name) is getattr(errors, name)
    assert issubclass(xnf.VerifierError, xnf.BPFError) and issubclass(xnf.PinError, xnf.XnfError)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'attach_nowhere'"):
        xnf.attach_nowhere


def test_from_xnf_import_an_error_class_stays_light():
    """An error class comes from xnf.core.errors, which pulls in nothing heavy."""
    code = ("import sys; from xnf import PinError, VerifierError; "
            "print([m for m in sys.modules if m.startswith(('pyroute2', 'elftools'))])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
