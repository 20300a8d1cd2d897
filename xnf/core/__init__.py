"""The loader, in three layers: ``object`` (bytes -> spec), ``kernel`` (spec -> live
objects), ``attach`` (live programs -> hooks of interfaces); ``errors`` and ``uapi``
are shared by all three. The other modules here are deprecated paths of moved modules.
"""
