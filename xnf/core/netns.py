"""Deprecated path: :mod:`xnf.core.kernel.netns` (moved when core was split into object/kernel/attach).

Importing it still works and gives that very module, with a DeprecationWarning.
"""
import sys
import warnings

from xnf.core.kernel import netns as _moved

warnings.warn("xnf.core.netns is deprecated: import xnf.core.kernel.netns", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
