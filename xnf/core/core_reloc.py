"""Deprecated path: :mod:`xnf.core.object.core_reloc` (moved when core was split into object/kernel/attach).

Importing it still works and gives that very module, with a DeprecationWarning.
"""
import sys
import warnings

from xnf.core.object import core_reloc as _moved

warnings.warn("xnf.core.core_reloc is deprecated: import xnf.core.object.core_reloc", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
