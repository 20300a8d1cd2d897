"""What a network interface can do: driver, XDP features and modes, hardware offload.

``Capabilities.for_interface(ifname)`` (in :mod:`xnf.drivers.capabilities`) is the entry
point; driver profiles are plugins in the stevedore namespace ``xnf.drivers``.
"""
