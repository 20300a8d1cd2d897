"""Spec to live objects: bpf(2), the load phases with rollback, programs, maps, readers, pins.

May import :mod:`xnf.core.object`; never :mod:`xnf.core.attach` or anything above core
(``tests/unit/test_layering.py`` checks).
"""
