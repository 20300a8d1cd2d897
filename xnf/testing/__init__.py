"""Testing aids for xnf and its plugins: frames, namespaces with veth pairs, and traffic.

Not imported by ``import xnf``: import the module you need, e.g.
``from xnf.testing.frames import v4_tcp`` or ``from xnf.testing.topology import VethPair``.
"""
