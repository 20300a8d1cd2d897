"""Deprecated path: :mod:`xnf.core.kernel.perfbuf` (moved when core was split into object/kernel/attach).

Importing it still works and gives that very module, with a DeprecationWarning.
"""
import sys
import warnings

from xnf.core.kernel import perfbuf as _moved

warnings.warn("xnf.core.perfbuf is deprecated: import xnf.core.kernel.perfbuf", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
