"""Deprecated path: :mod:`xnf.core.kernel.syscall` (moved when core was split into object/kernel/attach).

Importing it still works and gives that very module, with a DeprecationWarning.
"""
import sys
import warnings

from xnf.core.kernel import syscall as _moved

warnings.warn("xnf.core.syscall is deprecated: import xnf.core.kernel.syscall", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
