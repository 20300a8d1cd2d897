"""Deprecated path: :mod:`xnf.core.kernel.loader` (moved when core was split into object/kernel/attach).

Importing it still works and gives that very module, with a DeprecationWarning.
"""
import sys
import warnings

from xnf.core.kernel import loader as _moved

warnings.warn("xnf.core.loader is deprecated: import xnf.core.kernel.loader", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
