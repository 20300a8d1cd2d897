"""Bytes to spec: a BPF ELF object parsed into an editable :class:`~xnf.core.object.spec.ObjectSpec`.

Nothing here touches the kernel (no bpf(2), no netlink), so all of it runs without
root. Imports only :mod:`xnf.core.errors` and :mod:`xnf.core.uapi` from the rest of xnf
(``tests/unit/test_layering.py`` checks).
"""
