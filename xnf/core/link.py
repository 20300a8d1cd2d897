"""Deprecated path: :mod:`xnf.core.object.link` (moved when core was split into object/kernel/attach).

Importing it still works and gives that very module, with a DeprecationWarning.
"""
import sys
import warnings

from xnf.core.object import link as _moved

warnings.warn("xnf.core.link is deprecated: import xnf.core.object.link", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
