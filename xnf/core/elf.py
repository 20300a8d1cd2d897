"""Deprecated path: :mod:`xnf.core.object.elf` (moved when core was split into object/kernel/attach).

Importing it still works and gives that very module, with a DeprecationWarning.
"""
import sys
import warnings

from xnf.core.object import elf as _moved

warnings.warn("xnf.core.elf is deprecated: import xnf.core.object.elf", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
