"""Hardware offload: per-target rules, a checker that runs before loading, device binding.

``xnf.offload.device.prepare_offload(spec, ifname)`` checks an object against the NIC's
rules and binds its programs and maps to the device; nothing touches the kernel until
the loader runs.
"""
