"""An example third-party xnf plugin: an XDP packet counter and a FIFO scheduler.

Registered through entry points in setup.cfg, so every ``xnf`` command finds them.
"""
from xnf_example_nf.nf import ExampleNF

__all__ = ["ExampleNF"]
