"""Deprecated path: :mod:`xnf.core.object.btf` (moved when core was split into object/kernel/attach).

Importing it still works and gives that very module, with a DeprecationWarning.
"""
import sys
import warnings

from xnf.core.object import btf as _moved

warnings.warn("xnf.core.btf is deprecated: import xnf.core.object.btf", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
