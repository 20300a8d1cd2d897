"""Deprecated path: :mod:`xnf.core.kernel.features` (moved when core was split into
object/kernel/attach). Importing it still works, with a DeprecationWarning.
"""
import warnings

from xnf.core.kernel.features import *  # noqa: F401,F403
from xnf.core.kernel.features import features_report as _kernel_report

warnings.warn("xnf.core.features is deprecated: import xnf.core.kernel.features", DeprecationWarning, stacklevel=2)


def features_report(ifname=None, netns=None):
    """The old signature: with ``ifname``, adds :func:`xnf.core.attach.xdp.device_capabilities`."""
    report = _kernel_report()
    if ifname is not None:
        from xnf.core.attach.xdp import device_capabilities  # the shim only: kernel.features sits below attach

        report["interface"] = device_capabilities(ifname, netns)
    return report
