"""Suite-wide rules: tests marked ``root`` skip, with the reason, when not run as root; no
Hypothesis deadlines."""
import os

import pytest
from hypothesis import settings

NEEDS_ROOT = "needs root (CAP_BPF, CAP_NET_ADMIN)"


# Hypothesis's per-example wall-clock deadline (200 ms) measures the machine's load, not the
# code: on a shared 2-CPU machine at load 10 a fast example overran it once. No deadline.
settings.register_profile("xnf", deadline=None)
settings.load_profile("xnf")


def pytest_configure(config):
    config.addinivalue_line("markers", "root: needs root and a BPF-capable kernel (namespaces, veth, attach)")


def pytest_collection_modifyitems(config, items):
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason=NEEDS_ROOT)
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)
