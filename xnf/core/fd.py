"""Deprecated path: :mod:`xnf.core.kernel.fd` (moved when core was split into object/kernel/attach).

Importing it still works and gives that very module, with a DeprecationWarning.
"""
import sys
import warnings

from xnf.core.kernel import fd as _moved

warnings.warn("xnf.core.fd is deprecated: import xnf.core.kernel.fd", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
