"""Deprecated path: :mod:`xnf.core.kernel.ringbuf` (moved when core was split into object/kernel/attach).

Importing it still works and gives that very module, with a DeprecationWarning.
"""
import sys
import warnings

from xnf.core.kernel import ringbuf as _moved

warnings.warn("xnf.core.ringbuf is deprecated: import xnf.core.kernel.ringbuf", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
