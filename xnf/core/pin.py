"""Deprecated path: :mod:`xnf.core.kernel.pin` (bpffs, pins, records, locks) and
:mod:`xnf.core.attach.pinroot` (``PinRoot``, ``Transaction``), split when core was split
into object/kernel/attach. Importing it still works, with a DeprecationWarning.
"""
import warnings

from xnf.core.attach.base import PENDING  # noqa: F401
from xnf.core.attach.pinroot import (ATTACHING, DETACHING, AlreadyAttachedError, BrokenInstanceError,  # noqa: F401
                                     Leftover, PinRoot, Transaction, remove_instance_dir)
from xnf.core.kernel.pin import *  # noqa: F401,F403

warnings.warn("xnf.core.pin is deprecated: import xnf.core.kernel.pin (bpffs, pins, records, locks) "
              "or xnf.core.attach.pinroot (PinRoot, Transaction)", DeprecationWarning, stacklevel=2)
